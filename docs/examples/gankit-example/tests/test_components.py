"""The example plugin's models and dataset through gankit's conformance checks."""

import pytest
from gankit_example.critic import ConvCritic
from gankit_example.generator import UpsamplingGenerator
from gankit_example.shapes import ShapesDataset

from gankit.errors import RecipeError
from gankit.testing import (
    check_config,
    check_dataset,
    check_discriminator,
    check_generator,
    check_plugin,
)

# Small enough that every check runs in about a second.
TINY = {"height": 8, "width": 8, "channels": 1}


def test_the_plugin_is_installed_and_registers_every_component():
    check_plugin("example", provides={"generator": ["upsampling", "styled"],
                                      "discriminator": ["conv_critic"], "dataset": ["shapes"],
                                      "loss": ["noisy_least_squares", "relativistic_average"],
                                      "regularizer": ["consistency"],
                                      "callback": ["fooled_share"],
                                      "metric": ["density_coverage"],
                                      "feature_extractor": ["thumbnail"]})


def test_generator():
    check_generator(UpsamplingGenerator(latent_dim=4, filters=4, **TINY))


def test_generator_rejects_a_size_it_cannot_make():
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


def test_every_model_and_the_dataset_round_trip_their_config():
    for component in (UpsamplingGenerator(filters=8), ConvCritic(), ShapesDataset(seed=3)):
        check_config(component)
