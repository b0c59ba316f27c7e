"""Each component of the example plugin through gankit's conformance checks."""

import pytest

from gankit.testing import (check_config, check_dataset, check_discriminator, check_generator,
                            check_plugin, check_strategy)
from gankit_example.critic import ConvCritic
from gankit_example.generator import UpsamplingGenerator
from gankit_example.shapes import ShapesDataset
from gankit_example.strategy import LeastSquaresStrategy

# Small enough that every check runs in about a second.
TINY = {"height": 8, "width": 8, "channels": 1}


def test_the_plugin_is_installed_and_registers_all_four_components():
    check_plugin("example", provides={"generator": ["upsampling"],
                                      "discriminator": ["conv_critic"],
                                      "dataset": ["shapes"], "strategy": ["least_squares"]})


def test_generator():
    check_generator(UpsamplingGenerator(latent_dim=4, filters=4, **TINY))


def test_generator_rejects_a_size_it_cannot_make():
    from gankit.errors import RecipeError

    with pytest.raises(RecipeError, match="generator.height: expected a multiple of 4"):
        UpsamplingGenerator(height=10)


def test_critic_on_real_shapes():
    images = ShapesDataset(count=4, **TINY).load()
    check_discriminator(ConvCritic(filters=4, **TINY), images=images)


def test_dataset():
    check_dataset(ShapesDataset(count=8, **TINY))


def test_dataset_in_colour_and_another_range():
    dataset = ShapesDataset(count=4, channels=3, height=8, width=8, scale=[0.0, 1.0])
    check_dataset(dataset, min_images=4)
    assert dataset.load().shape == (4, 8, 8, 3)


def test_strategy():
    check_strategy(LeastSquaresStrategy(), UpsamplingGenerator(latent_dim=4, filters=4, **TINY),
                   ConvCritic(filters=4, **TINY), images=ShapesDataset(count=4, **TINY).load())


def test_every_component_round_trips_its_config():
    for component in (UpsamplingGenerator(filters=8), ConvCritic(), ShapesDataset(seed=3),
                      LeastSquaresStrategy(learning_rate=1e-3)):
        check_config(component)
