"""Scoring generated images: features in batches, cached reference features, metrics.

::

    source    --batches-->  extractor  --Features-->  metrics  -->  EvaluationResult
    reference --batches-->  extractor  --Features (cached on disk, keyed by content)--^

A library API (``gankit evaluate``, training-time metrics and ``gankit sweep`` all call
:func:`evaluate`); :func:`gankit.app.evaluate.plan_evaluation` turns command-line strings
into checked components and sources without TensorFlow.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

import numpy as np

from gankit.errors import GankitError
from gankit.evaluation.cache import EvaluationWarning, ReferenceCache, default_cache_dir
from gankit.evaluation.per_class import align_logits, check_per_class, logit_classes, with_labels
from gankit.evaluation.sources import DatasetSource, GeneratorSource, ImageFolderSource, ImageSource
from gankit.interfaces import FeatureExtractor, Features, Metric
from gankit.util.progress import _duration

__all__ = ["DatasetSource", "EvaluationResult", "EvaluationWarning",
           "GeneratorSource", "ImageFolderSource", "ImageSource", "ReferenceCache",
           "align_logits", "check_per_class", "compute_features", "compute_values",
           "default_cache_dir", "evaluate", "logit_classes",
           "reference_features", "with_labels"]

DEFAULT_N = 5000
"""Generated images scored when a generator source is given no ``n``."""
MAX_N = 1_000_000
BATCH_SIZE = 64


# --- features ---------------------------------------------------------------------------

class _Counter:
    """``features of X: 640/5000 (41.2 images/s, ETA 1m53s)``, redrawn in place on a
    terminal, otherwise a line every tenth of the way."""

    def __init__(self, total: int, label: str, enabled: bool) -> None:
        self.total, self.label, self.enabled = total, label, enabled
        self.live = enabled and sys.stderr.isatty()
        self.t0 = time.perf_counter()
        self.next_line = 0

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        rate = done / max(time.perf_counter() - self.t0, 1e-9)
        eta = _duration((self.total - done) / rate) if rate > 0 else "?"
        text = f"gankit: {self.label}: {done}/{self.total} ({rate:.1f} images/s, ETA {eta})"
        if self.live:
            sys.stderr.write("\r\033[K" + text + ("\n" if done >= self.total else ""))
        elif done >= self.next_line or done >= self.total:
            sys.stderr.write(text + "\n")
            self.next_line = done + max(1, self.total // 10)
        sys.stderr.flush()


def compute_features(source: ImageSource, extractor: FeatureExtractor, n: int, *,
                     batch_size: int = BATCH_SIZE, seed: int = 0, progress: bool = True,
                     label: str = "features") -> Features:
    """The features (and logits) of ``n`` images of ``source``, computed batch by batch.

    Only one batch of images is in memory at a time; the features are collected.

    Args:
        source: where the images come from.
        extractor: the network that maps them to features.
        n: how many images (the first ``n`` of a folder or dataset).
        batch_size: images per extractor call.
        seed: the latent seed of a generator source.
        progress: print a progress line on stderr.
        label: what the progress line calls this pass.

    Raises:
        GankitError: the source holds fewer than ``n`` images, or the extractor returned
            something other than one feature row per image.
    """
    if n < 1:
        raise GankitError(f"the number of images must be at least 1, got {n}")
    available = source.available()
    if available is not None and available < n:
        raise GankitError(f"{source.description} holds {available} images, fewer than the "
                          f"{n} asked for")
    counter = _Counter(n, label, progress)
    features: list[np.ndarray] = []
    logits: list[np.ndarray | None] = []
    done = 0
    for batch in source.batches(n, batch_size, seed):
        out = extractor.extract(batch)
        rows = np.asarray(out.features, dtype=np.float32)
        if rows.ndim != 2 or len(rows) != len(batch):
            raise GankitError(f"the extractor '{extractor.name}' returned features of shape "
                              f"{rows.shape} for {len(batch)} images; expected (n, d)")
        features.append(rows)
        logits.append(None if out.logits is None else np.asarray(out.logits, dtype=np.float32))
        done += len(batch)
        counter.update(done)
    if done != n:
        raise GankitError(f"{source.description} gave {done} images, expected {n}")
    has_logits = all(x is not None for x in logits)
    return Features(np.concatenate(features),
                    np.concatenate(logits) if has_logits and logits else None)


# --- reference features ---------------------------------------------------------------

def reference_features(reference: ImageSource, extractor: FeatureExtractor, n: int | None = None,
                       *, cache: ReferenceCache | None = None, batch_size: int = BATCH_SIZE,
                       progress: bool = True, before_computing: Callable[[], None] | None = None,
                       label: str = "features of the reference") -> tuple[Features, bool, int]:
    """The features of the first ``n`` reference images (all when None), from the cache
    when it holds them, else computed and cached.

    Args:
        before_computing: called once when the features are not in the cache, before they
            are computed (e.g. to say that this takes a while).
        label: what the progress line calls this pass.

    Returns:
        The features, whether they came from the cache, and ``n``.
    """
    available = reference.available()
    if n is None:
        if available is None:
            raise GankitError(f"the reference {reference.description} makes any number of "
                              f"images; say how many to use")
        n = available
    if available is not None and available < n:
        raise GankitError(f"the reference {reference.description} holds {available} images, "
                          f"fewer than the {n} asked for")
    protocol = extractor.protocol()
    key = None
    if cache is not None and available is not None:  # a generator has no fixed content
        key = ReferenceCache.key(reference.content_digest(n), protocol, n)
        found = cache.load(key, n)
        if found is not None:
            if progress:
                print(f"gankit: reference features from the cache ({cache.paths(key)[0]})",
                      file=sys.stderr)
            return found, True, n
    if before_computing is not None:
        before_computing()
    features = compute_features(reference, extractor, n, batch_size=batch_size,
                                progress=progress, label=label)
    if key is not None:
        cache.store(key, features, {
            "protocol": dict(protocol), "n": n, "reference": reference.description,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    return features, False, n


# --- evaluation -------------------------------------------------------------------------

@dataclass
class EvaluationResult:
    """What :func:`evaluate` measured, and exactly how.

    Attributes:
        values: metric values by name, in the order the metrics were given (each metric's
            first value is the one that ranks checkpoints).
        protocol: the extractor's protocol, the metrics' settings, the source, the
            reference, the numbers of images and the seed.
        n_fake, n_real: images scored on each side (``n_real`` 0 without a reference).
        seconds: wall time of the whole evaluation.
        reference_cached: whether the reference features came from the cache.
    """

    values: dict[str, float]
    protocol: dict[str, Any]
    n_fake: int
    n_real: int
    seconds: float
    reference_cached: bool = False
    created: str = field(default_factory=lambda: datetime.now(timezone.utc)
                         .isoformat(timespec="seconds"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str) + "\n"


def evaluate(source: ImageSource, reference: ImageSource | None, extractor: FeatureExtractor,
             metrics: Sequence[Metric], n: int | None = None, seed: int = 0, *,
             reference_n: int | None = None, batch_size: int = BATCH_SIZE,
             cache: ReferenceCache | None | bool = True, progress: bool = True
             ) -> EvaluationResult:
    """Compute ``metrics`` for the images of ``source`` against ``reference``.

    Args:
        source: the images to score (usually a :class:`GeneratorSource`).
        reference: the real images; None if every metric works without (Inception Score).
        extractor: the feature network (its protocol keys the cache and is reported).
        metrics: metric components, in the order their values are reported.
        n: images of ``source`` to score; None: all of a folder, :data:`DEFAULT_N` of a
            generator.
        seed: the latent seed of a generator source, and the seed of the metrics' own
            randomness (KID's subsets).
        reference_n: reference images to use (the first ones); None: all of them.
        batch_size: images per extractor call.
        cache: a :class:`ReferenceCache`, True for the default one, False/None for none.
        progress: progress lines on stderr.

    Raises:
        GankitError: no metrics, a metric that needs a reference without one or logits the
            extractor lacks, too few images, or any error of the sources and extractor.
    """
    started = time.perf_counter()
    if not metrics:
        raise GankitError("no metrics to compute; name at least one (e.g. --metric fid)")
    needs_real = [m.name for m in metrics if m.needs_real]
    if needs_real and reference is None:
        raise GankitError(f"{', '.join(needs_real)} compare(s) with real images; give a "
                          f"reference (--reference FOLDER or RECIPE.yaml)")
    check_per_class(source, reference, extractor, metrics)
    if cache is True:
        cache = ReferenceCache()
    elif cache is False:
        cache = None
    if n is None:
        n = source.available() or DEFAULT_N
    if n < 2:
        raise GankitError(f"at least 2 images are needed to compare sets, got n={n}")
    fake = compute_features(source, extractor, n, batch_size=batch_size, seed=seed,
                            progress=progress, label="features of the generated images")
    wants_logits = [m.name for m in metrics if m.needs_logits]
    if wants_logits and fake.logits is None:
        raise GankitError(f"{', '.join(wants_logits)} needs class logits, and the extractor "
                          f"'{extractor.name}' gives none (set its logits_layer, or use one "
                          f"with a classifier)")
    real, cached, n_real = None, False, 0
    if needs_real:
        real, cached, n_real = reference_features(reference, extractor, reference_n,
                                                  cache=cache, batch_size=batch_size,
                                                  progress=progress)
    values = compute_values(metrics, fake, real, seed, source, reference, extractor)
    protocol = {
        "extractor": dict(extractor.protocol()),
        "metrics": {m.name: m.get_config() for m in metrics},
        "source": source.description,
        "reference": reference.description if needs_real else None,
        "n_fake": n, "n_real": n_real, "seed": seed,
    }
    if getattr(source, "truncation", None) is not None:
        protocol["truncation"] = source.truncation
    if any(m.needs_labels for m in metrics):
        protocol["classes"] = list(source.class_names)
    return EvaluationResult(values, protocol, n, n_real, time.perf_counter() - started, cached)


def compute_values(metrics: Sequence[Metric], fake: Features, real: Features | None,
                   seed: int, source: ImageSource, reference: ImageSource | None,
                   extractor: FeatureExtractor) -> dict[str, float]:
    """Every metric's values from the features of ``source``'s and ``reference``'s images
    (their first ``len(features)``), each metric with its own generator seeded ``seed``.

    Per-class metrics get the features with each image's class, and the logits aligned with
    the classes (:func:`align_logits`).
    """
    labelled_fake = labelled_real = aligned = None
    values: dict[str, float] = {}
    for metric in metrics:
        mine_fake, mine_real = fake, real if metric.needs_real else None
        if metric.needs_labels:
            if labelled_fake is None:
                labelled_fake = with_labels(fake, source, len(fake.features))
            mine_fake = labelled_fake
            if mine_real is not None:
                if labelled_real is None:
                    labelled_real = with_labels(real, reference, len(real.features))
                mine_real = labelled_real
            if metric.needs_logits and labelled_fake.logits is not None:
                if aligned is None:
                    aligned = align_logits(labelled_fake, extractor)
                mine_fake = aligned
        rng = np.random.default_rng(seed)  # each its own: a value does not depend on the others
        for name, value in metric.compute(mine_fake, mine_real, rng).items():
            if name in values:
                raise GankitError(f"two metrics both report '{name}'; give each metric once")
            values[name] = float(value)
    return values
