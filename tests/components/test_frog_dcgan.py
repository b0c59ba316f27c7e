"""The built-in frog DCGAN components, each built and exercised alone."""

import keras
import numpy as np
import pytest

from gankit.errors import RecipeError
from gankit_dcgan.discriminator import FrogDCGANDiscriminator
from gankit_dcgan.generator import FrogDCGANGenerator

TINY_G = dict(latent_dim=8, height=24, width=24, base_filters=8, filters=8)
TINY_D = dict(height=24, width=24, filters=8)


def test_generator_is_the_articles_stack():
    model = FrogDCGANGenerator().build()
    assert model.count_params() == 6_264_579
    assert model.input_shape == (None, 32) and model.output_shape == (None, 32, 32, 3)
    kinds = [type(layer).__name__ for layer in model.layers[1:]]
    assert kinds == ["Dense", "LeakyReLU", "Reshape", "Conv2D", "LeakyReLU", "Conv2DTranspose",
                     "LeakyReLU", "Conv2D", "LeakyReLU", "Conv2D", "LeakyReLU", "Conv2D"]
    assert model.layers[-1].activation.__name__ == "tanh"
    assert model.layers[2].negative_slope == pytest.approx(0.3)  # Keras' default, as used


def test_discriminator_is_the_articles_stack():
    model = FrogDCGANDiscriminator().build()
    assert model.count_params() == 790_913
    assert model.output_shape == (None, 1)
    kinds = [type(layer).__name__ for layer in model.layers[1:]]
    assert kinds == ["Conv2D", "LeakyReLU"] * 4 + ["Flatten", "Dropout", "Dense"]
    assert model.layers[-2].rate == pytest.approx(0.4)


def test_sizes_are_parameters():
    gen = FrogDCGANGenerator(**TINY_G)
    images = gen.build()(np.zeros((2, 8), "float32"))
    assert images.shape == (2, 24, 24, 3) and gen.image_shape == (24, 24, 3)
    assert np.all(np.abs(images) <= 1.0)
    scores = FrogDCGANDiscriminator(**TINY_D).build()(images)
    assert scores.shape == (2, 1) and np.all((scores >= 0) & (scores <= 1))


def test_shape_parameters_are_checked():
    with pytest.raises(RecipeError, match="generator.height: expected an even number"):
        FrogDCGANGenerator(height=25)
    with pytest.raises(RecipeError, match="discriminator.width: expected at least 24"):
        FrogDCGANDiscriminator(width=20)


def test_config_round_trip():
    for component in (FrogDCGANGenerator(**TINY_G), FrogDCGANDiscriminator(**TINY_D)):
        again = type(component).from_config(component.get_config())
        assert again.get_config() == component.get_config()


def test_seeded_builds_are_identical():
    keras.utils.set_random_seed(5)
    a = FrogDCGANGenerator(**TINY_G).build().get_weights()
    keras.utils.set_random_seed(5)
    b = FrogDCGANGenerator(**TINY_G).build().get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
