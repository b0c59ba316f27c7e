"""The real data of each step, as a pure function of the step (so a resume is exact).

Step ``k`` of a strategy that takes ``m`` batches per step reads global batches
``k*m .. k*m + m - 1``. Batch ``b`` is the ``b % per_epoch``-th slice of epoch
``b // per_epoch``, in the data's own order or, with ``shuffle``, in a permutation of that
epoch drawn with ``tf.random.experimental.index_shuffle`` (no permutation is materialised,
so the cost per step does not grow with the dataset). A partial last batch of an epoch is
skipped, as the article's loop does.

The examples are read through the dataset's :class:`~gankit.DataSource` (random access by
index, inside the ``tf.data`` map), so a dataset need not fit in memory.
"""

from __future__ import annotations

import base64
import os
import re
from typing import Any

import numpy as np

from gankit.errors import DatasetError
from gankit.interfaces import Batch, DataSource, Dataset, Examples

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


def batch_indices(step, *, n: int, batch_size: int, batches_per_step: int, seed: int,
                  shuffle: bool):
    """The example indices of ``step``: an int64 tensor ``(batches_per_step, batch_size)``."""
    import tensorflow as tf

    per_epoch = n // batch_size
    step = tf.cast(step, tf.int64)
    batch = step * batches_per_step + tf.range(batches_per_step, dtype=tf.int64)
    epoch, position = batch // per_epoch, batch % per_epoch
    offsets = position[:, None] * batch_size + tf.range(batch_size, dtype=tf.int64)[None, :]
    if not shuffle:
        return offsets
    seeds = tf.stack([tf.fill(tf.shape(offsets), tf.constant(seed, tf.int64)),
                      tf.broadcast_to(-1 - epoch[:, None], tf.shape(offsets)),
                      tf.zeros(tf.shape(offsets), tf.int64)], axis=-1)
    # The raw op takes a seed per index; tf.random.experimental.index_shuffle's wrapper
    # mis-pads a batch of seeds (TensorFlow 2.21).
    flat = tf.raw_ops.RandomIndexShuffle(
        index=tf.reshape(offsets, [-1]), seed=tf.reshape(seeds, [-1, 3]),
        max_index=tf.constant(n - 1, tf.int64), rounds=4)
    return tf.reshape(flat, tf.shape(offsets))


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

    def read(self, indices):
        import tensorflow as tf

        if self._tensor is None:
            with tf.init_scope():  # one eager constant, captured (not copied) by every trace
                self._tensor = tf.constant(self.images)
        picked = tf.gather(self._tensor, indices)
        if self.images.dtype == np.uint8:
            return scale_uint8(picked, self.value_range)
        return picked


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


class BatchReader:
    """Reads the examples at given indices through a source, inside a ``tf.data`` map.

    Build it outside the graph (it makes the labels an eager constant once), then call it
    with an int64 index tensor of any shape ``(..., batch)``: it returns a :class:`Batch` of
    images ``(..., batch, h, w, c)`` and labels ``(..., batch)`` (None without labels).
    """

    def __init__(self, source: DataSource) -> None:
        import tensorflow as tf

        self.source = source
        labels = source.labels
        self.labels = None if labels is None else tf.constant(np.asarray(labels, np.int32))

    def __call__(self, index) -> Batch:
        """Raises:
            DatasetError: if ``source.read`` returns something other than float32 images.
        """
        import tensorflow as tf

        index = tf.convert_to_tensor(index, tf.int64)
        images = self.source.read(tf.reshape(index, [-1]))
        if images.dtype != tf.float32 or images.shape.rank != 4:
            raise DatasetError(f"{type(self.source).__name__}.read() returned "
                               f"{images.dtype.name} images of rank {images.shape.rank}, "
                               "expected float32 (k, height, width, channels)")
        shaped = tf.reshape(images, tf.concat([tf.shape(index), tf.shape(images)[1:]], 0))
        shaped.set_shape(index.shape.concatenate(images.shape[1:]))
        labels = None if self.labels is None else tf.gather(self.labels, index)
        return Batch(shaped, labels)


def step_batches(data: DataSource | Examples, *, batch_size: int, batches_per_step: int,
                 seed: int, shuffle: bool, start: int, stop: int, calls=None, columns=None):
    """A ``tf.data`` pipeline of ``(step, Batch)`` for steps ``start .. stop - 1``.

    Args:
        data: the dataset's source (see :func:`dataset_source`), or examples in memory.
        calls: steps grouped into calls instead (see :func:`group_steps`): a callable
            returning an iterator of ``(first, k)``; ``start`` and ``stop`` are then unused.
        columns: ``(begin, end)``: read only these columns of each global batch (a worker's
            replicas' part under ``train.distribute``); None: all ``batch_size``.

    Raises:
        DatasetError: if the data holds fewer examples than one step needs.
    """
    import tensorflow as tf

    source = data if isinstance(data, DataSource) else ArraySource(data.images, data.labels)
    n = int(source.size)
    if n < batch_size:
        raise DatasetError(f"the dataset has {n} images, fewer than train.batch_size={batch_size}")

    read = BatchReader(source)

    def fetch(step):
        index = batch_indices(step, n=n, batch_size=batch_size,
                              batches_per_step=batches_per_step, seed=seed, shuffle=shuffle)
        if columns is not None:
            index = index[:, columns[0]:columns[1]]
        return step, read(index)

    if calls is not None:
        return group_steps(calls, fetch)
    return (tf.data.Dataset.range(start, stop)
            .map(fetch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .prefetch(2))


def group_steps(calls, fetch):
    """A ``tf.data`` pipeline of one element per call of several steps.

    ``calls()`` yields ``(first, k)`` pairs (the trainer plans them as it goes: it ends a
    call at every step a callback needs, and sizes calls by their measured time); each
    element holds steps ``first .. first + k - 1`` as ``(steps, Batch)`` with the steps as
    the leading axis of every tensor. ``fetch(step) -> (step, Batch)`` reads one step's
    batch, so the data of a step is the same however the steps are grouped.
    """
    import tensorflow as tf

    plan = tf.data.Dataset.from_generator(
        calls, output_signature=(tf.TensorSpec((), tf.int64), tf.TensorSpec((), tf.int64)))

    def one_call(first, k):
        return (tf.data.Dataset.range(first, first + k)
                .map(fetch, num_parallel_calls=_PARALLEL_READS, deterministic=True)
                .batch(k))

    # No tf.data autotuning here: every call adds a sub-pipeline to the autotuner's model,
    # whose optimisation then grows with the run (after 90 s of frog_fast, deleting the
    # iterator waited 53 s for it, and it competes with the steps for the 2 cores).
    options = tf.data.Options()
    options.autotune.enabled = False
    return plan.flat_map(one_call).prefetch(1).with_options(options)


_PARALLEL_READS = max(2, min(8, os.cpu_count() or 2))
"""Steps of a call read in parallel (their batches are gathered from memory or decoded
from image files)."""
