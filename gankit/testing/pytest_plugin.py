"""pytest fixtures for testing gankit plugins, installed through the ``pytest11`` entry point.

Fixtures:
    gankit_images: a function ``(n=4, shape=(24, 24, 3), value_range=(0, 1), seed=0)``
        returning seeded float32 images, tiny real data for a check.
    gankit_image_folder: a function ``(n=4, height=24, width=24, channels=3, seed=0)``
        writing seeded PNGs into a new folder under ``tmp_path`` and returning its path.
    gankit_plugins: the installed plugins, freshly loaded (a
        :class:`gankit.plugin.manager.LoadedPlugins`).
    gankit_run: a function ``(recipe, steps=2, overrides=(), check=True)`` that trains a
        recipe for a few steps into a new run directory under ``tmp_path`` and returns a
        :class:`gankit.testing.RecipeRun`.

The conformance checks themselves are plain functions: ``from gankit.testing import
check_generator``. Loading this plugin imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

import itertools
import os

import pytest


def pytest_configure(config) -> None:
    # Quiet TensorFlow's C++ start-up chatter in test output, unless the user chose a level.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def gankit_images():
    """A function returning seeded tiny float32 images ``(n, *shape)`` in ``value_range``."""
    from gankit.testing.data import make_images

    return make_images


@pytest.fixture
def gankit_image_folder(tmp_path):
    """A function writing seeded PNG images into a new folder under ``tmp_path``."""
    from gankit.testing.data import write_image_folder

    counter = itertools.count()

    def make(n: int = 4, height: int = 24, width: int = 24, channels: int = 3, seed: int = 0):
        return write_image_folder(tmp_path / f"images{next(counter)}", n, height, width,
                                  channels, seed)

    return make


@pytest.fixture
def gankit_plugins():
    """The installed gankit plugins, loaded afresh for this test."""
    from gankit.plugin.manager import load_plugins

    return load_plugins()


@pytest.fixture
def gankit_run(tmp_path):
    """A function training a recipe for a few steps into a new run directory."""
    from gankit.testing.recipes import run_recipe

    counter = itertools.count()

    def run(recipe, steps: int = 2, overrides=(), check: bool = True):
        return run_recipe(recipe, tmp_path / f"run{next(counter)}", steps=steps,
                          overrides=overrides, check=check)

    return run
