"""Scoring generated images: features in batches, cached reference features, metrics.

::

    source    --batches-->  extractor  --Features-->  metrics  -->  EvaluationResult
    reference --batches-->  extractor  --Features (cached on disk, keyed by content)--^

A library API first (``gankit evaluate`` and training-time metrics both call
:func:`evaluate`); :func:`plan_evaluation` turns command-line strings into checked
components and sources without TensorFlow, so mistakes are one line before anything slow.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from gankit.errors import GankitError, RecipeError, did_you_mean
from gankit.evaluation.cache import EvaluationWarning, ReferenceCache, default_cache_dir
from gankit.evaluation.sources import (DatasetSource, GeneratorSource, ImageFolderSource,
                                  ImageSource)
from gankit.interfaces import FeatureExtractor, Features, Metric
from gankit.evaluation.per_class import align_logits, check_per_class, logit_classes, with_labels
from gankit.util.progress import _duration

__all__ = ["DatasetSource", "EvaluationPlan", "EvaluationResult", "EvaluationWarning",
           "GeneratorSource", "ImageFolderSource", "ImageSource", "ReferenceCache",
           "align_logits", "check_per_class", "compute_features", "compute_values",
           "default_cache_dir", "evaluate", "logit_classes", "plan_evaluation",
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
                       progress: bool = True) -> tuple[Features, bool, int]:
    """The features of the first ``n`` reference images (all when None), from the cache
    when it holds them, else computed and cached.

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
    features = compute_features(reference, extractor, n, batch_size=batch_size,
                                progress=progress, label="features of the reference")
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
    if any(getattr(m, "needs_labels", False) for m in metrics):
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
        if getattr(metric, "needs_labels", False):
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


# --- command-line planning (no TensorFlow) ----------------------------------------------

@dataclass
class EvaluationPlan:
    """A checked ``gankit evaluate`` request: everything built but nothing loaded."""

    source: ImageSource
    reference: ImageSource | None
    extractor: FeatureExtractor
    metrics: list[Metric]
    n: int | None
    reference_n: int | None
    seed: int
    json_path: Path | None


def plan_evaluation(source: str, metrics: Sequence[str], *, reference: str | None = None,
                    extractor: str = "inception_v3", overrides: Iterable[str] = (),
                    n: int | None = None, reference_n: int | None = None, seed: int = 0,
                    best: bool = False, value_range: Sequence[float] | None = None,
                    json_path: str | None = None, default_json: bool = True,
                    registry: Any = None, use_ema: bool = True) -> EvaluationPlan:
    """Check a ``gankit evaluate`` request and build its parts, without TensorFlow.

    ``overrides`` are ``extractor.KEY=VALUE`` or ``METRIC.KEY=VALUE`` (for a metric named
    in ``metrics``); values are YAML. Relative file paths in them are relative to the
    current directory.

    Raises:
        GankitError: one line naming the argument: an unknown metric or extractor (with the
            closest name), a bad ``--set`` key or value, a missing source or reference, a bad
            ``-n`` or ``--seed``.
    """
    from gankit.recipe.strict_yaml import parse_yaml
    from gankit.plugin.registry import resolve

    if registry is None:
        from gankit.plugin.manager import default_plugins
        registry = default_plugins().registry
    for flag, value, low in (("-n", n, 2), ("--reference-n", reference_n, 2)):
        if value is not None and not low <= value <= MAX_N:
            raise GankitError(f"{flag} must be between {low} and {MAX_N:,}, got {value}")
    if not 0 <= seed < 2 ** 63:
        raise GankitError(f"--seed must be between 0 and 2**63 - 1, got {seed}")
    if not metrics:
        raise GankitError("name at least one metric, e.g. --metric fid")
    for name in metrics:
        registry.get("metric", name, path="--metric")
    if len(set(metrics)) != len(metrics):
        raise GankitError(f"--metric: each metric once, got {', '.join(metrics)}")
    registry.get("feature_extractor", extractor, path="--extractor")

    sections: dict[str, dict[str, Any]] = {"extractor": {"type": extractor}}
    sections.update({m: {"type": m} for m in metrics})
    for item in overrides:
        key, sep, text = item.partition("=")
        head, dot, rest = key.strip().partition(".")
        if not sep or not dot or not rest or "." in rest:
            raise GankitError(f"--set: expected extractor.KEY=VALUE or METRIC.KEY=VALUE "
                              f"(e.g. extractor.path=classifier.keras), got {item!r}")
        if head not in sections:
            raise GankitError(f"--set {key}: '{head}' is neither 'extractor' nor a --metric "
                              f"given{did_you_mean(head, sections)}; expected extractor.KEY "
                              f"or one of {', '.join(f'{m}.KEY' for m in metrics)}")
        sections[head][rest] = parse_yaml(text, source=f"--set {key}")
    spec = resolve(registry, "feature_extractor", sections.pop("extractor"), "extractor")
    built_extractor = _create(_absolute_paths(spec), "extractor")
    built_metrics = [_create(resolve(registry, "metric", section, name), name)
                     for name, section in sections.items()]
    preflight = getattr(built_extractor, "preflight", None)
    if preflight is not None:
        preflight()

    needs_real = any(m.needs_real for m in built_metrics)
    if reference is None and needs_real:
        wanting = ", ".join(m.name for m in built_metrics if m.needs_real)
        raise GankitError(f"--reference is required for {wanting}: a folder of images or a "
                          f"recipe .yaml whose dataset to compare with")
    ref_source = _reference_source(reference, registry) if reference is not None and needs_real \
        else None
    src = _source(source, best, value_range, registry, use_ema)
    check_per_class(src, ref_source, built_extractor, built_metrics)
    if n is None and isinstance(src, GeneratorSource):
        n = DEFAULT_N
    for metric in built_metrics:
        each = 2 if metric.needs_real else 1  # a covariance needs 2 images; an accuracy 1
        if getattr(metric, "needs_labels", False) and n is not None \
                and n < each * len(src.class_names):
            raise GankitError(f"-n {n}: {metric.name} needs at least {each} generated "
                              f"image(s) of each of the {len(src.class_names)} classes; give "
                              f"-n {each * len(src.class_names)} or more")
    out = None
    if json_path is not None:
        out = Path(json_path)
        if out.is_dir() or not out.parent.is_dir():
            raise GankitError(f"--json {out}: cannot write there; name a file in an existing "
                              f"folder")
    elif default_json and getattr(src, "run_dir", None) is not None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        out = src.run_dir / f"evaluation-{stamp}.json"
    return EvaluationPlan(src, ref_source, built_extractor, built_metrics, n, reference_n,
                          seed, out)


def _create(spec, path: str):
    try:
        return spec.create()
    except RecipeError as err:
        if err.path and not err.path.startswith(path):
            err.path = f"{path}.{err.path.split('.', 1)[-1]}"
        raise


def _absolute_paths(spec, base: Path | None = None):
    """``spec`` with its relative file parameters made absolute against ``base`` (default:
    the current directory)."""
    from gankit.plugin.registry import ComponentSpec

    config = dict(spec.config)
    for key, param in spec.registration.component.params.items():
        value = config.get(key)
        if param.is_path and isinstance(value, str) and value:
            config[key] = os.path.join(base or os.getcwd(), os.path.expanduser(value))
            config[key] = os.path.normpath(config[key])
    return ComponentSpec(spec.kind, spec.type, spec.registration, config, spec.path,
                         spec.registry)


def _reference_source(reference: str, registry: Any) -> ImageSource:
    path = Path(reference).expanduser()
    if path.suffix.lower() in (".yaml", ".yml") and path.is_file():
        # Only the dataset section matters: a file with just `dataset:` is enough.
        from gankit.recipe.strict_yaml import load_raw
        from gankit.plugin.registry import resolve

        raw = load_raw(path)
        if "dataset" not in raw:
            raise RecipeError("no 'dataset' section: --reference takes a recipe whose dataset "
                              "to compare with", source=str(path))
        spec = _absolute_paths(resolve(registry, "dataset", raw["dataset"], "dataset",
                                       source=str(path)), base=path.resolve().parent)
        try:
            dataset = spec.create()
        except RecipeError as err:
            err.source = err.source or str(path)
            raise
        return DatasetSource(dataset, f"dataset {spec.type} of {path.absolute()}")
    if not path.exists():
        raise GankitError(f"--reference: {path} does not exist; expected a folder of images "
                          f"or a recipe .yaml whose dataset to use")
    if not path.is_dir():
        raise GankitError(f"--reference: {path} is neither a folder of images nor a recipe "
                          f".yaml")
    return ImageFolderSource(path, what="--reference folder")


def _source(source: str, best: bool, value_range: Sequence[float] | None,
            registry: Any, use_ema: bool = True) -> ImageSource:
    path = Path(source).expanduser()
    if path.is_dir() and not (path / "recipe.yaml").is_file():
        if best or value_range is not None:
            flag = "--best" if best else "--value-range"
            raise GankitError(f"{flag} is for a run directory or a .keras generator; {path} is "
                              f"a folder of images")
        return ImageFolderSource(path, what="source folder")
    return GeneratorSource(path, value_range=tuple(value_range) if value_range else None,
                           best=best, registry=registry, use_ema=use_ema)
