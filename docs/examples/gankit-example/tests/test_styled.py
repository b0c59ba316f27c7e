"""The StyleGAN-like generator: its own Keras layers, an Embedding for the class, and the
conformance checks (the save check loads it in a fresh process, through the plugin's
gankit_keras_objects hook)."""

import pytest
from gankit_example.relativistic import RelativisticAverageLoss
from gankit_example.styled import StyledGenerator

from gankit.errors import RecipeError
from gankit.testing import check_generator, check_loss

TINY = {"latent_dim": 4, "height": 8, "width": 8, "channels": 1, "filters": 4, "style_dim": 4}


def test_generator():
    check_generator(StyledGenerator(**TINY))


def test_conditional_generator():
    check_generator(StyledGenerator(num_classes=2, **TINY))


def test_sizes_it_cannot_make_are_refused():
    with pytest.raises(RecipeError, match="generator.height: expected 4 times a power of two"):
        StyledGenerator(height=12, width=12)
    with pytest.raises(RecipeError, match="generator.width: expected width equal to height"):
        StyledGenerator(height=8, width=16)


def test_relativistic_loss():
    check_loss(RelativisticAverageLoss())
