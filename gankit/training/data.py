"""The real data of each step, as a pure function of the step (so a resume is exact).

Step ``k`` of a strategy that takes ``m`` batches per step reads global batches
``k*m .. k*m + m - 1``. Batch ``b`` is the ``b % per_epoch``-th slice of epoch
``b // per_epoch``, in the data's own order or, with ``shuffle``, in a permutation of that
epoch drawn with ``tf.random.experimental.index_shuffle`` (no permutation is materialised,
so the cost per step does not grow with the dataset). A partial last batch of an epoch is
skipped, as the article's loop does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gankit.errors import DatasetError
from gankit.interfaces import Batch, Examples


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


def step_batches(examples: Examples, *, batch_size: int, batches_per_step: int, seed: int,
                 shuffle: bool, start: int, stop: int):
    """A ``tf.data`` pipeline of ``(step, Batch)`` for steps ``start .. stop - 1``.

    Raises:
        DatasetError: if the data holds fewer examples than one step needs.
    """
    import tensorflow as tf

    n = len(examples.images)
    if n < batch_size:
        raise DatasetError(f"the dataset has {n} images, fewer than train.batch_size={batch_size}")
    images = tf.constant(examples.images)
    labels = None if examples.labels is None else tf.constant(examples.labels)

    def fetch(step):
        index = batch_indices(step, n=n, batch_size=batch_size,
                              batches_per_step=batches_per_step, seed=seed, shuffle=shuffle)
        picked = Batch(tf.gather(images, index),
                       None if labels is None else tf.gather(labels, index))
        return step, picked

    return (tf.data.Dataset.range(start, stop)
            .map(fetch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .prefetch(2))
