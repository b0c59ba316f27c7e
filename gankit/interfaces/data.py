"""Datasets: training images (and, for conditional GANs, their class labels).

Besides the contracts (:class:`Dataset`, :class:`DataSource`, :class:`Examples`), the
DataSource toolkit a dataset plugin uses: ``as_examples`` checks what ``Dataset.load()``
returned, ``ArraySource`` serves examples held in memory, ``scale_uint8`` scales pixels in
the graph, ``fail_unless`` / ``dataset_error`` carry a one-line
:class:`~gankit.errors.DatasetError` out of the ``tf.data`` pipeline, and ``dataset_source``
is the checked ``Dataset.source()`` the trainer reads.
"""

from __future__ import annotations

import abc
import base64
import re
from typing import Any, NamedTuple

import numpy as np

from gankit.errors import DatasetError
from gankit.interfaces.component import Component
from gankit.util.graph import plain_python


class Examples(NamedTuple):
    """What a dataset loads: images, and class labels when it has them."""

    images: np.ndarray
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
    def labels(self) -> np.ndarray | None:
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
    def load(self) -> Examples | np.ndarray:
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
        examples = as_examples(self.load(), self.image_shape)
        return ArraySource(examples.images, examples.labels, self.value_range)


# The DataSource toolkit: what a dataset plugin uses to give the trainer its examples
# (exported by the face: ``from gankit import ArraySource``). TensorFlow is imported
# inside the functions.

_ERROR_MARK, _ERROR_END = "gankit-dataset-error:", ":end"
_ERROR_PATTERN = re.compile(re.escape(_ERROR_MARK) + r"([A-Za-z0-9_=-]*)" + re.escape(_ERROR_END))


def as_examples(loaded: Any, image_shape: tuple[int, int, int]) -> Examples:
    """Check what a dataset's ``load()`` returned and normalise it to :class:`Examples`.

    Raises:
        DatasetError: for the wrong type, shape, dtype or label count.
    """
    if not isinstance(loaded, Examples):
        loaded = Examples(loaded)
    images = loaded.images
    if not isinstance(images, np.ndarray):
        raise DatasetError(f"the dataset returned {type(images).__name__} images, expected a "
                           f"numpy array")
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(image_shape):
        raise DatasetError(f"the dataset returned images of shape {images.shape[1:]}, "
                           f"expected {tuple(image_shape)}")
    if images.dtype != np.float32:
        images = images.astype(np.float32)
    labels = loaded.labels
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
            raise DatasetError(f"the dataset returned labels of shape {labels.shape} and type "
                               f"{labels.dtype}, expected {len(images)} integers")
        labels = labels.astype(np.int32)
    return Examples(images, labels)


@plain_python
def scale_uint8(pixels, value_range: tuple[float, float]):
    """uint8 pixels as float32 in ``value_range``, in the graph: bit for bit what
    ``gankit_datasets.scaling.scale_pixels`` computes in NumPy."""
    import tensorflow as tf

    images = tf.cast(pixels, tf.float32) / tf.constant(255.0, tf.float32)
    low, high = (float(v) for v in value_range)
    if (low, high) != (0.0, 1.0):
        images = images * tf.constant(high - low, tf.float32) + tf.constant(low, tf.float32)
    return images


class ArraySource(DataSource):
    """Examples held in memory: float32 images already in the dataset's ``value_range``, or
    uint8 pixels (a quarter of the memory) scaled into it in the graph as they are read."""

    def __init__(self, images: np.ndarray, labels: np.ndarray | None = None,
                 value_range: tuple[float, float] = (0.0, 1.0)) -> None:
        if images.dtype not in (np.uint8, np.float32):
            raise DatasetError(f"the dataset's images are {images.dtype}, expected uint8 pixels "
                               "or float32 values")
        self.images, self._labels = images, labels
        self.value_range = tuple(value_range)
        self._tensor = None

    @property
    def size(self) -> int:
        return len(self.images)

    @property
    def labels(self) -> np.ndarray | None:
        return self._labels

    @plain_python
    def read(self, indices):
        import tensorflow as tf

        if self._tensor is None:
            with tf.init_scope():  # one eager constant, captured (not copied) by every trace
                self._tensor = tf.constant(self.images)
        picked = tf.gather(self._tensor, indices)
        if self.images.dtype == np.uint8:
            return scale_uint8(picked, self.value_range)
        return picked


@plain_python
def fail_unless(ok, *message):
    """An op that stops the ``tf.data`` pipeline when ``ok`` is false, with ``message``
    (Python strings and string tensors, joined) as a one-line
    :class:`~gankit.errors.DatasetError` once :func:`dataset_error` reads it back.

    For a :meth:`DataSource.read` that finds an example it cannot read; make the result
    depend on it (``tf.control_dependencies``)."""
    import tensorflow as tf

    text = tf.io.encode_base64(tf.strings.join([tf.convert_to_tensor(m) for m in message]))
    return tf.debugging.Assert(ok, [tf.strings.join([_ERROR_MARK, text, _ERROR_END])])


def dataset_error(exc: BaseException) -> DatasetError | None:
    """The :class:`DatasetError` a failed :func:`fail_unless` carries in ``exc`` (a
    TensorFlow error raised while iterating the pipeline), or None for any other error."""
    found = _ERROR_PATTERN.search(str(exc))
    if found is None:
        return None
    encoded = found.group(1)
    text = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    return DatasetError(text.decode("utf-8", errors="replace"))


def dataset_source(dataset: Dataset) -> DataSource:
    """The dataset's :meth:`~gankit.Dataset.source`, checked: what the trainer reads.

    Raises:
        DatasetError: the data is missing or malformed, the source is not a
            :class:`~gankit.DataSource`, or its labels do not fit ``class_names``.
    """
    source = dataset.source()
    if not isinstance(source, DataSource):
        raise DatasetError(f"{type(dataset).__name__}.source() returned "
                           f"{type(source).__name__}, expected a gankit.DataSource")
    size, labels = int(source.size), source.labels
    if size < 1:
        raise DatasetError(f"the dataset {type(dataset).__name__} has no examples")
    names = dataset.class_names
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (size,) or not np.issubdtype(labels.dtype, np.integer):
            raise DatasetError(f"the dataset returned labels of shape {labels.shape} and type "
                               f"{labels.dtype}, expected {size} integers")
        if names and size and not 0 <= labels.min() <= labels.max() < len(names):
            raise DatasetError(f"the dataset's labels range over {labels.min()} .. "
                               f"{labels.max()}, expected 0 .. {len(names) - 1} (one per class "
                               f"name)")
    elif names:
        raise DatasetError(f"the dataset {type(dataset).__name__} names {len(names)} classes "
                           "but gives no labels")
    return source
