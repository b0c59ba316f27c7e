"""The conformance kit really checks: each deliberately broken component fails the check
that covers its defect, with a message saying what is wrong."""

import numpy as np
import pytest

from gankit import Dataset, Discriminator, Generator, Param, StepOutputs, Strategy
from gankit.testing import (ConformanceError, check_config, check_dataset, check_discriminator,
                            check_generator, check_strategy)
from gankit_dcgan.strategy import AlternatingStrategy


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
        x = layers.Dense(1, activation=self.config["activation"])(layers.Flatten()(image))
        return keras.Model(image, x)


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
        x = layers.Dense(16, name="last")(x)
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
        x = layers.Dense(16, kernel_initializer=keras.initializers.Constant(noise))(z)
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


def test_frozen_layers_need_not_train():
    # Frozen weights are not trainable; the rest must still train.
    check_generator(FrozenGenerator())


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

class FreezingStrategy(AlternatingStrategy):
    """The Keras 2 habit: the discriminator is never updated."""

    def train_step(self, real_images, inputs):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            fake = self._generator(inputs["g_latents"], training=True)
            g_loss = self._loss(tf.zeros([tf.shape(real_images)[0], 1]),
                                self._discriminator(fake, training=False))
        grads = tape.gradient(g_loss, self._generator.trainable_variables)
        self._optimizers["generator"].apply(grads, self._generator.trainable_variables)
        return StepOutputs({"g_loss": g_loss}, fake)


class UnseededInputsStrategy(AlternatingStrategy):
    def draw_inputs(self, seed, batch_size):
        import tensorflow as tf

        inputs = dict(super().draw_inputs(seed, batch_size))
        inputs["g_latents"] = tf.random.normal((batch_size, self._latent_dim))
        return inputs


class LazyOptimizerStrategy(AlternatingStrategy):
    def setup(self, generator, discriminator, latent_dim):
        super().setup(generator, discriminator, latent_dim)
        self._optimizers = {"discriminator": self._optimizer(1e-3),
                            "generator": self._optimizer(1e-3)}  # built on the first step


class HiddenStateStrategy(AlternatingStrategy):
    """Keeps a step counter in a variable no checkpoint sees."""

    def setup(self, generator, discriminator, latent_dim):
        import tensorflow as tf

        super().setup(generator, discriminator, latent_dim)
        self._calls = tf.Variable(0.0, trainable=False)

    def train_step(self, real_images, inputs):
        self._calls.assign_add(1.0)
        out = super().train_step(real_images * self._calls, inputs)
        return out


class TupleStrategy(AlternatingStrategy):
    def train_step(self, real_images, inputs):
        out = super().train_step(real_images, inputs)
        return tuple(out)


class NoLossStrategy(AlternatingStrategy):
    def train_step(self, real_images, inputs):
        out = super().train_step(real_images, inputs)
        return StepOutputs({"d_on_real": out.metrics["d_on_real"]}, out.fake_images)


@pytest.mark.parametrize("strategy, check, match", [
    (FreezingStrategy(), "training",
     "one step left the discriminator's weight(s) 'dense_"),
    (UnseededInputsStrategy(), "inputs", "draw_inputs gave different 'g_latents' for the "
                                         "same seed"),
    (LazyOptimizerStrategy(), "step", "optimizer/discriminator gained variables during the "
                                      "first step"),
    (HiddenStateStrategy(), "resume", "differs from the uninterrupted run in generator "
                                      "variable '"),
    (TupleStrategy(), "step", "train_step returned tuple, expected gankit.StepOutputs"),
    (NoLossStrategy(), "step", "no metric is named '...loss' (got d_on_real)"),
], ids=lambda v: type(v).__name__ if isinstance(v, Strategy) else None)
def test_a_broken_strategy_fails_the_matching_check(strategy, check, match):
    _fails(check, match, check_strategy, strategy, TinyGenerator(), TinyDiscriminator())


def test_the_correct_strategy_passes_on_the_tiny_models():
    check_strategy(AlternatingStrategy(), TinyGenerator(), TinyDiscriminator())


def test_mismatched_models_are_reported():
    class Wide(TinyDiscriminator):
        @property
        def image_shape(self):
            return (4, 8, 1)

    _fails("interface", "the generator makes images of shape (4, 4, 1) but the discriminator "
                        "takes (4, 8, 1)", check_strategy, AlternatingStrategy(),
           TinyGenerator(), Wide())
