"""The conformance kit really checks: each deliberately broken component fails the check
that covers its defect, with a message saying what is wrong."""

import numpy as np
import pytest

from gankit import Dataset, Discriminator, Generator, Param, StepOutputs, Strategy
from gankit.testing import (
    MODEL_CHECKS,
    STRATEGY_CHECKS,
    ConformanceError,
    check_config,
    check_dataset,
    check_discriminator,
    check_generator,
    check_strategy,
)
from gankit_training.losses import WassersteinLoss
from gankit_training.strategy import GANStrategy

# --- a small, correct generator and discriminator, and broken variants -------------------

class TinyGenerator(Generator):
    """latent -> Dense -> (4, 4, 1) image."""

    name = "tiny"
    params = {"latent_dim": Param(int, 3, min=1), "units": Param(int, 16, min=1)}

    @property
    def latent_dim(self):
        return self.config["latent_dim"]

    @property
    def image_shape(self):
        return (4, 4, 1)

    def build(self):
        import keras
        from keras import layers

        z = keras.Input((self.latent_dim,))
        x = layers.Dense(self.config["units"], activation="relu")(z)
        x = layers.Dense(16, activation="tanh")(x)
        return keras.Model(z, self.finish(layers.Reshape((4, 4, 1))(x)))

    def finish(self, image):
        return image


class TinyDiscriminator(Discriminator):
    """image -> Flatten -> Dense(1, sigmoid)."""

    name = "tiny"
    params = {"activation": Param(str, "sigmoid")}
    output_activation = "sigmoid"

    @property
    def image_shape(self):
        return (4, 4, 1)

    def build(self):
        import keras
        from keras import layers

        image = keras.Input((4, 4, 1))
        x = layers.Dense(1, activation=self.config["activation"], name="score")(
            layers.Flatten()(image))
        return self.finish(keras.Model(image, x))

    def finish(self, model):
        return model


class CriticDiscriminator(TinyDiscriminator):
    """A linear critic: its score's bias shifts every score alike."""

    params = {"activation": Param(str, "linear")}
    output_activation = "linear"


def test_the_correct_tiny_components_pass():
    check_generator(TinyGenerator())
    check_discriminator(TinyDiscriminator())


def _fails(check: str, match: str, call, *args, **kwargs):
    with pytest.raises(ConformanceError) as caught:
        call(*args, **kwargs)
    assert caught.value.check == check, str(caught.value)
    assert match in str(caught.value), str(caught.value)
    return str(caught.value)


class WrongShapeGenerator(TinyGenerator):
    def build(self):
        import keras
        from keras import layers

        z = keras.Input((self.latent_dim,))
        return keras.Model(z, layers.Reshape((4, 2, 2))(layers.Dense(16)(z)))


def test_a_generator_with_the_wrong_output_shape_fails_shapes():
    message = _fails("shapes", "gave output of shape (1, 4, 2, 2)", check_generator,
                     WrongShapeGenerator())
    assert message.startswith("WrongShapeGenerator (generator) failed the 'shapes' check: ")
    assert "expected (1, 4, 4, 1)" in message


class Float16Generator(TinyGenerator):
    def finish(self, image):
        from keras import layers

        return layers.Activation("linear", dtype="float16")(image)


def test_a_generator_with_the_wrong_dtype_fails_shapes():
    _fails("shapes", "the output dtype is float16, expected float32", check_generator,
           Float16Generator())


class ExtraKeyConfig(TinyGenerator):
    def get_config(self):
        return {**self.config, "image_shape": [4, 4, 1]}


class MissingKeyConfig(TinyGenerator):
    def get_config(self):
        return {"latent_dim": self.config["latent_dim"]}


class NumpyConfig(TinyGenerator):
    def get_config(self):
        return {**self.config, "units": np.int64(self.config["units"])}


class SharedDictConfig(TinyGenerator):
    def get_config(self):
        return self.config


class DoublingConfig(TinyGenerator):
    def __init__(self, **config):
        super().__init__(**config)
        self.config["units"] *= 2  # derived in __init__, so a rebuild doubles it again


@pytest.mark.parametrize("component, match", [
    (ExtraKeyConfig(), "get_config() has key(s) 'image_shape' not declared"),
    (MissingKeyConfig(units=5), "get_config() lacks declared parameter(s) 'units'"),
    (NumpyConfig(), "must return plain data"),
    (SharedDictConfig(), "returned the component's own dict"),
    (DoublingConfig(units=4), "from_config(get_config()).get_config() differs at 'units': "
                              "8 became 16"),
])
def test_a_config_that_does_not_round_trip_fails_config(component, match):
    _fails("config", match, check_config, component)
    _fails("config", match, check_generator, type(component)(**component.config)
           if not isinstance(component, DoublingConfig) else component)


class UnusedWeightGenerator(TinyGenerator):
    def finish(self, image):
        import keras

        class Scale(keras.layers.Layer):
            def build(self, input_shape):
                self.unused = self.add_weight(shape=(1,), initializer="ones", name="unused")

            def call(self, x):
                return x  # the weight never touches the output

        return Scale(name="scale")(image)


def test_a_weight_that_gets_no_gradient_fails_gradients():
    _fails("gradients", "no gradient reaches weight 'scale/unused'", check_generator,
           UnusedWeightGenerator())


class StoppedGradientGenerator(TinyGenerator):
    def build(self):
        import keras
        from keras import layers

        z = keras.Input((self.latent_dim,))
        x = layers.Dense(16)(z)
        x = layers.Lambda(lambda t: keras.ops.stop_gradient(t))(x)
        x = layers.Dense(16, activation="tanh", name="last")(x)
        return keras.Model(z, layers.Reshape((4, 4, 1))(x))


def test_a_stop_gradient_fails_gradients_and_names_the_cut_off_weights():
    message = _fails("gradients", "no gradient reaches weights 'dense", check_generator,
                     StoppedGradientGenerator())
    assert "'last/" not in message


class UnseededGenerator(TinyGenerator):
    def build(self):
        import keras
        from keras import layers

        noise = np.random.default_rng().standard_normal((self.latent_dim, 16))
        z = keras.Input((self.latent_dim,))
        x = layers.Dense(16, activation="tanh",
                         kernel_initializer=keras.initializers.Constant(noise))(z)
        return keras.Model(z, layers.Reshape((4, 4, 1))(x))


def test_unseeded_randomness_in_build_fails_determinism():
    _fails("determinism", "something draws unseeded randomness", check_generator,
           UnseededGenerator())


class CachedModelGenerator(TinyGenerator):
    def build(self):
        if not hasattr(self, "_model"):
            self._model = super().build()
        return self._model


def test_a_build_that_returns_the_same_model_fails_build():
    _fails("build", "returned the same model twice", check_generator, CachedModelGenerator())


class FrozenGenerator(TinyGenerator):
    def build(self):
        model = super().build()
        model.layers[1].trainable = False
        return model


def test_a_generators_frozen_layers_need_not_train_and_are_noted():
    # Frozen weights are not trainable; the rest must still train.
    report = check_generator(FrozenGenerator())
    assert any("frozen (trainable = False)" in note and "'dense" in note
               for note in report.notes), report.notes


class FrozenDiscriminator(TinyDiscriminator):
    """Keras 2's habit: freeze the discriminator to train the generator through it."""

    def finish(self, model):
        model.trainable = False
        return model


class SelfFreezingDiscriminator(TinyDiscriminator):
    """A layer that freezes itself when it is called (here: while the model is built)."""

    def build(self):
        import keras
        from keras import layers

        class FreezingDense(layers.Dense):
            def call(self, x):
                self.trainable = False
                return super().call(x)

        image = keras.Input((4, 4, 1))
        x = layers.Dense(3, name="hidden")(layers.Flatten()(image))
        return keras.Model(image, FreezingDense(1, activation="sigmoid", name="score")(x))


@pytest.mark.parametrize("discriminator", [FrozenDiscriminator(), SelfFreezingDiscriminator()],
                         ids=lambda d: type(d).__name__)
def test_a_frozen_discriminator_fails_training(discriminator):
    message = _fails("training", "the discriminator has frozen (untrainable) weights: ",
                     check_discriminator, discriminator)
    assert "'score/kernel'" in message and "discriminator.trainable = False" in message


def test_frozen_discriminator_weights_pass_when_skipped_by_name():
    # A layer class defined in a function cannot be loaded back from a .keras file.
    report = check_discriminator(SelfFreezingDiscriminator(), skip_weights=["score/"],
                                 skip=["save"])
    assert report.passed[-1] == "training"
    assert any("'score/kernel' was not checked (skip_weights entry 'score/')" in note
               for note in report.notes), report.notes


def test_a_skipped_weight_leaves_gradients_and_training_with_a_note():
    report = check_generator(UnusedWeightGenerator(), skip_weights=["scale/unused"],
                             skip=["save"])
    assert "gradients" in report.passed and "training" in report.passed
    assert any("'scale/unused' was not checked" in note for note in report.notes)
    _fails("training", "skip_weights entry 'nothing/like/this' matches no weight",
           check_generator, TinyGenerator(), skip_weights=["nothing/like/this"], skip=["save"])


def _layer_classes():
    """Custom layers for the save check: one unregistered, one with an incomplete config, one
    registered with Keras (so it loads in this process) but declared by no plugin."""
    import keras

    class Unregistered(keras.layers.Layer):
        def call(self, x):
            return x * 0.5

    @keras.saving.register_keras_serializable(package="gankit_conformance_tests")
    class Scale(keras.layers.Layer):
        def __init__(self, factor=1.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor

        def get_config(self):
            config = super().get_config()
            config.pop("factor", None)  # forgotten: a loaded model scales by 1
            return config

    @keras.saving.register_keras_serializable(package="gankit_conformance_tests")
    class Halve(keras.layers.Layer):
        def call(self, x):
            return x * 0.5

    return Unregistered, Scale, Halve


class UnregisteredLayerGenerator(TinyGenerator):
    def finish(self, image):
        return _layer_classes()[0]()(image)


class IncompleteConfigGenerator(TinyGenerator):
    def finish(self, image):
        return _layer_classes()[1](factor=0.5)(image)


class UndeclaredLayerGenerator(TinyGenerator):
    def finish(self, image):
        return _layer_classes()[2]()(image)


def test_a_model_that_does_not_load_back_fails_save():
    message = _fails("save", "the saved .keras file does not load as gankit loads it",
                     check_generator, UnregisteredLayerGenerator())
    assert "the Keras class 'Unregistered'" in message
    assert "return it from a plugin's gankit_keras_objects hook" in message \
        or "install the gankit plugin that provides it" in message
    message = _fails("save", "the loaded model's outputs differ from the saved model's",
                     check_generator, IncompleteConfigGenerator())
    assert "get_config() leaves out a setting" in message


def test_a_registered_layer_that_no_plugin_declares_fails_save_in_a_fresh_process():
    # It loads here, where its module registered it with Keras; `gankit sample` runs in a
    # new process, which never imports that module.
    message = _fails("save", "the saved model loads in this process but not in a fresh process, "
                     "where gankit sample and gankit evaluate load it", check_generator,
                     UndeclaredLayerGenerator(), skip=["determinism", "gradients", "training"])
    assert "the Keras class 'Halve' (saved as 'gankit_conformance_tests>Halve', from module '" \
        in message
    assert "which no loaded plugin declares" in message and "gankit_keras_objects hook" in message


# --- meaning: the output depends on z, and stays in the declared range -------------------

class ConstantGenerator(TinyGenerator):
    """Ignores z: the latents are multiplied by 0, so every image is the same."""

    def build(self):
        import keras
        from keras import layers

        z = keras.Input((self.latent_dim,))
        x = layers.Dense(16, activation="tanh")(layers.Rescaling(0.0)(z))
        return keras.Model(z, layers.Reshape((4, 4, 1))(x))


class ZeroStartGenerator(TinyGenerator):
    """z enters through a layer that starts at zero: right after one step it matters."""

    def build(self):
        import keras
        from keras import layers

        z = keras.Input((self.latent_dim,))
        x = layers.Dense(16, activation="tanh", kernel_initializer="zeros")(z)
        return keras.Model(z, layers.Reshape((4, 4, 1))(x))


def test_a_generator_that_ignores_z_fails_input_effect():
    message = _fails("input_effect", "different latents give identical images (latents 0 and 1 "
                     "of 3, in inference mode), even after one Adam step: the output does not "
                     "depend on z", check_generator, ConstantGenerator())
    assert "multiplied by 0" in message
    check_generator(ZeroStartGenerator(), skip=["gradients", "training"])


class ImageBlindDiscriminator(TinyDiscriminator):
    def build(self):
        import keras
        from keras import layers

        image = keras.Input((4, 4, 1))
        x = layers.Flatten()(layers.Rescaling(0.0)(image))
        return keras.Model(image, layers.Dense(1, activation="sigmoid")(x))


def test_a_discriminator_that_ignores_the_image_fails_input_effect():
    _fails("input_effect", "different images give identical scores (images 0 and 1 of 3, in "
           "inference mode), even after one Adam step: the score does not depend on the image",
           check_discriminator, ImageBlindDiscriminator())


class NoTanhGenerator(TinyGenerator):
    """A DCGAN-like generator that forgot its final tanh: a linear convolution, with outputs
    that start well inside [-1, 1]."""

    def build(self):
        import keras
        from keras import layers

        z = keras.Input((self.latent_dim,))
        x = layers.Reshape((4, 4, 1))(layers.Dense(16, use_bias=False)(z))
        x = layers.ReLU()(layers.BatchNormalization()(x))
        init = keras.initializers.RandomNormal(stddev=0.02)
        return keras.Model(z, layers.Conv2D(1, 3, padding="same", kernel_initializer=init)(x))


class NormalizedNoTanhGenerator(TinyGenerator):
    """No tanh either, and its latents are normalised first (as StyleGAN's mapping does), so
    larger latents give the same images: only training shows the range is not bounded."""

    def build(self):
        import keras
        from keras import layers

        z = keras.Input((self.latent_dim,))
        x = layers.Dense(16, activation="relu")(layers.UnitNormalization()(z))
        init = keras.initializers.RandomNormal(stddev=0.02)
        return keras.Model(z, layers.Reshape((4, 4, 1))(layers.Dense(16, kernel_initializer=init)(x)))


class SigmoidGenerator(TinyGenerator):
    """Ends with a sigmoid, and may declare so."""

    params = {**TinyGenerator.params, "value_range": Param(list, None)}

    def finish(self, image):
        from keras import layers

        return layers.Activation("sigmoid")(layers.Rescaling(5.0)(image))


def test_a_generator_without_its_tanh_fails_output_range():
    model = NoTanhGenerator().build()
    latents = np.random.default_rng(0).standard_normal((2, 3)).astype("float32")
    assert np.abs(np.asarray(model(latents, training=False))).max() < 0.1  # looks fine at first
    message = _fails("output_range", "outside the declared value_range (-1.0, 1.0) (",
                     check_generator, NoTanhGenerator())
    assert message.endswith("end with tanh (or another bounded activation), or declare "
                            "value_range"), message
    _fails("output_range", "that push the images apart): end with tanh", check_generator,
           NormalizedNoTanhGenerator())


def test_a_generator_inside_its_declared_range_passes_and_outside_it_fails():
    assert SigmoidGenerator().value_range == (-1.0, 1.0)  # the default: inside it too
    assert SigmoidGenerator(value_range=[0, 1]).value_range == (0.0, 1.0)
    only = ["interface", "output_range"]
    skip = [c for c in MODEL_CHECKS if c not in only]
    assert check_generator(SigmoidGenerator(value_range=[0, 1]), skip=skip).passed == tuple(only)
    message = _fails("output_range", "outside the declared value_range (0.5, 1.0)",
                     check_generator, SigmoidGenerator(value_range=[0.5, 1]), skip=skip)
    assert "outputs reach 0." in message
    _fails("interface", "value_range must be (low, high) with finite low < high",
           check_generator, SigmoidGenerator(value_range=[1, 0]))


class LinearDiscriminatorDeclaredSigmoid(TinyDiscriminator):
    """Declares sigmoid, ends linear, and starts with every score near 0.5."""

    def build(self):
        import keras
        from keras import layers

        image = keras.Input((4, 4, 1))
        score = layers.Dense(1, kernel_initializer=keras.initializers.RandomNormal(stddev=1e-3),
                             bias_initializer=keras.initializers.Constant(0.5))
        return keras.Model(image, score(layers.Flatten()(image)))


def test_a_sigmoid_discriminator_without_its_sigmoid_fails_output_range():
    _fails("output_range", "scores reach ", check_discriminator,
           LinearDiscriminatorDeclaredSigmoid())
    check_discriminator(CriticDiscriminator(), skip=["determinism", "gradients", "training",
                                                     "save"])


def test_a_sigmoid_discriminator_with_linear_scores_fails_shapes():
    message = _fails("shapes", "output_activation is 'sigmoid' but scores range over",
                     check_discriminator, TinyDiscriminator(activation="linear"),
                     images=np.full((2, 4, 4, 1), 5.0, np.float32))
    assert "declare output_activation = 'linear'" in message


class TwoScoreDiscriminator(TinyDiscriminator):
    def build(self):
        import keras
        from keras import layers

        image = keras.Input((4, 4, 1))
        return keras.Model(image, layers.Dense(2)(layers.Flatten()(image)))


def test_a_discriminator_with_two_scores_fails_shapes():
    _fails("shapes", "expected (1, 1)", check_discriminator, TwoScoreDiscriminator())


def test_images_of_the_wrong_shape_are_reported():
    _fails("interface", "expected (n, 4, 4, 1)", check_discriminator, TinyDiscriminator(),
           images=np.zeros((2, 8, 8, 1), np.float32))


def test_a_skipped_check_does_not_run_and_unknown_names_are_refused():
    report = check_generator(UnseededGenerator(), skip=["determinism"])
    assert "determinism" not in report.passed and report.skipped == ("determinism",)
    with pytest.raises(ValueError, match="unknown check 'gradient' in skip \\(did you mean "
                                         "'gradients'\\?\\)"):
        check_generator(TinyGenerator(), skip=["gradient"])


def test_the_kit_wants_instances_of_the_right_kind():
    with pytest.raises(TypeError, match="takes a component instance, e.g. TinyGenerator"):
        check_generator(TinyGenerator)
    with pytest.raises(TypeError, match="takes a gankit.Generator, got TinyDiscriminator"):
        check_generator(TinyDiscriminator())


def test_an_exception_in_the_component_is_reported_as_that_checks_failure():
    class Raises(TinyGenerator):
        def build(self):
            raise RuntimeError("no GPU")

    _fails("build", "raised RuntimeError: no GPU", check_generator, Raises())


# --- datasets ----------------------------------------------------------------------------

class TinyDataset(Dataset):
    """Sixteen seeded 4x4 grey images in [0, 1]."""

    name = "tiny"
    params = {"seed": Param(int, 0)}

    @property
    def image_shape(self):
        return (4, 4, 1)

    @property
    def value_range(self):
        return (0.0, 1.0)

    def load(self):
        rng = np.random.default_rng(self.config["seed"])
        return rng.uniform(0, 1, (16, 4, 4, 1)).astype(np.float32)


class Float64Dataset(TinyDataset):
    def load(self):
        return super().load().astype(np.float64)


class WrongShapeDataset(TinyDataset):
    def load(self):
        return super().load().reshape(16, 2, 8, 1)


class OutOfRangeDataset(TinyDataset):
    def load(self):
        return super().load() * 255


class ShufflingDataset(TinyDataset):
    def load(self):
        images = super().load()
        return images[np.random.permutation(len(images))]  # the global, unseeded state


def test_the_correct_tiny_dataset_passes():
    check_dataset(TinyDataset(), min_images=16)


@pytest.mark.parametrize("dataset, check, match", [
    (Float64Dataset(), "load", "load() returned dtype float64, expected float32"),
    (WrongShapeDataset(), "load", "load() returned shape (16, 2, 8, 1), expected (n, 4, 4, 1)"),
    (OutOfRangeDataset(), "values", "outside value_range (0.0, 1.0)"),
    (ShufflingDataset(), "determinism", "loaded different images (or another order)"),
])
def test_a_broken_dataset_fails_the_matching_check(dataset, check, match):
    _fails(check, match, check_dataset, dataset)


def test_too_few_images_fail_load():
    _fails("load", "returned 16 images, expected at least 20", check_dataset, TinyDataset(),
           min_images=20)


# --- strategies --------------------------------------------------------------------------

class _UnseededContext:
    """A step context whose normal numbers come from TensorFlow's global random state."""

    def __init__(self, ctx):
        self._ctx = ctx

    def normal(self, name, shape, dtype="float32"):
        import tensorflow as tf

        return tf.random.normal(shape, dtype=dtype)

    def __getattr__(self, name):
        return getattr(self._ctx, name)


class UnseededStrategy(GANStrategy):
    """Draws its latents with tf.random.normal instead of from the step's context."""

    def train_step(self, batch, models, ctx):
        return super().train_step(batch, models, _UnseededContext(ctx))


class HiddenStateStrategy(GANStrategy):
    """Keeps a step counter in a variable of its own, which no checkpoint holds."""

    def setup(self, models):
        import tensorflow as tf

        super().setup(models)
        self._calls = tf.Variable(0.0, trainable=False, name="calls")

    def train_step(self, batch, models, ctx):
        self._calls.assign_add(1.0)
        return super().train_step(batch._replace(images=batch.images * self._calls), models, ctx)


class GeneratorOnlyStrategy(GANStrategy):
    """Updates the generator and forgets the discriminator."""

    def train_step(self, batch, models, ctx):
        import tensorflow as tf

        latents = ctx.normal("g_latents", (batch.images.shape[1], models.latent_dim))
        with tf.GradientTape() as tape:
            fake = models.generate(latents)
            g_loss = models.loss.generator_loss(models.discriminate(fake), ctx.child("loss/g"))
        models.updates["generator"].minimize(tape, g_loss)
        return StepOutputs({"g_loss": g_loss}, fake)


class TupleStrategy(GANStrategy):
    def train_step(self, batch, models, ctx):
        return tuple(super().train_step(batch, models, ctx))


class NoLossStrategy(GANStrategy):
    def train_step(self, batch, models, ctx):
        out = super().train_step(batch, models, ctx)
        return StepOutputs({"d_on_real": out.metrics["d_on_real"]}, out.fake_images)


class FlatFakesStrategy(GANStrategy):
    def train_step(self, batch, models, ctx):
        out = super().train_step(batch, models, ctx)
        return StepOutputs(out.metrics, out.fake_images[0])


class LazyDiscriminator(TinyDiscriminator):
    """A subclassed model whose weights appear only when it is first called."""

    def build(self):
        import keras

        class Critic(keras.Model):
            def __init__(self):
                super().__init__()
                self.flatten = keras.layers.Flatten()
                self.score = keras.layers.Dense(1, activation="sigmoid")

            def call(self, x, training=False):
                return self.score(self.flatten(x))

        return Critic()


@pytest.mark.parametrize("strategy, check, match", [
    (UnseededStrategy(), "determinism",
     "two fresh sessions with the same seed differ after two steps in the metric "),
    (HiddenStateStrategy(), "resume",
     "running step 2 differs from the uninterrupted run in the metric 'd_loss' of step 2"),
    (GeneratorOnlyStrategy(), "training",
     "one step left the discriminator's weights 'score/kernel', 'score/bias' unchanged "
     "although the gradient of the discriminator's loss"),
    (TupleStrategy(), "step", "train_step returned tuple, expected gankit.StepOutputs"),
    (NoLossStrategy(), "step", "no metric is named '...loss' (got d_on_real)"),
    (FlatFakesStrategy(), "step", "fake_images has shape (4, 4, 1), expected (n, 4, 4, 1)"),
], ids=lambda v: type(v).__name__ if isinstance(v, Strategy) else None)
def test_a_broken_strategy_fails_the_matching_check(strategy, check, match):
    message = _fails(check, match, check_strategy, strategy, TinyGenerator(), TinyDiscriminator())
    if isinstance(strategy, HiddenStateStrategy):
        assert message.endswith("The step uses variable 'calls' that no checkpoint holds")
    if isinstance(strategy, TupleStrategy):
        assert message.endswith("failed the 'step' check: " + match + "(metrics, fake_images)")


class CountingGenerator(TinyGenerator):
    """Draws each build's initial weights from a seed it counts in Python: every fresh
    session starts elsewhere, though a checkpoint read into one hides it."""

    builds = 0

    def build(self):
        import keras
        from keras import layers

        CountingGenerator.builds += 1
        init = keras.initializers.GlorotUniform(seed=CountingGenerator.builds)
        z = keras.Input((self.latent_dim,))
        x = layers.Dense(16, activation="tanh", kernel_initializer=init)(z)
        return keras.Model(z, layers.Reshape((4, 4, 1))(x))


def test_fresh_sessions_that_start_from_other_weights_fail_determinism():
    # The session resume reads the checkpoint into agrees at step 2 (the checkpoint holds
    # every weight); its fresh state does not, and that alone must fail determinism.
    _fails("determinism", "two fresh sessions with the same seed differ after two steps in "
                          "the metric ", check_strategy, GANStrategy(), CountingGenerator(),
           TinyDiscriminator(), skip=["resume"])


@pytest.mark.parametrize("strategy, sessions", [(GANStrategy(), 2), (UnseededStrategy(), 3),
                                                (HiddenStateStrategy(), 3)],
                         ids=["conforming", "unseeded", "hidden-state"])
def test_a_conforming_strategy_costs_two_sessions_and_a_failing_one_three(
        strategy, sessions, monkeypatch):
    import gankit.testing.strategy as module

    built = []
    real = module._SessionRun.build

    def counted(self):
        built.append(self)
        return real(self)

    monkeypatch.setattr(module._SessionRun, "build", counted)
    try:
        check_strategy(strategy, TinyGenerator(), TinyDiscriminator())
    except ConformanceError:
        pass
    assert len(built) == sessions


def test_a_frozen_discriminator_fails_the_strategys_training():
    message = _fails("training", "the discriminator has frozen (untrainable) weights: ",
                     check_strategy, GANStrategy(), TinyGenerator(), FrozenDiscriminator())
    assert "'score/kernel', 'score/bias'" in message


def test_model_variables_made_during_the_first_step_fail_step():
    _fails("step", "discriminator gained variables during the first step", check_strategy,
           GANStrategy(), TinyGenerator(), LazyDiscriminator())


def test_the_correct_strategy_passes_on_the_tiny_models():
    report = check_strategy(GANStrategy(), TinyGenerator(), TinyDiscriminator())
    assert report.passed == STRATEGY_CHECKS and report.notes == ()


def test_a_bias_the_wasserstein_loss_cannot_move_passes_with_a_note():
    report = check_strategy(GANStrategy(), TinyGenerator(), CriticDiscriminator(),
                            loss=WassersteinLoss(), skip=["determinism", "resume"])
    assert report.notes == (
        "training: the discriminator's weight 'score/bias' stayed unchanged: its gradient is "
        "exactly zero: the loss is invariant to a constant shift of the score (the weight "
        "adds the same amount to every score, and the gradients of WassersteinLoss with "
        "respect to the scores sum to zero)",)


def test_skip_weights_leaves_a_weight_out_of_the_strategys_training_check():
    report = check_strategy(GeneratorOnlyStrategy(), TinyGenerator(), TinyDiscriminator(),
                            skip_weights=["score/"], skip=["determinism", "resume"])
    assert "training" in report.passed
    assert len([n for n in report.notes if "was not checked (skip_weights" in n]) == 2
    _fails("training", "skip_weights entry 'scroe' matches no weight", check_strategy,
           GANStrategy(), TinyGenerator(), TinyDiscriminator(), skip_weights=["scroe"],
           skip=["determinism", "resume"])


def test_mismatched_models_and_losses_are_reported():
    class Wide(TinyDiscriminator):
        @property
        def image_shape(self):
            return (4, 8, 1)

    _fails("interface", "the generator makes images of shape (4, 4, 1) but the discriminator "
                        "takes (4, 8, 1)", check_strategy, GANStrategy(), TinyGenerator(), Wide())
    _fails("interface", "the loss WassersteinLoss expects logit scores but the discriminator's "
                        "output_activation is 'sigmoid'", check_strategy, GANStrategy(),
           TinyGenerator(), TinyDiscriminator(), loss=WassersteinLoss())
    _fails("interface", "expected at least 2 images of shape (4, 4, 1)", check_strategy,
           GANStrategy(), TinyGenerator(), TinyDiscriminator(),
           images=np.zeros((1, 4, 4, 1), np.float32))
