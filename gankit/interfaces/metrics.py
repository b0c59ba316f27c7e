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

    Images are given as float32 ``(n, H, W, C)`` in ``[0, 1]``, of any size and with the
    channels of their source (3 from a folder, a dataset's own during training); the
    extractor resizes them and maps them to the pixel range and channels its network
    expects. The features of an image depend on that image alone (not on the others in its
    batch, nor on the instance: a new one built from the same config gives the same ones),
    since reference features are cached on disk and reused by later runs.
    :func:`gankit.testing.check_feature_extractor` checks all of this.
    """

    kind = "feature_extractor"

    @abc.abstractmethod
    def protocol(self) -> Mapping[str, Any]:
        """Everything that determines the features (network, weights' digest, layer, input
        size, resize method), as plain JSON data: it keys cached reference statistics and is
        reported beside every value, so it is the same for every instance of one config
        (no object ids, times or temporary paths)."""

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

        Returns ``Features(features, logits)``: ``features`` float32 or float64 ``(n, d)``,
        finite, ``d`` the same for every batch; ``logits`` ``(n, classes)`` or None (with
        :meth:`class_names`, one column per name, in order). Leave ``labels`` None: the
        caller adds each image's class.

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
        lower_is_better: the direction of the first value: True when lower is better (a
            distance such as FID), False when higher is (precision, Inception Score). It
            decides which value ``best/`` keeps when the metric selects checkpoints.
        best_value: the first value when the generated features are the real ones, where
            the metric has a fixed one (1.0 for coverage or precision). None (the default)
            means 0 for a metric that ``needs_real`` and is ``lower_is_better`` (a
            distance), and no fixed value otherwise.
            :func:`gankit.testing.check_metric` checks it.
    """

    kind = "metric"
    needs_real: ClassVar[bool] = True
    needs_logits: ClassVar[bool] = False
    needs_labels: ClassVar[bool] = False
    lower_is_better: ClassVar[bool] = True
    best_value: ClassVar[float | None] = None

    @abc.abstractmethod
    def compute(self, fake: Features, real: Features | None,
                rng: np.random.Generator) -> dict[str, float]:
        """The metric's values by name (e.g. ``{"kid": ..., "kid_std": ...}``); the first
        is the one that ranks checkpoints.

        Args:
            fake: the generated images' features (with their classes when
                ``needs_labels``; with logits when the extractor gives them).
            real: the real images' features when ``needs_real``, else None.
            rng: the only source of randomness (e.g. KID's subsets), seeded by the caller,
                so the same features give the same values.

        The names must not depend on the features (they name ``losses.csv``'s columns
        before the first evaluation; a per-class metric names one ``NAME/CLASS`` value per
        class besides its mean), the values are finite floats, and the arrays given are
        left unchanged.

        Raises:
            gankit.errors.GankitError: too few images for the settings, or features it
                cannot use (one line saying what to change).
        """


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
