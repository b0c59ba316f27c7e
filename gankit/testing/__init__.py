"""Conformance checks for gankit components: one call per component, for plugin authors.

Like Keras's ``run_layer_test``, each ``check_*`` function builds and exercises a
component the way gankit's trainer will, and raises :class:`ConformanceError` (an
``AssertionError``) naming the failed check when it does not behave::

    from gankit.testing import check_generator, check_loss, check_strategy

    def test_my_generator():
        check_generator(MyGenerator(latent_dim=8, height=16, width=16))

    def test_my_loss():
        check_loss(MyLoss())

    def test_my_strategy():
        report = check_strategy(MyStrategy(), TinyGenerator(), TinyDiscriminator(),
                                loss=MyLoss())
        print(report.notes)  # e.g. a bias the loss cannot move, and why

One function per kind: :func:`check_generator` and :func:`check_discriminator` (models),
:func:`check_dataset`, :func:`check_loss`, :func:`check_regularizer`,
:func:`check_augmenter` (the parts a strategy receives) and :func:`check_strategy`, which
trains the strategy with its parts in a real :class:`gankit.training.session.TrainingSession`
fed as the trainer feeds it; :func:`check_metric` and :func:`check_feature_extractor`
(made-up features and tiny images whose answers are known). :func:`check_mixed_precision`
runs a generator, a discriminator or a strategy under ``train.precision: mixed_bfloat16``
and ``mixed_float16``. :func:`check_component` picks the function by kind. Each
returns a :class:`ConformanceReport` of the checks that passed, those skipped and notes;
the ``*_CHECKS`` tuples name the checks a ``skip=`` argument may leave out.

Installed with gankit, the pytest plugin :mod:`gankit.testing.pytest_plugin` adds fixtures
for tiny data and short recipe runs. Importing this package does not import TensorFlow;
running a check does.
"""

from __future__ import annotations

from typing import Any

from gankit.interfaces import (
    Augmenter,
    Callback,
    Component,
    Dataset,
    Discriminator,
    FeatureExtractor,
    Generator,
    Loss,
    Metric,
    Optimizer,
    Regularizer,
    Schedule,
    Strategy,
)
from gankit.testing.callbacks import CALLBACK_CHECKS, check_callback
from gankit.testing.conformance import ConformanceError, ConformanceReport, check_config_round_trip
from gankit.testing.data import DATASET_CHECKS, check_dataset, make_images, write_image_folder
from gankit.testing.installed import check_plugin
from gankit.testing.metrics import (
    FEATURE_EXTRACTOR_CHECKS,
    METRIC_CHECKS,
    check_feature_extractor,
    check_metric,
)
from gankit.testing.models import (
    CONDITIONAL_CHECKS,
    MODEL_CHECKS,
    check_discriminator,
    check_generator,
)
from gankit.testing.optim import (
    OPTIMIZER_CHECKS,
    SCHEDULE_CHECKS,
    check_optimizer,
    check_schedule,
)
from gankit.testing.parts import (
    AUGMENTER_CHECKS,
    LOSS_CHECKS,
    REGULARIZER_CHECKS,
    check_augmenter,
    check_loss,
    check_regularizer,
)
from gankit.testing.precision import PRECISION_CHECKS, check_mixed_precision
from gankit.testing.recipes import RecipeRun, run_recipe
from gankit.testing.strategy import STRATEGY_CHECKS, check_strategy

__all__ = [
    # one check per kind, and check_component to pick it
    "check_augmenter", "check_callback", "check_component", "check_config", "check_dataset",
    "check_discriminator", "check_feature_extractor", "check_generator", "check_loss",
    "check_metric", "check_mixed_precision", "check_optimizer", "check_plugin",
    "check_regularizer", "check_schedule", "check_strategy",
    # the names of each kind's checks, for skip=
    "AUGMENTER_CHECKS", "CALLBACK_CHECKS", "CONDITIONAL_CHECKS", "DATASET_CHECKS",
    "FEATURE_EXTRACTOR_CHECKS", "LOSS_CHECKS", "METRIC_CHECKS", "MODEL_CHECKS",
    "OPTIMIZER_CHECKS", "PRECISION_CHECKS", "REGULARIZER_CHECKS", "SCHEDULE_CHECKS",
    "STRATEGY_CHECKS",
    # results, and helpers for tests
    "ConformanceError", "ConformanceReport", "RecipeRun", "make_images", "run_recipe",
    "write_image_folder",
]


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
    :func:`check_discriminator`, :func:`check_dataset`, :func:`check_loss`,
    :func:`check_regularizer`, :func:`check_augmenter`, :func:`check_strategy` (which needs
    ``generator=`` and ``discriminator=``), :func:`check_callback`, :func:`check_metric`,
    :func:`check_feature_extractor`, :func:`check_optimizer` or :func:`check_schedule`.
    ``options`` go to that function.

    Raises:
        TypeError: for anything but an instance of one of those kinds.
    """
    checks = ((Generator, check_generator), (Discriminator, check_discriminator),
              (Dataset, check_dataset), (Loss, check_loss), (Regularizer, check_regularizer),
              (Augmenter, check_augmenter), (Strategy, check_strategy),
              (Callback, check_callback), (Metric, check_metric),
              (FeatureExtractor, check_feature_extractor), (Optimizer, check_optimizer),
              (Schedule, check_schedule))
    for interface, check in checks:
        if isinstance(component, interface):
            return check(component, **options)
    if isinstance(component, Component):
        raise TypeError(f"check_component() has no check of its own for the {component.kind} "
                        f"{type(component).__name__}; use check_config(component)")
    raise TypeError(f"check_component() takes a gankit component instance, got "
                    f"{type(component).__name__}")
