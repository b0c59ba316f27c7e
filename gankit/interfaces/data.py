"""Datasets: training images (and, for conditional GANs, their class labels)."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, NamedTuple

from gankit.interfaces.component import Component

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


class Examples(NamedTuple):
    """What a dataset loads: images, and class labels when it has them."""

    images: "np.ndarray"
    """float32 ``(n, height, width, channels)`` scaled into the dataset's ``value_range``."""
    labels: Any = None
    """int32 ``(n,)`` class indices ``0 .. len(class_names) - 1``, or None (unlabelled)."""


class Dataset(Component):
    """A set of training images held in memory.

    ``load()`` returns the images in the dataset's own order; the trainer decides batching
    and shuffling, so that the batch at any step can be recomputed exactly on resume.
    """

    kind = "dataset"

    @property
    @abc.abstractmethod
    def image_shape(self) -> tuple[int, int, int]:
        """``(height, width, channels)`` of every image."""

    @property
    @abc.abstractmethod
    def value_range(self) -> tuple[float, float]:
        """The range pixel values are scaled into (e.g. ``(0.0, 1.0)``)."""

    @property
    def class_names(self) -> tuple[str, ...] | None:
        """The names of the classes its labels index, or None for an unlabelled dataset."""
        return None

    def preflight(self) -> None:
        """Quick checks that need no TensorFlow and read no images (does the folder or
        archive exist?), run by ``gankit run`` before anything slow.

        Raises:
            gankit.errors.DatasetError: naming what is missing and what to do.
        """

    @abc.abstractmethod
    def load(self) -> "Examples | np.ndarray":
        """Return every example: an :class:`Examples` (or just the float32 image array
        ``(n, height, width, channels)`` for an unlabelled dataset).

        Raises:
            gankit.errors.DatasetError: when the data is missing, unreadable or malformed.
        """
