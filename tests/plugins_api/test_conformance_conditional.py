"""The conformance kit's checks of class-conditional models catch the usual mistakes."""

import pytest

import gankit
from gankit import Param
from gankit.testing import (
    CONDITIONAL_CHECKS,
    MODEL_CHECKS,
    ConformanceError,
    check_discriminator,
    check_generator,
)
from gankit_nets.dcgan import DCGANDiscriminator

# Only what the label checks need: the other checks have their own tests.
ONLY_LABELS = [c for c in MODEL_CHECKS if c not in ("interface", "build")]


class LabelledGenerator(gankit.Generator):
    """A tiny generator, conditional in one of several right or wrong ways (``mode``)."""

    name = "labelled"
    params = {"latent_dim": Param(int, 4), "height": Param(int, 4), "width": Param(int, 4),
              "channels": Param(int, 1), "num_classes": Param(int, 3),
              "mode": Param(str, "embedding")}

    def build(self):
        import keras
        from keras import layers

        mode, classes = self.config["mode"], self.config["num_classes"]
        z = latent = keras.Input((4,), name="latent")
        label = keras.Input((), dtype="float32" if mode == "float_label" else "int32",
                            name="label")
        onehot = layers.CategoryEncoding(classes, output_mode="one_hot")(label)
        embedding = layers.Dense(4, use_bias=False, name="class_embedding",
                                 kernel_initializer="zeros" if mode == "ignored" else "ones",
                                 trainable=mode not in ("frozen", "ignored"))
        if mode == "frozen":  # classes differ, but training cannot move them
            embedding.kernel_initializer = keras.initializers.RandomNormal()
        if mode == "no_label_input":  # an unconditional model that declares num_classes
            return keras.Model(z, layers.Reshape((4, 4, 1))(layers.Dense(16)(z)))
        if mode == "keras_embedding":  # its gradient is a tf.IndexedSlices, not a tensor
            embedded = layers.Flatten()(layers.Embedding(classes, 4, name="class_table")(
                layers.Reshape((1,))(label)))
            x = layers.Dense(16, activation="tanh")(layers.Concatenate()([z, embedded]))
            return keras.Model([z, label], layers.Reshape((4, 4, 1))(x))
        if mode == "ignores_z":
            z = layers.Rescaling(0.0)(z)
        x = layers.Concatenate()([z, embedding(onehot)])
        x = layers.Dense(16, activation="tanh")(x)
        return keras.Model([latent, label], layers.Reshape((4, 4, 1))(x))


def failure(component, check_function=check_generator, **options) -> ConformanceError:
    options.setdefault("skip", ONLY_LABELS)
    with pytest.raises(ConformanceError) as caught:
        check_function(component, **options)
    return caught.value


def test_a_well_made_conditional_generator_passes_the_label_checks():
    report = check_generator(LabelledGenerator(), skip=ONLY_LABELS)
    assert report.passed == ("interface", "build") + CONDITIONAL_CHECKS


def test_a_conditional_model_without_a_label_input_fails_build():
    error = failure(LabelledGenerator(mode="no_label_input"))
    assert error.check == "build"
    assert "with num_classes 3 it takes [latents, labels]" in str(error)


def test_float_labels_fail_label_input():
    error = failure(LabelledGenerator(mode="float_label"))
    assert error.check == "label_input" and "expected (None,) of an integer dtype" in str(error)


def test_a_generator_with_a_keras_embedding_passes_every_check():
    # The gradients check used to crash: "ufunc 'isfinite' not supported" on IndexedSlices.
    report = check_generator(LabelledGenerator(mode="keras_embedding"))
    assert report.passed == MODEL_CHECKS + CONDITIONAL_CHECKS


def test_a_conditional_generator_that_ignores_z_fails_input_effect():
    # Only the label reaches the image: the label checks pass, input_effect does not.
    generator = LabelledGenerator(mode="ignores_z")
    report = check_generator(generator, skip=ONLY_LABELS)
    assert report.passed == ("interface", "build") + CONDITIONAL_CHECKS
    error = failure(generator, skip=[c for c in ONLY_LABELS if c != "input_effect"])
    assert error.check == "input_effect"
    assert "different latents give identical images" in str(error)


def test_a_label_that_does_not_reach_the_output_fails_label_effect():
    error = failure(LabelledGenerator(mode="ignored"))
    assert error.check == "label_effect"
    assert "labels 0 and 1 give identical images for the same latents" in str(error)


def test_a_frozen_embedding_fails_label_gradients():
    error = failure(LabelledGenerator(mode="frozen"))
    assert error.check == "label_gradients" and "reaches no class embedding" in str(error)
    report = check_generator(LabelledGenerator(mode="frozen"),
                             skip=ONLY_LABELS + ["label_gradients"])
    assert report.skipped[-1] == "label_gradients"


def test_unconditional_models_have_no_label_checks():
    with pytest.raises(ValueError, match="unknown check 'label_effect'"):
        check_discriminator(DCGANDiscriminator(base_filters=2), skip=["label_effect"])
