"""The conformance kit for losses, regularizers and augmenters: every built-in passes, and
each deliberately broken part fails the check that covers its defect."""

import numpy as np
import pytest

from gankit import Discriminator, Generator, Param
from gankit.interfaces import Augmenter, Loss, Regularizer
from gankit.testing import ConformanceError, check_strategy
from gankit.testing.parts import (
    AUGMENTER_CHECKS,
    LOSS_CHECKS,
    REGULARIZER_CHECKS,
    check_augmenter,
    check_loss,
    check_regularizer,
)
from gankit_training.augment import DiffAugment, NoAugment
from gankit_training.losses import (
    BCELoss,
    HingeLoss,
    LeastSquaresLoss,
    NonSaturatingLoss,
    WassersteinLoss,
)
from gankit_training.regularizers import GradientPenalty, R1Penalty, R2Penalty
from gankit_training.strategy import GANStrategy

BUILTIN_LOSSES = [BCELoss(), BCELoss(from_logits=True),
                  BCELoss(real_label=0.0, fake_label=1.0, label_noise=0.05),  # the frog DCGAN
                  BCELoss(real_label=0.0, fake_label=1.0, from_logits=True),
                  BCELoss(label_smoothing=0.2, label_noise=0.05),
                  NonSaturatingLoss(), NonSaturatingLoss(label_smoothing=0.25), HingeLoss(),
                  WassersteinLoss(), LeastSquaresLoss(),
                  LeastSquaresLoss(real_target=1.0, fake_target=-1.0, generator_target=0.0),
                  LeastSquaresLoss(real_target=0.0, fake_target=1.0, generator_target=0.0)]
BUILTIN_REGULARIZERS = [GradientPenalty(), GradientPenalty(weight=1.0, target=0.5),
                        R1Penalty(), R2Penalty(gamma=0.1, every=16)]
BUILTIN_AUGMENTERS = [NoAugment(), DiffAugment(), DiffAugment(policy=["color"]),
                      DiffAugment(policy=["translation"]), DiffAugment(policy=["cutout"]),
                      DiffAugment(policy=["flip"]), DiffAugment(policy=[])]


def _fails(check, match, call, *args, **kwargs):
    with pytest.raises(ConformanceError) as caught:
        call(*args, **kwargs)
    assert caught.value.check == check, str(caught.value)
    assert match in str(caught.value), str(caught.value)
    return str(caught.value)


# --- every built-in passes ---------------------------------------------------------------

@pytest.mark.parametrize("loss", BUILTIN_LOSSES, ids=repr)
def test_builtin_losses_pass(loss):
    report = check_loss(loss)
    assert report.passed == LOSS_CHECKS and report.notes == ()


@pytest.mark.parametrize("regularizer", BUILTIN_REGULARIZERS, ids=repr)
def test_builtin_regularizers_pass(regularizer):
    assert check_regularizer(regularizer).passed == REGULARIZER_CHECKS


@pytest.mark.parametrize("augmenter", BUILTIN_AUGMENTERS, ids=repr)
def test_builtin_augmenters_pass(augmenter):
    assert check_augmenter(augmenter).passed == AUGMENTER_CHECKS


def test_checks_can_be_skipped_by_name_and_misnamed_skips_are_refused():
    report = check_loss(HingeLoss(), skip=("gradients", "sign"))
    assert report.passed == ("interface", "config", "values", "differentiable", "real_scores")
    assert report.skipped == ("gradients", "sign")
    with pytest.raises(ValueError, match="unknown check 'gradient' in skip \\(did you mean "
                                         "'gradients'\\?\\)"):
        check_loss(HingeLoss(), skip=("gradient",))


def test_the_kit_refuses_classes_and_other_kinds():
    with pytest.raises(TypeError, match="not the class"):
        check_loss(HingeLoss)
    with pytest.raises(TypeError, match="takes a gankit.Regularizer, got HingeLoss"):
        check_regularizer(HingeLoss())
    with pytest.raises(TypeError, match="takes a gankit.Augmenter"):
        check_augmenter(R1Penalty())


# --- broken losses -----------------------------------------------------------------------

class WrongSignGeneratorLoss(WassersteinLoss):
    def generator_loss(self, fake_scores, ctx):
        import tensorflow as tf

        return tf.reduce_mean(fake_scores)  # pushes the generated scores down


class UnclippedLogLoss(Loss):
    name = "unclipped"

    @property
    def expects(self):
        return "probability"

    def discriminator_loss(self, real_scores, fake_scores, ctx):
        import tensorflow as tf

        return -tf.reduce_mean(tf.math.log(real_scores)) - tf.reduce_mean(
            tf.math.log(1.0 - fake_scores))

    def generator_loss(self, fake_scores, ctx):
        import tensorflow as tf

        return -tf.reduce_mean(tf.math.log(fake_scores))


class UnseededNoiseLoss(HingeLoss):
    def discriminator_loss(self, real_scores, fake_scores, ctx):
        import tensorflow as tf

        real_scores = real_scores + 0.1 * tf.random.uniform(tf.shape(real_scores))
        return super().discriminator_loss(real_scores, fake_scores, ctx)


class PerSampleLoss(HingeLoss):
    def generator_loss(self, fake_scores, ctx):
        return -fake_scores[:, 0]


class PythonFloatLoss(HingeLoss):
    def generator_loss(self, fake_scores, ctx):
        return float(super().generator_loss(fake_scores, ctx))


class SigmoidExpectingLoss(HingeLoss):
    @property
    def expects(self):
        return "sigmoid"


class ConstantLoss(HingeLoss):
    def discriminator_loss(self, real_scores, fake_scores, ctx):
        import tensorflow as tf

        return tf.constant(1.0)

    def generator_loss(self, fake_scores, ctx):
        import tensorflow as tf

        return tf.constant(1.0)


class SharedLabelLoss(LeastSquaresLoss):
    params = {"target": Param(float, 1.0, doc="the target of every score")}

    def discriminator_loss(self, real_scores, fake_scores, ctx):
        import tensorflow as tf

        t = self.config["target"]  # the discriminator pulls fake scores up too: no game
        return tf.reduce_mean(tf.square(real_scores - t)) + tf.reduce_mean(
            tf.square(fake_scores - t))

    def generator_loss(self, fake_scores, ctx):
        import tensorflow as tf

        return tf.reduce_mean(tf.square(fake_scores - self.config["target"]))


class RelativisticAverageLoss(Loss):
    """RaGAN (Jolicoeur-Martineau 2018) on logits: each side's scores against the other
    side's mean; the generator's loss needs the real images' scores."""

    name = "ragan"
    generator_uses_real = True

    def discriminator_loss(self, real_scores, fake_scores, ctx):
        import tensorflow as tf

        return (tf.reduce_mean(tf.nn.softplus(tf.reduce_mean(fake_scores) - real_scores))
                + tf.reduce_mean(tf.nn.softplus(fake_scores - tf.reduce_mean(real_scores))))

    def generator_loss(self, fake_scores, ctx, real_scores=None):
        import tensorflow as tf

        return (tf.reduce_mean(tf.nn.softplus(tf.reduce_mean(real_scores) - fake_scores))
                + tf.reduce_mean(tf.nn.softplus(real_scores - tf.reduce_mean(fake_scores))))


def test_a_relativistic_loss_gets_the_real_scores_and_passes():
    report = check_loss(RelativisticAverageLoss())
    assert report.passed == LOSS_CHECKS and report.notes == ()


class IgnoresRealScores(RelativisticAverageLoss):
    """Declares generator_uses_real but never reads real_scores."""

    def generator_loss(self, fake_scores, ctx, real_scores=None):
        import tensorflow as tf

        return tf.reduce_mean(tf.nn.softplus(-fake_scores))


class UndeclaredRelativistic(RelativisticAverageLoss):
    """Needs real_scores (a required argument) but does not declare generator_uses_real."""

    generator_uses_real = False

    def generator_loss(self, fake_scores, ctx, real_scores):
        return super().generator_loss(fake_scores, ctx, real_scores)


class UndeclaredWithDefault(RelativisticAverageLoss):
    """The documented signature, but it fails on real_scores=None."""

    generator_uses_real = False


class ReadsRealScoresWhenGiven(NonSaturatingLoss):
    """Uses real_scores when a caller passes them, which the strategy never does."""

    def generator_loss(self, fake_scores, ctx, real_scores=None):
        import tensorflow as tf

        shift = 0.0 if real_scores is None else tf.reduce_mean(real_scores)
        return super().generator_loss(fake_scores - shift, ctx)


class NoRealArgument(RelativisticAverageLoss):
    """Declares generator_uses_real but its generator_loss has no real_scores argument."""

    def generator_loss(self, fake_scores, ctx):
        import tensorflow as tf

        return tf.reduce_mean(tf.nn.softplus(-fake_scores))


class RoundedLoss(HingeLoss):
    """A hinge loss rounded to quarters: a step function, its gradient zero (None) almost
    everywhere."""

    def discriminator_loss(self, real_scores, fake_scores, ctx):
        import tensorflow as tf

        return tf.round(4.0 * super().discriminator_loss(real_scores, fake_scores, ctx)) / 4.0


class SignLoss(HingeLoss):
    """Counts which side of 0 each score is on: the gradient is zero, not None."""

    def discriminator_loss(self, real_scores, fake_scores, ctx):
        import tensorflow as tf

        return tf.reduce_mean(tf.sign(fake_scores)) - tf.reduce_mean(tf.sign(real_scores))


class HalfwayGeneratorLoss(BCELoss):
    """Pulls generated probabilities to 0.45, the discriminator's indecision, not to real:
    its mean gradient at the usual scores still points up."""

    def generator_loss(self, fake_scores, ctx, real_scores=None):
        import tensorflow as tf

        return tf.reduce_mean(tf.square(fake_scores - 0.45))


class NarrowTargetsLoss(BCELoss):
    """Least squares towards 0.6 (real) and 0.35 (generated) on probabilities: a confident
    discriminator is penalised for separating better."""

    def discriminator_loss(self, real_scores, fake_scores, ctx):
        import tensorflow as tf

        return (tf.reduce_mean(tf.square(real_scores - 0.6))
                + tf.reduce_mean(tf.square(fake_scores - 0.35)))


@pytest.mark.parametrize("loss, check, match", [
    (IgnoresRealScores(), "real_scores",
     "generator_uses_real is True but generator_loss gives 0.524183 for real_scores [0.8, "
     "0.35, 0.6], [-0.8, -0.35, -0.6], [0.4, 0.175, 0.3] alike: it ignores real_scores"),
    (UndeclaredRelativistic(), "interface",
     "generator_loss needs real_scores, but generator_uses_real is False, so the strategy "
     "calls generator_loss(fake_scores, ctx) without them (it raised TypeError: "),
    (UndeclaredWithDefault(), "interface",
     "generator_loss needs real_scores, but generator_uses_real is False"),
    (ReadsRealScoresWhenGiven(), "real_scores",
     "generator_loss changes with real_scores ("),
    (NoRealArgument(), "interface",
     "generator_uses_real is True but generator_loss takes no real_scores"),
    (RoundedLoss(), "differentiable",
     "the gradient of discriminator_loss with respect to real_scores is None at random scores"),
    (SignLoss(), "differentiable",
     "the gradient of discriminator_loss with respect to real_scores is zero at random scores"),
    (HalfwayGeneratorLoss(), "sign",
     "generator_loss is not lower when the generated images score more like real ones: as "
     "generated scores rise from 0.35 to 0.65"),
    (NarrowTargetsLoss(), "sign",
     "discriminator_loss is not lower when the discriminator separates real from generated "
     "scores than when it scores them alike"),
], ids=lambda x: type(x).__name__ if isinstance(x, Loss) else "")
def test_losses_that_mean_the_wrong_thing_fail(loss, check, match):
    message = _fails(check, match, check_loss, loss)
    assert "\n" not in message


def test_the_kit_notes_a_generator_loss_without_real_scores():
    class OldSignature(HingeLoss):
        def generator_loss(self, fake_scores, ctx):
            return super().generator_loss(fake_scores, ctx)

    report = check_loss(OldSignature())
    assert report.passed == LOSS_CHECKS
    assert report.notes == ("interface: generator_loss(fake_scores, ctx) takes no real_scores; "
                            "the interface is generator_loss(fake_scores, ctx, "
                            "real_scores=None): add real_scores=None so that any training loop "
                            "that follows it can call this loss",)


@pytest.mark.parametrize("loss, check, match", [
    (WrongSignGeneratorLoss(), "gradients", "do not describe a game"),
    (SharedLabelLoss(), "gradients", "do not describe a game"),
    (ConstantLoss(), "gradients", "neither loss changes with the scores"),
    (UnclippedLogLoss(), "values", "on extreme probability scores [0.0, 1.0, 1e-30] is inf"),
    (UnseededNoiseLoss(), "values", "for the same scores and context"),
    (PerSampleLoss(), "values", "of shape (3,)"),
    (PythonFloatLoss(), "values", "returned float"),
    (SigmoidExpectingLoss(), "interface", "expects must be one of 'probability', 'logit'"),
], ids=lambda x: type(x).__name__ if isinstance(x, Loss) else "")
def test_broken_losses_fail(loss, check, match):
    message = _fails(check, match, check_loss, loss)
    assert message.startswith(f"{type(loss).__name__} (loss) failed the '{check}' check: ")


def test_the_wrong_sign_message_shows_the_gradients():
    message = _fails("gradients", "d generator_loss / fake_scores: 0.3333", check_loss,
                     WrongSignGeneratorLoss())
    assert "d discriminator_loss / real_scores: -0.3333" in message
    assert message.endswith("discriminator_loss treats high scores as real but generator_loss "
                            "rises as generated scores rise, so the generator would learn to "
                            "look generated; expected the signs (-, +, -) (high scores mean "
                            "real) or (+, -, +) (high scores mean generated); check the sign of "
                            "generator_loss")
    _fails("gradients", "discriminator_loss falls as real scores rise and falls as "
                        "generated scores rise, so it does not set real against generated "
                        "images", check_loss, SharedLabelLoss())


# --- broken regularizers -----------------------------------------------------------------

class NaNPenalty(R1Penalty):
    def penalty(self, inputs, ctx):
        return super().penalty(inputs, ctx) * float("nan")


class NegativePenalty(R1Penalty):
    def penalty(self, inputs, ctx):
        return -super().penalty(inputs, ctx)


class UnseededGradientPenalty(GradientPenalty):
    def penalty(self, inputs, ctx):
        import tensorflow as tf

        class Unseeded:
            def uniform(self, name, shape):
                return tf.random.uniform(shape)

        return super().penalty(inputs, Unseeded())


class NumpyPenalty(R1Penalty):
    def penalty(self, inputs, ctx):
        import tensorflow as tf

        return tf.constant(np.float32(super().penalty(inputs, ctx).numpy()))


class StoppedPenalty(R1Penalty):
    def penalty(self, inputs, ctx):
        import tensorflow as tf

        return tf.stop_gradient(super().penalty(inputs, ctx))


class DoubledGradientPenalty(R1Penalty):
    """The right value with a wrong gradient (a custom gradient twice too large)."""

    def penalty(self, inputs, ctx):
        import tensorflow as tf

        @tf.custom_gradient
        def doubled(x):
            return tf.identity(x), lambda dy: 2.0 * dy

        return doubled(super().penalty(inputs, ctx))


class Float64Penalty(R1Penalty):
    def penalty(self, inputs, ctx):
        import tensorflow as tf

        return tf.cast(super().penalty(inputs, ctx), tf.float64)


class ZeroEvery(R1Penalty):
    @property
    def every(self):
        return 0


@pytest.mark.parametrize("regularizer, check, match", [
    (NaNPenalty(), "value", "penalty is nan"),
    (NegativePenalty(), "value", "expected >= 0"),
    (UnseededGradientPenalty(), "value", "for the same inputs and context"),
    (Float64Penalty(), "value", "dtype <dtype: 'float64'>, expected a float32 scalar"),
    (NumpyPenalty(), "value", "raised AttributeError"),  # .numpy() fails under tf.function
    (StoppedPenalty(), "differentiable", "its gradient with respect to the critic's weights is "
                                         "zero"),
    (DoubledGradientPenalty(), "finite_difference", "a central finite difference gives"),
    (ZeroEvery(), "interface", "every must be a positive int, got 0"),
], ids=lambda x: type(x).__name__ if isinstance(x, Regularizer) else "")
def test_broken_regularizers_fail(regularizer, check, match):
    _fails(check, match, check_regularizer, regularizer)


# --- broken augmenters -------------------------------------------------------------------

class CroppingAugmenter(Augmenter):
    name = "crop"

    def augment(self, images, ctx):
        return images[:, 1:-1, 1:-1, :]


class Float64Augmenter(DiffAugment):
    def augment(self, images, ctx):
        import tensorflow as tf

        return tf.cast(super().augment(images, ctx), tf.float64)


class UnseededAugmenter(Augmenter):
    name = "unseeded"

    def augment(self, images, ctx):
        import tensorflow as tf

        return images + tf.random.uniform((tf.shape(images)[0], 1, 1, 1), -0.5, 0.5)


class SameEveryStepAugmenter(DiffAugment):
    def augment(self, images, ctx):
        from gankit.interfaces.context import step_context

        return super().augment(images, step_context(0, 0))


class RoundingAugmenter(Augmenter):
    name = "rounding"

    def augment(self, images, ctx):
        import tensorflow as tf

        return tf.round(images * 4.0) / 4.0 + ctx.uniform("shift", (1, 1, 1, 1))


class FalseIdentity(NoAugment):
    def augment(self, images, ctx):
        return images * 0.5


class FreshStateAugmenter(DiffAugment):
    def state(self):
        import tensorflow as tf

        return {"p": tf.Variable(0.0)}  # a new variable each call: the checkpoint misses it


class NumberStateAugmenter(DiffAugment):
    def state(self):
        return {"p": 0.5}


@pytest.mark.parametrize("augmenter, check, match", [
    (CroppingAugmenter(), "shapes", "gave EagerTensor of shape (2, 6, 6, 1)"),
    (Float64Augmenter(), "shapes", "dtype <dtype: 'float64'>; keep the shape and dtype"),
    (UnseededAugmenter(), "seeding", "the same context gave different images"),
    (SameEveryStepAugmenter(), "seeding", "two different steps gave identical images"),
    (RoundingAugmenter(), "gradients", "no gradient reaches the input images"),
    (FalseIdentity(), "seeding", "is_identity is true but augment() changed the images"),
    (FreshStateAugmenter(), "state", "returned other variables on its second call"),
    (NumberStateAugmenter(), "state", "state()['p'] is float"),
], ids=lambda x: type(x).__name__ if isinstance(x, Augmenter) else "")
def test_broken_augmenters_fail(augmenter, check, match):
    _fails(check, match, check_augmenter, augmenter)


def test_a_config_that_does_not_round_trip_fails_config():
    class Halving(HingeLoss):
        params = {"margin": Param(float, 1.0, doc="margin")}

        def __init__(self, **config):
            super().__init__(**config)
            self.config["margin"] /= 2

    _fails("config", "differs at 'margin'", check_loss, Halving(margin=1.0))


# --- check_strategy and shift-invariant losses -------------------------------------------

class SizedGenerator(Generator):
    """latent -> Dense -> tanh image of size x size x 1."""

    name = "sized"
    params = {"size": Param(int, 4, min=1)}
    latent_dim = 3

    @property
    def image_shape(self):
        return (self.config["size"], self.config["size"], 1)

    def build(self):
        import keras
        from keras import layers

        size = self.config["size"]
        z = keras.Input((3,))
        x = layers.Dense(size * size, activation="tanh")(z)
        return keras.Model(z, layers.Reshape((size, size, 1))(x))


class PatchCritic(Discriminator):
    """A linear critic that scores every pixel (1x1 convolutions) and averages: the bias of
    its 'score' layer adds the same to every score."""

    name = "patch"
    params = {"size": Param(int, 4, min=1), "bias": Param(float, 0.0)}
    output_activation = "linear"

    @property
    def image_shape(self):
        return (self.config["size"], self.config["size"], 1)

    def build(self):
        import keras
        from keras import layers

        size = self.config["size"]
        image = keras.Input((size, size, 1))
        x = layers.Conv2D(2, 1, activation="tanh")(image)
        x = layers.Conv2D(1, 1, name="score", bias_initializer=keras.initializers.Constant(
            self.config["bias"]))(x)
        return keras.Model(image, layers.GlobalAveragePooling2D()(x))


def _is_shift_note(note):
    return (note.startswith("training: the discriminator's weight 'score/bias' stayed "
                            "unchanged: its gradient is ")
            and note.endswith("the loss is invariant to a constant shift of the score (the "
                              "weight adds the same amount to every score, and the gradients "
                              "of RelativisticAverageLoss with respect to the scores sum to "
                              "zero)"))


@pytest.mark.parametrize("size", [2, 3])
def test_a_relativistic_loss_trains_with_the_gan_strategy_whatever_the_model_size(size):
    """RaGAN is shift-invariant: the score bias's gradient is zero up to float32 rounding,
    which leaves it exactly unchanged for some sizes (2 here) and moves it for others (3)."""
    report = check_strategy(GANStrategy(), SizedGenerator(size=size), PatchCritic(size=size),
                            loss=RelativisticAverageLoss(), skip=["determinism", "resume"])
    assert "training" in report.passed
    assert all(_is_shift_note(note) for note in report.notes), report.notes


class AlmostShiftInvariantLoss(WassersteinLoss):
    """Wasserstein plus 1e-6 of the real scores' mean: a gradient for the score bias as
    small as what float32 rounding leaves of cancelling terms, the same on every machine."""

    def discriminator_loss(self, real_scores, fake_scores, ctx):
        import tensorflow as tf

        return (super().discriminator_loss(real_scores, fake_scores, ctx)
                + 1e-6 * tf.reduce_mean(real_scores))


def test_a_bias_with_a_rounding_sized_gradient_is_noted_and_the_strategy_not_blamed():
    from gankit.plugin.manager import create

    # SGD moves the bias, 1.0, by 1e-2 * 1e-6: nothing in float32, so it stays unchanged.
    sgd = create("optimizer", {"type": "SGD", "learning_rate": 1e-2})
    report = check_strategy(GANStrategy(), SizedGenerator(size=3), PatchCritic(size=3, bias=1.0),
                            loss=AlmostShiftInvariantLoss(), optimizers=sgd,
                            skip=["determinism", "resume"])
    assert report.notes == (
        "training: the discriminator's weight 'score/bias' stayed unchanged: its gradient is "
        "1e-06, zero up to float32 rounding: the loss is invariant to a constant shift of the "
        "score (the weight adds the same amount to every score, and the gradients of "
        "AlmostShiftInvariantLoss with respect to the scores sum to zero)",)


def test_an_unapplied_gradient_blames_the_strategy_and_a_flat_loss_blames_the_loss():
    class NoDiscriminatorUpdate(GANStrategy):
        def train_step(self, batch, models, ctx):
            import tensorflow as tf

            class Skip:
                def minimize(self, tape, loss):
                    return tf.constant(0.0)

            updates = {**models.updates, "discriminator": Skip()}
            return super().train_step(batch, models._replace(updates=updates), ctx)

    message = _fails("training", "unchanged although the gradient of the discriminator's loss "
                                 "with respect to them is not zero", check_strategy,
                     NoDiscriminatorUpdate(), SizedGenerator(size=3), PatchCritic(size=3),
                     loss=HingeLoss(), skip=["determinism", "resume"])
    assert "so the strategy is the likely cause, not HingeLoss: hand the discriminator's loss" \
        in message

    class FarBeyondTheMargins(HingeLoss):
        """A hinge whose margins every score clears: no gradient at all."""

        def discriminator_loss(self, real_scores, fake_scores, ctx):
            return super().discriminator_loss(real_scores + 10.0, fake_scores - 10.0, ctx)

    message = _fails("training", "is exactly zero although the scores depend on them, so the "
                                 "loss (FarBeyondTheMargins: flat at these scores", check_strategy,
                     GANStrategy(), SizedGenerator(size=3), PatchCritic(size=3),
                     loss=FarBeyondTheMargins(), skip=["determinism", "resume"])
    assert "is the likely cause, not the strategy" in message
