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


class DataSource(abc.ABC):
    """Random access to a dataset's examples by index, read inside a ``tf.data`` pipeline.

    The trainer computes the example indices of each step (a pure function of the step, so
    a resume is exact) and calls :meth:`read` with them inside a ``tf.data`` map; the images
    need not be held in memory. Only the labels are (four bytes an example).
    """

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """How many examples there are: valid indices are ``0 .. size - 1``."""

    @property
    def labels(self) -> "np.ndarray | None":
        """int32 ``(size,)`` class indices ``0 .. len(class_names) - 1``, or None."""
        return None

    @abc.abstractmethod
    def read(self, indices: Any) -> Any:
        """The images at ``indices``, in that order.

        Called in graph mode (inside ``tf.data.Dataset.map``): use TensorFlow ops only, no
        Python side effects. To report an example that cannot be read (a damaged file), make
        the graph fail with :func:`gankit.training.data.fail_unless`, whose message the
        trainer turns into a one-line :class:`~gankit.errors.DatasetError`.

        Args:
            indices: an int64 tensor ``(k,)``.

        Returns:
            a float32 tensor ``(k, height, width, channels)`` in the dataset's
            ``value_range``.
        """


class Dataset(Component):
    """A set of training images (and, when asked for, their class labels).

    ``load()`` returns the images in the dataset's own order; the trainer decides batching
    and shuffling, so that the batch at any step can be recomputed exactly on resume. The
    trainer reads through :meth:`source`, which by default holds what ``load()`` returns in
    memory; a dataset too large for memory overrides it to read its examples on demand.
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
        """The names of the classes its labels index, or None for an unlabelled dataset.

        Known without TensorFlow and without reading the images (recipe validation checks it
        against the models' ``num_classes``). The built-in datasets have labels only when
        their ``labels`` parameter is true.
        """
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

    def source(self) -> DataSource:
        """Random access to the examples, for the trainer's ``tf.data`` pipeline.

        The default holds what :meth:`load` returns in memory; a streaming dataset overrides
        it. Its order, size and labels must be those of :meth:`load`.

        Raises:
            gankit.errors.DatasetError: when the data is missing, unreadable or malformed.
        """
        from gankit.training.data import ArraySource, as_examples

        examples = as_examples(self.load(), self.image_shape)
        return ArraySource(examples.images, examples.labels, self.value_range)
