"""Conformance checks for gankit components: one call per component, for plugin authors.

Like Keras's ``run_layer_test``, each ``check_*`` function builds and exercises a
component the way gankit's trainer will, and raises :class:`ConformanceError` (an
``AssertionError``) naming the failed check when it does not behave::

    from gankit.testing import check_generator

    def test_my_generator():
        check_generator(MyGenerator(latent_dim=8, height=16, width=16))

Installed with gankit, the pytest plugin :mod:`gankit.testing.pytest_plugin` adds fixtures
for tiny data and short recipe runs. Importing this package does not import TensorFlow;
running a check does.
"""

from __future__ import annotations

from typing import Any

from gankit.interfaces import Component, Dataset, Discriminator, Generator, Strategy
from gankit.testing.conformance import ConformanceError, ConformanceReport, check_config_round_trip
from gankit.testing.data import DATASET_CHECKS, check_dataset, make_images, write_image_folder
from gankit.testing.installed import check_plugin
from gankit.testing.models import MODEL_CHECKS, check_discriminator, check_generator
from gankit.testing.recipes import RecipeRun, run_recipe
from gankit.testing.strategy import STRATEGY_CHECKS, check_strategy

__all__ = ["ConformanceError", "ConformanceReport", "DATASET_CHECKS", "MODEL_CHECKS",
           "RecipeRun", "STRATEGY_CHECKS", "check_component", "check_config", "check_dataset",
           "check_discriminator", "check_generator", "check_plugin", "check_strategy",
           "make_images", "run_recipe", "write_image_folder"]


def check_config(component: Component) -> None:
    """Check only the config round trip of any component.

    ``get_config()`` must return a new dict holding every declared parameter as plain data
    (what a recipe can hold); ``from_config`` of it, also after a JSON round trip, must give
    a component of the same class with an equal config and equal shapes.

    Raises:
        ConformanceError: naming the problem.
    """
    def fail(message: str) -> None:
        raise ConformanceError(component, "config", message)

    check_config_round_trip(component, fail)


def check_component(component: Component, **options: Any) -> ConformanceReport:
    """Run the checks of ``component``'s kind: :func:`check_generator`,
    :func:`check_discriminator`, :func:`check_dataset` or :func:`check_strategy` (which needs
    ``generator=`` and ``discriminator=``). ``options`` go to that function."""
    if isinstance(component, Generator):
        return check_generator(component, **options)
    if isinstance(component, Discriminator):
        return check_discriminator(component, **options)
    if isinstance(component, Dataset):
        return check_dataset(component, **options)
    if isinstance(component, Strategy):
        return check_strategy(component, **options)
    raise TypeError(f"check_component() takes a gankit component instance, got "
                    f"{type(component).__name__}")
