"""Conformance checks for datasets, and tiny seeded images for tests."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Iterable

import numpy as np

from gankit.errors import DatasetError
from gankit.interfaces import Dataset, Examples
from gankit.testing.conformance import (
    CheckRun,
    ConformanceReport,
    check_config_round_trip,
    check_image_shape,
    require_kind,
)

DATASET_CHECKS = ("interface", "config", "load", "values", "scale", "determinism", "labels",
                  "source")
"""The checks of :func:`check_dataset`, in the order run."""


def check_dataset(dataset: Dataset, *, min_images: int = 1,
                  skip: Iterable[str] = ()) -> ConformanceReport:
    """Check that a dataset does what the trainer relies on.

    Checks, in order (names for ``skip``):

    - ``interface``: ``image_shape`` is three positive ints; ``value_range`` is two finite
      numbers, low < high.
    - ``config``: ``get_config()``/``from_config()`` round trip (see :func:`check_config`).
    - ``load``: ``load()`` returns a float32 ``numpy.ndarray`` ``(n, *image_shape)`` with
      ``n >= min_images``, or an :class:`~gankit.Examples` of such images and, if the dataset
      has ``class_names`` (a tuple of distinct names), ``n`` integer labels indexing them;
      without ``class_names``, no labels.
    - ``values``: every value is finite and inside ``value_range``.
    - ``scale``: the values are not all in the upper half of the declared range while
      spreading over a quarter of it or more: images scaled to [0, 1] but declared as
      (-1, 1) have no value below the middle, and a generator whose tanh spans the declared
      range learns washed-out images. Checked when the dataset has at least 16 values; skip
      it for data that lies in the upper half by nature.
    - ``determinism``: a second instance built from the config loads exactly the same array
      in the same order, even after Python's and NumPy's global random state changed (the
      trainer recomputes the batch of any step from that order when it resumes).
    - ``labels``: (a labelled dataset with a ``seed`` parameter) an instance with another
      seed, which may choose or order the images differently, gives every image it shares
      with the first the same label: labels are shuffled together with their images.
    - ``source``: :meth:`~gankit.Dataset.source` (what the trainer reads) is a
      :class:`~gankit.DataSource` of the same size and labels, and reading indices inside a
      ``tf.data`` pipeline (graph mode, shuffled, a repeated index) gives bit for bit the
      images ``load()`` gives at those indices, and their labels. A source that holds uint8
      pixels scales them in the graph as :func:`gankit.scale_uint8` does
      (``float32(pixels) / 255``, then ``* (high - low) + low`` unless the range is
      (0, 1)): compute ``load()``'s values the same way in NumPy (in float32, in that
      order) and they are equal.

    Args:
        dataset: the component, configured on tiny data (it is loaded twice).
        min_images: the fewest images ``load()`` must return.
        skip: names of checks not to run.

    Raises:
        ConformanceError: naming the failed check and the problem.
        TypeError: if ``dataset`` is not a :class:`gankit.Dataset` instance.
    """
    require_kind(dataset, Dataset, "check_dataset")
    run = CheckRun(dataset, DATASET_CHECKS, skip)
    loaded: dict[str, Examples] = {}

    def load_once() -> np.ndarray:
        if "examples" not in loaded:
            _seed_global_random_state(1)
            result = dataset.load()
            loaded["examples"] = result if isinstance(result, Examples) else Examples(result)
        return loaded["examples"].images

    def interface():
        check_image_shape(dataset.image_shape, run.fail)
        value_range = dataset.value_range
        if not (isinstance(value_range, (tuple, list)) and len(value_range) == 2
                and all(isinstance(v, (int, float, np.number)) and np.isfinite(v)
                        for v in value_range) and value_range[0] < value_range[1]):
            run.fail(f"value_range must be (low, high) with low < high, got {value_range!r}")

    def load():
        images = load_once()
        expected = tuple(dataset.image_shape)
        if not isinstance(images, np.ndarray):
            run.fail(f"load() returned {type(images).__name__}, expected a numpy.ndarray")
        if images.dtype != np.float32:
            run.fail(f"load() returned dtype {images.dtype}, expected float32")
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            run.fail(f"load() returned shape {images.shape}, expected (n, "
                     f"{', '.join(map(str, expected))}) as image_shape says")
        if len(images) < min_images:
            run.fail(f"load() returned {len(images)} images, expected at least {min_images}")
        labels, names = loaded["examples"].labels, dataset.class_names
        if names is not None and (not isinstance(names, tuple) or not names or not all(
                isinstance(n, str) for n in names) or len(set(names)) != len(names)):
            run.fail(f"class_names must be None or a non-empty tuple of distinct strings, got "
                     f"{names!r}")
        if labels is None:
            if names:
                run.fail(f"class_names names {len(names)} classes, but load() returned no "
                         "labels")
            return
        labels = np.asarray(labels)
        if not names:
            run.fail("load() returned labels, but class_names is None (name the classes)")
        if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
            run.fail(f"load() returned labels of shape {labels.shape} and type {labels.dtype}, "
                     f"expected {len(images)} integers (one per image)")
        if labels.size and not 0 <= labels.min() <= labels.max() < len(names):
            run.fail(f"labels range over {labels.min()} .. {labels.max()}, expected 0 .. "
                     f"{len(names) - 1} (indices into class_names)")

    def values():
        images = load_once()
        if not np.isfinite(images).all():
            run.fail("load() returned non-finite values")
        low, high = dataset.value_range
        tolerance = 1e-6 * (high - low)
        if images.size and (images.min() < low - tolerance or images.max() > high + tolerance):
            run.fail(f"values range over [{images.min():.6g}, {images.max():.6g}], outside "
                     f"value_range ({low}, {high})")

    def scale():
        images = load_once()
        low, high = (float(v) for v in dataset.value_range)
        if images.size < 16:
            run.note("skipped: fewer than 16 values")
            return
        middle = (low + high) / 2
        lowest, highest = float(images.min()), float(images.max())
        if lowest >= middle - 1e-6 * (high - low) and highest - lowest >= (high - low) / 4:
            run.fail(f"every value is in [{lowest:.6g}, {highest:.6g}], the upper half of "
                     f"value_range ({low:g}, {high:g}): are the images scaled to another range "
                     f"than the one declared (e.g. [0, 1] declared as (-1, 1))? Scale them into "
                     f"value_range, or declare the range they are in")

    def labels():
        load_once()
        labels = loaded["examples"].labels
        if labels is None:
            run.note("skipped: the dataset has no labels")
            return
        if "seed" not in type(dataset).params:
            run.note("skipped: the dataset has no seed parameter to reorder it by")
            return
        config = dataset.get_config()
        config["seed"] = int(config.get("seed") or 0) + 1
        other = type(dataset).from_config(config).load()
        if not isinstance(other, Examples) or other.labels is None:
            run.fail("an instance with another seed loaded no labels")
        first = {_key(image): int(label) for image, label in
                 zip(loaded["examples"].images, np.asarray(labels))}
        shared = 0
        for image, label in zip(other.images, np.asarray(other.labels)):
            known = first.get(_key(image))
            if known is None:
                continue
            shared += 1
            if known != int(label):
                run.fail(f"an image labelled {known} ({dataset.class_names[known]!r}) with seed "
                         f"{config['seed'] - 1} is labelled {int(label)} with seed "
                         f"{config['seed']}: shuffle labels with the same permutation as their "
                         f"images")
        if not shared:
            run.note("no image loaded with both seeds: nothing to compare")

    def determinism():
        first = load_once()
        _seed_global_random_state(2)
        again = type(dataset).from_config(dataset.get_config()).load()
        first_labels = loaded["examples"].labels
        again, again_labels = again if isinstance(again, Examples) else (again, None)
        if np.shape(again) != np.shape(first) or not np.array_equal(again, first) or \
                (first_labels is None) != (again_labels is None) or \
                (first_labels is not None and not np.array_equal(again_labels, first_labels)):
            run.fail("a second instance with the same config loaded different images (or "
                     "another order); seed any randomness from the config")

    def source():
        _check_source(dataset, load_once(), loaded["examples"].labels, run.fail)

    return run.run({"interface": interface, "config": lambda: check_config_round_trip(
        dataset, run.fail), "load": load, "values": values, "scale": scale,
        "determinism": determinism, "labels": labels, "source": source})


def _key(image: np.ndarray) -> bytes:
    return np.ascontiguousarray(image).tobytes()


def _check_source(dataset: Dataset, images: np.ndarray, labels, fail) -> None:
    import tensorflow as tf

    from gankit.interfaces import DataSource
    from gankit.training.data import BatchReader

    source = dataset.source()
    if not isinstance(source, DataSource):
        fail(f"source() returned {type(source).__name__}, expected a gankit.DataSource")
    n = len(images)
    if source.size != n:
        fail(f"source() has {source.size} examples, load() returned {n}")
    got_labels = source.labels
    if (got_labels is None) != (labels is None) or (
            labels is not None and not np.array_equal(np.asarray(got_labels), labels)):
        fail("source().labels differ from the labels load() returned")
    picked = np.array([n - 1, 0, n // 2, n - 1], np.int64)  # out of order, one repeated
    try:
        batch = tf.data.Dataset.from_tensors(picked).map(BatchReader(source)).get_single_element()
    except DatasetError as exc:  # read() returned the wrong type or shape
        fail(str(exc))
    except tf.errors.OpError as exc:
        fail(f"reading indices {picked.tolist()} through source().read in a tf.data pipeline "
             f"failed: {str(exc).strip().splitlines()[0][:300]}")
    got, expected = batch.images.numpy(), images[picked]
    if got.shape != expected.shape or not np.array_equal(got, expected):
        largest = (float(np.max(np.abs(got - expected))) if got.shape == expected.shape
                   else None)
        if largest is not None and largest <= 1e-5 * (dataset.value_range[1]
                                                      - dataset.value_range[0]):
            fail(f"source().read({picked.tolist()}) differs from load() at those indices by up "
                 f"to {largest:.3g}: the two scale pixels differently; compute load()'s values "
                 "as gankit.scale_uint8 does (float32(pixels) / 255, then * (high - low) + low)")
        fail(f"source().read({picked.tolist()}) gave other images than load() at those "
             "indices (the trainer reads through source())")
    if labels is not None and batch.labels is not None and \
            not np.array_equal(batch.labels.numpy(), np.asarray(labels)[picked]):
        fail(f"source() gives the labels {batch.labels.numpy().tolist()} at indices "
             f"{picked.tolist()}, load() {np.asarray(labels)[picked].tolist()}")


def _seed_global_random_state(seed: int) -> None:
    """Set Python's and NumPy's global random state, so that a dataset drawing from it
    (instead of from a seed in its config) loads differently each time."""
    random.seed(seed)
    np.random.seed(seed)


def make_images(n: int = 4, shape: tuple[int, int, int] = (24, 24, 3),
                value_range: tuple[float, float] = (0.0, 1.0), seed: int = 0) -> np.ndarray:
    """Seeded random float32 images ``(n, *shape)`` in ``value_range``: tiny training data."""
    rng = np.random.default_rng(seed)
    low, high = value_range
    return rng.uniform(low, high, (n, *shape)).astype(np.float32)


def write_image_folder(folder: str | Path, n: int = 4, height: int = 24, width: int = 24,
                       channels: int = 3, seed: int = 0) -> Path:
    """Write ``n`` seeded random PNG images into ``folder`` (created) and return it."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
        Image.fromarray(pixels[..., 0] if channels == 1 else pixels).save(folder / f"{i:04d}.png")
    return folder
