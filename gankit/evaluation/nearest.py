"""The memorisation check of ``gankit evaluate --nearest K``: for generated images, their
``K`` nearest training images in an extractor's features and in pixels, and how close they
come compared with real images the generator never saw.

::

    generated images --features, pixels--> K nearest among the reference images --> panel, distances
    held-out reals   --features, pixels--> nearest among the same images         --> the baseline

Both spaces use the Euclidean (L2) distance: in features, between the extractor's raw
feature vectors (the space FID and precision/recall use); in pixels, between the images as
float values in ``[0, 1]`` (``sqrt(h * w * c)`` times their root-mean-square difference).
A generated image that is closer to its nearest training image than all but 5% of the
held-out real images come to theirs (below their 5th percentile) is *suspiciously close*.

Held-out images are a ``holdout`` source when one is given, else a random fifth of the
reference (seed 0), which is then left out of the images searched.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator

import numpy as np

from gankit.errors import GankitError
from gankit.evaluation.cache import ReferenceCache
from gankit.evaluation.features import (
    BATCH_SIZE,
    _Counter,
    compute_features,
    reference_features,
)
from gankit.evaluation.sources import ImageFolderSource, ImageSource
from gankit.interfaces import FeatureExtractor

MAX_K = 16
"""The most neighbours ``--nearest`` shows per generated image."""
MAX_ROWS = 32
"""The most generated images the panel shows."""
DEFAULT_ROWS = 8
DEFAULT_N = 1000
"""Generated images whose nearest distances are summarised (the first ``rows`` are shown)."""
HOLDOUT_SPLIT_SEED = 0
"""The seed of the random fifth of the reference held out when no holdout is given."""

_EXTRA = 8  # candidates beyond k measured exactly: a float32 ranking may swap near-ties
_BLOCK = 2048  # base rows per matrix product (pixel batches are gathered up to this)
_EXACT_VALUES = 1 << 22  # float64 values per exact re-measurement (32 MB)


# --- the search --------------------------------------------------------------------------

class NearestSearch:
    """The ``k`` nearest rows (L2) of a base given block by block, for fixed query rows.

    Candidates are ranked by a float32 matrix product, then the best ``k + 8`` of each block
    are measured exactly in float64, so an exact copy of a query is at distance 0. Ties go
    to the lower index.

    Args:
        queries: ``(n, ...)``; each row is flattened.
        k: neighbours to keep per query.
    """

    def __init__(self, queries: np.ndarray, k: int) -> None:
        flat = np.asarray(queries).reshape(len(queries), -1)
        self.k = k
        self._q64 = flat.astype(np.float64)
        self._q32 = flat.astype(np.float32)
        self.distances = np.full((len(flat), k), np.inf)
        self.indices = np.full((len(flat), k), -1, dtype=np.int64)
        self.searched = 0

    def add(self, base: np.ndarray, indices: np.ndarray | None = None) -> None:
        """Search the rows of ``base`` too; ``indices`` number them (default: on from the
        rows given so far)."""
        flat = np.asarray(base).reshape(len(base), -1)
        if flat.shape[1] != self._q64.shape[1]:
            raise ValueError(f"base rows of {flat.shape[1]} values, queries of "
                             f"{self._q64.shape[1]}")
        if indices is None:
            indices = np.arange(self.searched, self.searched + len(flat))
        for start in range(0, len(flat), _BLOCK):
            self._add_block(flat[start:start + _BLOCK],
                            np.asarray(indices[start:start + _BLOCK], dtype=np.int64))
        self.searched += len(flat)

    def _add_block(self, block: np.ndarray, indices: np.ndarray) -> None:
        if not len(block) or not len(self._q64):
            return
        b32 = block.astype(np.float32)
        # ||q - b||^2 ranks as ||b||^2 - 2 q.b: the query's own norm is the same for all b
        score = np.einsum("ij,ij->i", b32, b32)[None, :] - 2.0 * (self._q32 @ b32.T)
        count = min(self.k + _EXTRA, len(block))
        if count < len(block):
            candidates = np.argpartition(score, count - 1, axis=1)[:, :count]
        else:
            candidates = np.broadcast_to(np.arange(len(block)), score.shape).copy()
        candidates.sort(axis=1)  # ties to the lower index
        b64 = block.astype(np.float64)
        exact = np.empty(candidates.shape)
        step = max(1, _EXACT_VALUES // (count * block.shape[1]))
        for r in range(0, len(candidates), step):
            diff = self._q64[r:r + step, None, :] - b64[candidates[r:r + step]]
            exact[r:r + step] = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
        distances = np.concatenate([self.distances, exact], axis=1)
        found = np.concatenate([self.indices, indices[candidates]], axis=1)
        order = np.argsort(distances, axis=1, kind="stable")[:, :self.k]
        self.distances = np.take_along_axis(distances, order, axis=1)
        self.indices = np.take_along_axis(found, order, axis=1)


def nearest_neighbours(queries: np.ndarray, base: np.ndarray, k: int
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of ``base`` (L2) for each row of ``queries``, nearest first.

    Returns:
        ``(indices, distances)``, each ``(len(queries), k)``; an exact copy of a query is at
        distance 0.

    Raises:
        ValueError: ``base`` has fewer than ``k`` rows or rows of another size.
    """
    if len(base) < k:
        raise ValueError(f"{len(base)} base rows, fewer than k={k}")
    search = NearestSearch(queries, k)
    search.add(base)
    return search.indices, search.distances


def distance_summary(generated: np.ndarray, held_out: np.ndarray) -> dict[str, Any]:
    """Quantiles of the generated images' and the held-out reals' nearest distances, and the
    share of each below the held-out reals' 5th percentile (``threshold``).

    A generator that draws new images from the data's distribution has about 5% of its
    images below it, like the held-out reals; one that copies its training images, far more.
    """
    generated, held_out = np.asarray(generated, np.float64), np.asarray(held_out, np.float64)
    threshold = float(np.quantile(held_out, 0.05))

    def quantiles(d: np.ndarray) -> dict[str, float]:
        return {"min": float(d.min()), "p05": float(np.quantile(d, 0.05)),
                "median": float(np.median(d))}

    return {"generated": quantiles(generated), "held_out": quantiles(held_out),
            "threshold": threshold,
            "suspiciously_close": float(np.mean(generated < threshold)),
            "held_out_below_threshold": float(np.mean(held_out < threshold))}


# --- the check ---------------------------------------------------------------------------

@dataclass
class NearestResult:
    """What :func:`memorisation_check` found.

    Attributes:
        summary: JSON-ready: the protocol (k, counts, sources, the extractor), the
            :func:`distance_summary` of each space (``features``, ``pixels``) and, for each
            shown row, its neighbours' indices (and file names), distances in both spaces.
        panel: uint8 ``(h, w, 3)``: each row a generated image, its ``k`` nearest in features,
            then its ``k`` nearest in pixels (:func:`gankit.evaluation.panel.draw_panel`).
    """

    summary: dict[str, Any]
    panel: np.ndarray = field(repr=False)

    def to_json(self) -> str:
        return json.dumps(self.summary, indent=2, default=str) + "\n"


def held_out_count(available: int, n: int, split: bool) -> int:
    """How many held-out images are compared: the first ``n`` of a holdout's ``available``;
    of a reference split (``split``), a fifth of it, at least 2 and at most ``n``."""
    if split:
        return min(n, max(2, available // 5))
    return min(n, available)


def memorisation_check(source: ImageSource, reference: ImageSource,
                       extractor: FeatureExtractor, k: int, *,
                       holdout: ImageSource | None = None, n: int = DEFAULT_N,
                       rows: int = DEFAULT_ROWS, seed: int = 0, reference_n: int | None = None,
                       batch_size: int = BATCH_SIZE, cache: ReferenceCache | None | bool = True,
                       progress: bool = True) -> NearestResult:
    """Find the ``k`` nearest reference images of ``n`` images of ``source`` in ``extractor``'s
    features and in pixels, and compare their distances with held-out real images'.

    Args:
        source: the generated images (a generator: ``n`` images from latents of ``seed``).
        reference: the images the generator trained on, the first ``reference_n`` (all when
            None) are searched.
        extractor: the feature network (its reference features are cached as for FID).
        k: neighbours per shown image (1 .. :data:`MAX_K`).
        holdout: real images not in ``reference`` (their first ``n``); None: a random fifth
            of the reference (seed :data:`HOLDOUT_SPLIT_SEED`, at most ``n``), then not
            searched.
        n: generated images whose nearest distances are summarised.
        rows: of them, the first ``rows`` are drawn in the panel (1 .. :data:`MAX_ROWS`).

    Raises:
        GankitError: a bad ``k``, ``rows`` or ``n``; too few reference or held-out images;
            images of another size than the generated ones; any error of the sources and
            extractor.
    """
    from gankit.evaluation.panel import draw_panel

    started = time.perf_counter()
    if not 1 <= k <= MAX_K:
        raise GankitError(f"--nearest must be between 1 and {MAX_K}, got {k}")
    if n < 2:
        raise GankitError(f"--nearest-n must be at least 2, got {n}")
    if not 1 <= rows <= min(MAX_ROWS, n):
        raise GankitError(f"--nearest-rows must be between 1 and {min(MAX_ROWS, n)}, got {rows}")
    if cache is True:
        cache = ReferenceCache()
    elif cache is False:
        cache = None
    total = reference.available() if reference_n is None else reference_n
    if total is None:
        raise GankitError(f"the reference {reference.description} makes any number of images; "
                          f"use a folder of images or a recipe's dataset")
    split = holdout is None
    held_source = reference if split else holdout
    held_available = total if split else holdout.available()
    if held_available is None:
        raise GankitError(f"--holdout {holdout.description} makes any number of images; use "
                          f"a folder of images or a recipe's dataset")
    held_n = held_out_count(held_available, n, split)
    if not split and held_n < 2:
        raise GankitError(f"--holdout {holdout.description} holds {held_available} image(s); "
                          f"the held-out distances need at least 2")
    if split:
        held_index = np.sort(np.random.default_rng(HOLDOUT_SPLIT_SEED)
                             .choice(total, held_n, replace=False))
    else:
        held_index = np.arange(held_n)
    searched = np.ones(total, dtype=bool)
    if split:
        searched[held_index] = False
    if searched.sum() < k:
        held = f" once {held_n} are held out (no --holdout)" if split else ""
        raise GankitError(f"--nearest {k}: the reference {reference.description} gives "
                          f"{total} image(s), {int(searched.sum())}{held}: fewer than the {k} "
                          f"nearest; give more images, a smaller --nearest"
                          f"{' or a --holdout' if split else ''}")

    # generated images: features and pixels in one pass
    kept = _Keeping(source)
    fake = compute_features(kept, extractor, n, batch_size=batch_size, seed=seed,
                            progress=progress, label="features of the generated images")
    shape = kept.images[0].shape[1:]
    if any(batch.shape[1:] != shape for batch in kept.images):
        raise GankitError(f"{source.description} holds images of several sizes; pixel "
                          f"distances compare images of one size")
    generated = np.concatenate(kept.images)
    _check_shape(reference, shape, "--reference")
    if not split:
        _check_shape(holdout, shape, "--holdout")

    # features: the reference's (cached), the held-out reals' (cached, or rows of the reference)
    real, _, _ = reference_features(reference, extractor, total, cache=cache,
                                    batch_size=batch_size, progress=progress)
    if split:
        held_features = real.features[held_index]
    else:
        held_features = reference_features(holdout, extractor, held_n, cache=cache,
                                           batch_size=batch_size, progress=progress,
                                           label="features of the held-out images")[0].features
    in_features = NearestSearch(np.concatenate([fake.features, held_features]), k)
    in_features.add(real.features[searched], np.flatnonzero(searched))

    # pixels: the held-out images, then one pass over the reference
    held_pixels = _collect(held_source, held_index, total if split else held_n, batch_size,
                           shape, "--reference" if split else "--holdout", progress)
    in_pixels = NearestSearch(np.concatenate([generated, held_pixels]), k)
    wanted = set(in_features.indices[:rows].ravel().tolist())
    shown: dict[int, np.ndarray] = {}
    for offset, block in _blocks(reference, total, batch_size, shape, progress):
        index = np.arange(offset, offset + len(block))
        use = searched[index]
        in_pixels.add(block[use], index[use])
        keep = wanted | set(in_pixels.indices[:rows].ravel().tolist())
        shown = {i: image for i, image in shown.items() if i in keep}
        shown.update({int(i): block[i - offset] for i in index if int(i) in keep})

    def neighbours(search: NearestSearch) -> tuple[np.ndarray, np.ndarray]:
        return (np.stack([[shown[int(i)] for i in row] for row in search.indices[:rows]]),
                search.distances[:rows])

    panel = draw_panel(generated[:rows], *neighbours(in_features), *neighbours(in_pixels))
    summary = _summary(source, reference, holdout, extractor, k, n, rows, seed, total,
                       int(searched.sum()), held_n, in_features, in_pixels)
    summary["seconds"] = time.perf_counter() - started
    return NearestResult(summary, panel)


def _summary(source, reference, holdout, extractor, k, n, rows, seed, total, searched,
             held_n, in_features: NearestSearch, in_pixels: NearestSearch) -> dict[str, Any]:
    names = reference.files if isinstance(reference, ImageFolderSource) else None

    def listed(search: NearestSearch, r: int) -> list[dict[str, Any]]:
        return [{"index": int(i), **({"name": names[i].name} if names else {}),
                 "distance": float(d)} for i, d in zip(search.indices[r], search.distances[r])]

    held = (f"{holdout.description}: its first {held_n} images" if holdout is not None else
            f"a random fifth of the reference (seed {HOLDOUT_SPLIT_SEED}): {held_n} of its "
            f"{total} images, not searched")
    return {
        "k": k, "n_generated": n, "n_held_out": held_n, "n_searched": searched, "rows": rows,
        "seed": seed, "source": source.description,
        "reference": f"{reference.description}: its first {total} images",
        "held_out": held,
        "extractor": dict(extractor.protocol()),
        "distance": {"features": "L2 between the extractor's feature vectors",
                     "pixels": "L2 between the images' values in [0, 1]"},
        "features": distance_summary(in_features.distances[:n, 0], in_features.distances[n:, 0]),
        "pixels": distance_summary(in_pixels.distances[:n, 0], in_pixels.distances[n:, 0]),
        "shown": [{"generated": r, "features": listed(in_features, r),
                   "pixels": listed(in_pixels, r)} for r in range(rows)],
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


# --- streaming images --------------------------------------------------------------------

class _Keeping(ImageSource):
    """A source that keeps the images it yields: the generated images, searched in pixels
    after their features are computed."""

    def __init__(self, source: ImageSource) -> None:
        self.source = source
        self.description = source.description
        self.images: list[np.ndarray] = []

    def available(self) -> int | None:
        return self.source.available()

    def batches(self, n: int, batch_size: int, seed: int = 0) -> Iterator[np.ndarray]:
        for batch in self.source.batches(n, batch_size, seed):
            self.images.append(np.asarray(batch, np.float32))
            yield batch


def _blocks(source: ImageSource, n: int, batch_size: int, shape: tuple[int, ...],
            progress: bool) -> Iterator[tuple[int, np.ndarray]]:
    """The first ``n`` images of ``source`` in ``shape``'s channels, gathered into blocks of up
    to ``_BLOCK`` (one matrix product each), with their offsets, and a progress line."""
    counter = _Counter(n, "pixel distances to the reference", progress)
    pending: list[np.ndarray] = []
    offset = done = 0
    for batch in source.batches(n, batch_size):
        pending.append(_fitted(batch, shape, source, "--reference"))
        done += len(batch)
        if sum(len(b) for b in pending) >= _BLOCK:
            block = np.concatenate(pending)
            yield offset, block
            offset, pending = offset + len(block), []
        counter.update(done)
    if pending:
        yield offset, np.concatenate(pending)


def _collect(source: ImageSource, indices: np.ndarray, n: int, batch_size: int,
             shape: tuple[int, ...], flag: str, progress: bool) -> np.ndarray:
    """The images at ``indices`` (sorted) among the first ``n`` of ``source``, in ``shape``'s
    channels."""
    wanted, found, offset = set(indices.tolist()), {}, 0
    counter = _Counter(n, "held-out images", progress)
    for batch in source.batches(n, batch_size):
        batch = _fitted(batch, shape, source, flag)
        found.update({offset + i: batch[i] for i in range(len(batch)) if offset + i in wanted})
        offset += len(batch)
        counter.update(offset)
    return np.stack([found[int(i)] for i in indices])


def _check_shape(source: ImageSource, shape: tuple[int, ...], flag: str) -> None:
    """Refuse, on its first image, a source of another size than the generated images."""
    _fitted(next(iter(source.batches(1, 1))), shape, source, flag)


def _fitted(batch: np.ndarray, shape: tuple[int, ...], source: ImageSource,
            flag: str) -> np.ndarray:
    """``batch`` in the generated images' channels; an error if its size differs (pixel
    distances compare images of one size; one channel may stand for three)."""
    theirs = batch.shape[1:]
    if theirs[:2] != shape[:2] or (theirs[2] != shape[2] and 1 not in (theirs[2], shape[2])):
        raise GankitError(f"{flag} {source.description} holds images of {_size(theirs)} but "
                          f"the generated images are {_size(shape)}; pixel distances compare "
                          f"images of one size: give real images of the generator's size")
    return _as_channels(batch, shape[2])


def _size(shape) -> str:
    return f"{shape[1]}x{shape[0]}x{shape[2]}"


def _as_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """One-channel images repeated into ``channels`` (and three into one by their mean)."""
    if images.shape[-1] == channels:
        return images
    if images.shape[-1] == 1:
        return np.repeat(images, channels, axis=-1)
    return images.mean(axis=-1, keepdims=True)
