"""The conformance kit for losses, regularizers and augmenters: every built-in passes, and
each deliberately broken part fails the check that covers its defect."""

import numpy as np
import pytest

from gankit import Param
from gankit.interfaces import Augmenter, Loss, Regularizer
from gankit.testing import ConformanceError
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

BUILTIN_LOSSES = [BCELoss(), BCELoss(from_logits=True),
                  BCELoss(real_label=0.0, fake_label=1.0, label_noise=0.05),  # the frog DCGAN
                  NonSaturatingLoss(), HingeLoss(), WassersteinLoss(), LeastSquaresLoss()]
BUILTIN_REGULARIZERS = [GradientPenalty(), GradientPenalty(weight=1.0, target=0.5),
                        R1Penalty(), R2Penalty(gamma=0.1, every=16)]
BUILTIN_AUGMENTERS = [NoAugment(), DiffAugment(), DiffAugment(policy=["color"]),
                      DiffAugment(policy=["translation"]), DiffAugment(policy=["cutout"]),
                      DiffAugment(policy=[])]


def _fails(check, match, call, *args, **kwargs):
    with pytest.raises(ConformanceError) as caught:
        call(*args, **kwargs)
    assert caught.value.check == check, str(caught.value)
    assert match in str(caught.value), str(caught.value)
    return str(caught.value)


# --- every built-in passes ---------------------------------------------------------------

@pytest.mark.parametrize("loss", BUILTIN_LOSSES, ids=repr)
def test_builtin_losses_pass(loss):
    assert check_loss(loss).passed == LOSS_CHECKS


@pytest.mark.parametrize("regularizer", BUILTIN_REGULARIZERS, ids=repr)
def test_builtin_regularizers_pass(regularizer):
    assert check_regularizer(regularizer).passed == REGULARIZER_CHECKS


@pytest.mark.parametrize("augmenter", BUILTIN_AUGMENTERS, ids=repr)
def test_builtin_augmenters_pass(augmenter):
    assert check_augmenter(augmenter).passed == AUGMENTER_CHECKS


def test_checks_can_be_skipped_by_name_and_misnamed_skips_are_refused():
    report = check_loss(HingeLoss(), skip=("gradients",))
    assert report.passed == ("interface", "config", "values")
    assert report.skipped == ("gradients",)
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
