"""Measuring quality: feature extractors and the metrics computed from their features."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, NamedTuple, Sequence

from gankit.errors import RecipeError
from gankit.interfaces.component import Component

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


class Features(NamedTuple):
    """What an extractor computes for a set of images."""

    features: np.ndarray
    """float64 or float32 ``(n, d)``: the embedding FID, KID and precision/recall compare."""
    logits: np.ndarray | None = None
    """``(n, classes)`` class logits, for the Inception Score; None if the network has none."""
    labels: np.ndarray | None = None
    """int ``(n,)`` class index of each image (a conditional generator's label, a labelled
    dataset's label), for per-class metrics; None for images of no known class."""
    class_names: tuple[str, ...] | None = None
    """The names of the classes ``labels`` index; None if unknown."""


class FeatureExtractor(Component):
    """A network that maps images to feature vectors (and class logits when it has them).

    Images are given as float32 ``(n, H, W, C)`` in ``[0, 1]``; the extractor resizes them
    and maps them to the pixel range its network expects.
    """

    kind = "feature_extractor"

    @abc.abstractmethod
    def protocol(self) -> Mapping[str, Any]:
        """Everything that determines the features (network, weights' digest, layer, input
        size, resize method), as plain data: it keys cached reference statistics and is
        reported beside every value."""

    def class_names(self) -> tuple[str, ...] | None:
        """The names of the classes of its logits, in order, when it knows them (a
        classifier trained on your data); None otherwise. Per-class metrics that read the
        logits need them, to match each logit with a generator's class by name. Reads at
        most a small file: no TensorFlow."""
        return None

    def preflight(self) -> None:
        """Quick checks that need no TensorFlow and load no network (do the named weight
        or model files exist?), run before anything slow. Default: none.

        Raises:
            gankit.errors.GankitError: naming the parameter and the file.
        """

    @abc.abstractmethod
    def extract(self, images: np.ndarray) -> Features:
        """Features of one batch of images (the caller batches; keep memory bounded).

        Raises:
            gankit.errors.GankitError: the weights cannot be found or loaded (one line
                saying how to supply them).
        """


class Metric(Component):
    """A number comparing generated images with real ones through their features.

    Class attributes:
        needs_real: False for a metric of the generated images alone (Inception Score).
        needs_logits: True if it needs the extractor's class logits.
        needs_labels: True for a per-class metric: it needs each image's class
            (``Features.labels``), so a conditional generator and, when it ``needs_real``,
            labelled real images. When it also ``needs_logits``, the logits it sees are
            aligned with the classes: column ``i`` is class ``i`` (the extractor's other
            classes follow).
        lower_is_better: how "best" is chosen when the metric selects checkpoints.
    """

    kind = "metric"
    needs_real: ClassVar[bool] = True
    needs_logits: ClassVar[bool] = False
    needs_labels: ClassVar[bool] = False
    lower_is_better: ClassVar[bool] = True

    @abc.abstractmethod
    def compute(self, fake: Features, real: Features | None,
                rng: np.random.Generator) -> dict[str, float]:
        """The metric's values by name (e.g. ``{"kid": ..., "kid_std": ...}``); the first
        is the one that ranks checkpoints."""


def logit_classes(extractor: FeatureExtractor, class_names: Sequence[str],
                  path: str = "class_accuracy") -> tuple[str, ...]:
    """The names of the extractor's logits, which must include every one of ``class_names``.

    Raises:
        RecipeError: the extractor does not name its classes, or lacks one of them.
    """
    known = extractor.class_names()
    if known is None:
        raise RecipeError(f"the classifier's logits are matched with the generator's classes "
                          f"by name, and the extractor '{extractor.name}' does not name its "
                          f"classes; use --extractor keras_model with a model from gankit "
                          f"train-classifier (its report names them) or set "
                          f"extractor.class_names", path=path)
    missing = [c for c in class_names if c not in known]
    if missing:
        raise RecipeError(f"the classifier knows no class '{missing[0]}'; its classes: "
                          f"{', '.join(known)} (set extractor.class_names to name its logits "
                          f"as the generator's classes are named)", path=path)
    return tuple(known)
