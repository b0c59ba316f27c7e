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

import os

import numpy as np

from gankit.errors import DatasetError
from gankit.interfaces import Batch, DataSource, Examples
from gankit.interfaces.data import ArraySource
from gankit.util.graph import plain_python


@plain_python
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


_MOVED = ("ArraySource", "as_examples", "scale_uint8", "fail_unless", "dataset_error",
          "dataset_source")


def __getattr__(name: str):  # 0.4 exported the DataSource toolkit here; goes in 0.6
    if name in _MOVED:
        import warnings

        from gankit.interfaces import data as data_tools
        warnings.warn(f"gankit.training.data.{name} moved to gankit.{name} "
                      f"(gankit.interfaces.data); the old path goes in gankit 0.6",
                      DeprecationWarning, stacklevel=2)
        return getattr(data_tools, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
