"""Conformance checks for metrics and feature extractors.

:func:`check_metric` runs a metric on tiny made-up feature sets (64 vectors of 8 numbers by
default) whose answer is known: identical sets score its best value, sets moved apart or
spread out score worse, and so on. :func:`check_feature_extractor` runs an extractor on a
few tiny seeded images. Neither imports TensorFlow; an extractor's network may.
"""

from __future__ import annotations

import json
import logging
import numbers
import os
import subprocess
import sys
from typing import Any, Iterable, Mapping

import numpy as np

from gankit.interfaces import FeatureExtractor, Features, Metric
from gankit.interfaces.metric_names import PER_CLASS, split_per_class, value_names
from gankit.testing.conformance import (
    CheckRun,
    ConformanceReport,
    _plain,
    check_config_round_trip,
    require_kind,
)

METRIC_CHECKS = ("interface", "config", "values", "determinism", "identical", "shifted",
                 "scaled", "labels", "collapsed")
"""Every check of :func:`check_metric`, in the order run. A metric runs those that apply
to it: ``identical``, ``shifted`` and ``scaled`` when it ``needs_real``, ``collapsed`` when
it does not, ``labels`` when it ``needs_labels``."""

FEATURE_EXTRACTOR_CHECKS = ("interface", "config", "preflight", "protocol", "features",
                            "inputs", "batching", "determinism", "sensitivity")
"""The checks of :func:`check_feature_extractor`, in the order run."""

_CLASSES = ("a", "b", "c")
"""The classes of the made-up features of a per-class metric (and of the logits' columns,
which have one more: a class the metric was not asked about)."""


# --- metrics -----------------------------------------------------------------------------

class _Sets:
    """The made-up features of one check run: ``base`` and what is derived from it."""

    def __init__(self, metric: Metric, n: int, dim: int, seed: int) -> None:
        self.metric = metric
        rng = np.random.default_rng([seed, 21])
        k = len(_CLASSES)
        self.labels = (np.arange(n) % k).astype(np.int32)
        features = rng.standard_normal((n, dim))
        if metric.needs_labels:  # each class its own place, so that classes can be told apart
            features += 3.0 * rng.standard_normal((k, dim))[self.labels]
        self.features = features.astype(np.float32)
        # Confident, evenly spread class logits (one column more than classes asked about).
        self.logits = (4.0 * np.eye(k + 1)[self.labels]
                       + 0.5 * rng.standard_normal((n, k + 1))).astype(np.float32)
        # another set near base, of the same classes: an ordinary pair of sets
        self.other = (features + 0.5 * rng.standard_normal((n, dim))).astype(np.float32)
        self.feature_signs = rng.choice([-1.0, 1.0], dim).astype(np.float32)
        self.logit_signs = rng.choice([-1.0, 1.0], k + 1).astype(np.float32)
        self.noise = rng.standard_normal((n, dim)).astype(np.float32)
        self.logit_noise = rng.standard_normal((n, k + 1)).astype(np.float32)

    def make(self, features: np.ndarray, logits: np.ndarray | None = None,
             labels: np.ndarray | None = None) -> Features:
        """Features as the evaluation hands them to this metric: logits only if it
        ``needs_logits``, classes only if it ``needs_labels``."""
        metric = self.metric
        logits = self.logits if logits is None else logits
        labels = self.labels if labels is None else labels
        return Features(np.array(features, np.float32),
                        np.array(logits, np.float32) if metric.needs_logits else None,
                        np.array(labels, np.int32) if metric.needs_labels else None,
                        _CLASSES if metric.needs_labels else None)

    def base(self) -> Features:
        return self.make(self.features)

    def shifted(self, amount: float) -> Features:
        """Every feature (and logit) moved by ``amount`` standard deviations."""
        return self.make(self.features + amount * self.feature_signs,
                         self.logits + amount * self.logit_signs)

    def scaled(self, factor: float) -> Features:
        """Spread ``factor`` times as wide about the set's mean."""
        def spread(x):
            mean = x.mean(axis=0)
            return (x - mean) * factor + mean
        return self.make(spread(self.features), spread(self.logits))

    def relabelled(self) -> Features:
        """The same features, each given the next class."""
        return self.make(self.features, labels=(self.labels + 1) % len(_CLASSES))

    def collapsed(self) -> Features:
        """What a collapsed generator gives: one image's features (and logits, confidently
        a class the metric was not asked about) for every image, plus noise of 0.001."""
        k = len(_CLASSES)
        logits = 4.0 * np.eye(k + 1)[np.full(len(self.labels), k)] + 0.5 * self.logit_noise
        return self.make(self.features[:1] + 1e-3 * self.noise, logits)


def _real_number(value: Any) -> float | None:
    """``value`` as a float if it is a real number (a numpy one too), else None."""
    if isinstance(value, (bool, np.bool_, complex, np.complexfloating, str, bytes)):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _copy(features: Features) -> Features:
    return Features(*(np.array(v) if isinstance(v, np.ndarray) else v for v in features))


def check_metric(metric: Metric, *, n: int = 64, dim: int = 8, seed: int = 0,
                 skip: Iterable[str] = ()) -> ConformanceReport:
    """Check that a metric's first value means what it says: best on identical feature
    sets, worse the further apart they are.

    The features are ``n`` seeded normal vectors of ``dim`` numbers, float32 (with three
    classes ``a``, ``b``, ``c`` each in its own place for a per-class metric, and confident
    class logits of four columns when it ``needs_logits``). Of the values, the first (the
    one that ranks checkpoints) is compared. Checks, in order (names for ``skip``):

    - ``interface``: ``needs_real``, ``needs_logits``, ``needs_labels`` and
      ``lower_is_better`` are bools; ``best_value`` is None or a finite number.
    - ``config``: ``get_config()``/``from_config()`` round trip.
    - ``values``: ``compute`` returns a dict of finite numbers whose names are those
      gankit reads before training (:func:`gankit.interfaces.metric_names.value_names`,
      which runs it on a dozen made-up 4-d vectors): the names do not depend on the
      features, the first is not a per-class value, and only a per-class metric names
      ``NAME/CLASS`` values, one per class; the arrays given are left unchanged.
    - ``determinism``: the same features and an ``rng`` seeded alike give the same values,
      also from a new instance built from the config.
    - ``identical`` (a metric that ``needs_real``): two identical sets give ``best_value``
      (0 for a lower-is-better metric that declares none), within 1% of the distance to
      the value of sets 2 standard deviations apart (an unbiased estimate such as KID's
      is slightly off 0). Without a best value to compare with, a note says so.
    - ``shifted`` (``needs_real``): generated features moved by 1 standard deviation in
      every dimension score worse than identical ones, and by 2 no better than by 1, in
      the direction ``lower_is_better`` declares.
    - ``scaled`` (``needs_real``): generated features spread twice as wide or half as wide
      about their mean score worse (at least one of the two) than identical ones.
    - ``labels`` (``needs_labels``): giving every generated image the wrong class scores
      worse than giving each its own.
    - ``collapsed`` (a metric of the generated images alone): varied images with
      confident, evenly spread logits score better than a collapsed generator's (one
      image's features and logits for all).

    Args:
        metric: the component.
        n: feature vectors per set (raise it if the metric's settings need more).
        dim: numbers per feature vector.
        seed: the seed of the made-up features and of the ``rng`` given to ``compute``.
        skip: names of checks not to run (of those that apply to this metric).

    Raises:
        ConformanceError: naming the failed check and the problem.
        TypeError: if ``metric`` is not a :class:`gankit.Metric` instance.
    """
    require_kind(metric, Metric, "check_metric")
    names = ["interface", "config", "values", "determinism"]
    if getattr(metric, "needs_real", True):
        names += ["identical", "shifted", "scaled"]
    if getattr(metric, "needs_labels", False):
        names.append("labels")
    if not getattr(metric, "needs_real", True):
        names.append("collapsed")
    run = CheckRun(metric, [c for c in METRIC_CHECKS if c in names], skip)
    sets: dict[str, _Sets] = {}
    lower = metric.lower_is_better is True
    direction = "lower" if lower else "higher"

    def data() -> _Sets:
        if not sets:
            sets["data"] = _Sets(metric, n, dim, seed)
        return sets["data"]

    def compute(fake: Features, real: Features | None = None, instance: Metric | None = None
                ) -> dict[str, Any]:
        return (instance or metric).compute(fake, real if metric.needs_real else None,
                                            np.random.default_rng(seed))

    def first(fake: Features, real: Features | None = None) -> float:
        values = compute(fake, real)
        value = float(next(iter(values.values())))
        if not np.isfinite(value):
            run.fail(f"its first value '{next(iter(values))}' is {value}")
        return value

    def worse(a: float, b: float) -> bool:
        """Whether ``a`` is worse than ``b``, by more than rounding."""
        gap = 1e-9 * (1.0 + abs(a) + abs(b))
        return a > b + gap if lower else a < b - gap

    def identical_value() -> float:
        if "identical" not in sets:
            base = data().base()
            sets["identical"] = first(base, _copy(base))
        return sets["identical"]

    def interface():
        for attr in ("needs_real", "needs_logits", "needs_labels", "lower_is_better"):
            value = getattr(metric, attr)
            if not isinstance(value, bool):
                run.fail(f"{attr} must be a bool, got {value!r}")
        best = metric.best_value
        if best is not None and (isinstance(best, bool) or not isinstance(best, numbers.Real)
                                 or not np.isfinite(float(best))):
            run.fail(f"best_value must be None or a finite number, got {best!r}")

    def values():
        d = data()
        fake, real = d.make(d.other), d.base()
        given = [_copy(fake), _copy(real)]
        out = compute(fake, real)
        if not isinstance(out, Mapping) or not out:
            run.fail(f"compute() returned {out!r}, expected a non-empty dict of value name -> "
                     "float")
        for name, value in out.items():
            if not isinstance(name, str) or not name.strip():
                run.fail(f"compute() named a value {name!r}; names are non-empty strings")
            number = _real_number(value)
            if number is None:
                run.fail(f"compute()['{name}'] is {type(value).__name__} {value!r}, expected a "
                         "float")
            if not np.isfinite(number):
                run.fail(f"compute()['{name}'] is {number} on {n} ordinary feature vectors "
                         "per set")
        for label, before, after in (("generated", given[0], fake), ("real", given[1], real)):
            for field, a, b in zip(Features._fields, before, after):
                if isinstance(a, np.ndarray) and not np.array_equal(a, b):
                    run.fail(f"compute() changed the {label} Features.{field} it was given; "
                             "work on a copy (np.array(x)), the same features are handed to "
                             "every metric")
        try:
            expected = [name for _, name in value_names(
                [metric], _CLASSES if metric.needs_labels else None)]
        except Exception as exc:  # noqa: BLE001 - what gankit does before training
            run.fail(f"gankit names a metric's values by running compute() on a dozen made-up "
                     f"4-d feature vectors, and it raised {type(exc).__name__}: {exc}")
        got = list(out)
        if got != expected:
            run.fail(f"compute() names its values {got} here but {expected} on gankit's "
                     "made-up features: the names must not depend on the features (they name "
                     "losses.csv's columns and metrics.best before the first evaluation)")
        if split_per_class(got[0])[1] is not None:
            run.fail(f"the first value '{got[0]}' is a class's; put the value that ranks "
                     f"checkpoints (e.g. the mean over the classes) first")
        for name in got[1:]:
            cls = split_per_class(name)[1]
            if PER_CLASS in name and not metric.needs_labels:
                run.fail(f"the value '{name}' has '{PER_CLASS}' in its name, which names a "
                         "class's value (NAME/CLASS), and the metric is not per-class "
                         "(needs_labels); choose another name")
            if cls is not None and cls not in _CLASSES:
                run.fail(f"the value '{name}' names a class '{cls}', and the classes are "
                         f"{', '.join(_CLASSES)} (Features.class_names)")

    def determinism():
        d = data()
        fake, real = d.make(d.other), d.base()
        a, b = compute(fake, real), compute(fake, real)
        if a != b:
            run.fail(f"compute() gave {a} and then {b} for the same features and an rng "
                     "seeded alike; draw randomness only from rng, its third argument")
        rebuilt = type(metric).from_config(metric.get_config())
        c = compute(fake, real, rebuilt)
        if a != c:
            run.fail(f"a new instance built from the same config gave {c}, this one {a}; keep "
                     "no state between calls")

    def identical():
        d = data()
        value, far = identical_value(), first(d.shifted(2.0), d.base())
        best = metric.best_value
        if best is None and lower:
            best = 0.0
        if best is None:
            run.note(f"two identical sets give {value:.6g}, not compared with a best value "
                     "(declare best_value to have it checked)")
            return
        tolerance = 1e-6 + 0.01 * abs(far - float(best))
        if abs(value - float(best)) > tolerance:
            declared = ("its best_value" if metric.best_value is not None else
                        "a distance's best: lower_is_better is True and no best_value is "
                        "declared")
            run.fail(f"two identical sets of features give {value:.6g}, expected {best:g} "
                     f"({declared}); sets 2 standard deviations apart give {far:.6g}. If "
                     "higher values are better, set lower_is_better = False; if its best is "
                     "another value, declare best_value")

    def shifted():
        d = data()
        same, one, two = identical_value(), first(d.shifted(1.0), d.base()), \
            first(d.shifted(2.0), d.base())
        if not worse(one, same):
            if worse(same, one):  # better apart than together: the direction is reversed
                hint = (f"it {'falls' if lower else 'rises'} as the sets move apart, so set "
                        f"lower_is_better = {not lower}")
            else:
                hint = "it must get worse as the sets move apart"
            run.fail(f"two identical sets give {same:.6g} and generated features moved by 1 "
                     f"standard deviation in every dimension give {one:.6g}, which is not "
                     f"worse ({direction} is better); {hint}")
        if worse(one, two):
            run.fail(f"generated features moved by 2 standard deviations give {two:.6g}, "
                     f"better ({direction} is better) than moved by 1 ({one:.6g})")

    def scaled():
        d = data()
        same = identical_value()
        wide, narrow = first(d.scaled(2.0), d.base()), first(d.scaled(0.5), d.base())
        if not (worse(wide, same) or worse(narrow, same)):
            run.fail(f"two identical sets give {same:.6g}, generated features spread twice as "
                     f"wide about their mean {wide:.6g} and half as wide {narrow:.6g}: neither "
                     f"is worse ({direction} is better), so it cannot tell a generator that "
                     "makes too little or too much variety (skip 'scaled' if it compares only "
                     "the sets' means by design)")

    def labels():
        d = data()
        own = identical_value() if metric.needs_real else first(d.base())
        other = first(d.relabelled(), d.base())
        if not worse(other, own):
            run.fail(f"the generated images each given their own class give {own:.6g} and each "
                     f"given another class {other:.6g}, which is not worse ({direction} is "
                     "better); a per-class metric must compare each class's images with that "
                     "class's (Features.labels)")

    def collapsed():
        d = data()
        varied, one = first(d.base()), first(d.collapsed())
        if not worse(one, varied):
            run.fail(f"varied generated images with confident, evenly spread class logits give "
                     f"{varied:.6g} and a collapsed generator's (one image's features and "
                     f"logits for all) {one:.6g}, which is not worse ({direction} is better); "
                     "a metric of the generated images alone must tell them apart")

    checks = {"interface": interface, "config": lambda: check_config_round_trip(metric, run.fail),
              "values": values, "determinism": determinism, "identical": identical,
              "shifted": shifted, "scaled": scaled, "labels": labels, "collapsed": collapsed}
    return run.run({name: checks[name] for name in run.names})


# --- feature extractors ------------------------------------------------------------------

_PREFLIGHT = """
import importlib, json, sys
loaded = lambda: [m for m in ("tensorflow", "keras") if m in sys.modules]
target = importlib.import_module(sys.argv[1])
for part in sys.argv[2].split("."):
    target = getattr(target, part)
before = loaded()
print("IMPORTED", json.dumps(before), flush=True)
extractor = target.from_config(json.loads(sys.argv[3]))
extractor.preflight()
extractor.class_names()
print("DONE", json.dumps(loaded()), flush=True)
"""


def _images(n: int, shape: tuple[int, int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, *shape, n])
    return rng.uniform(0.0, 1.0, (n, *shape)).astype(np.float32)


def check_feature_extractor(extractor: FeatureExtractor, *,
                            image_shape: tuple[int, int, int] = (8, 8, 3), batch_size: int = 4,
                            seed: int = 0, skip: Iterable[str] = ()) -> ConformanceReport:
    """Check that an extractor gives features the metrics and the reference cache can rely
    on.

    Images are seeded noise in ``[0, 1]``, float32 ``(batch_size, *image_shape)``. Checks,
    in order (names for ``skip``):

    - ``interface``: ``class_names()`` is None or a tuple of distinct non-empty strings.
    - ``config``: ``get_config()``/``from_config()`` round trip.
    - ``preflight``: ``preflight()`` and ``class_names()`` run and import no TensorFlow or
      Keras. When TensorFlow is loaded already, they run in a new Python process (the
      extractor rebuilt there from its class and config); a class that process cannot
      import (defined inside a function) is noted, not checked.
    - ``protocol``: ``protocol()`` is a non-empty mapping of plain JSON data, the same on
      every call and from a new instance built from the config (it keys the cache).
    - ``features``: ``extract()`` returns :class:`gankit.Features` whose ``features`` are
      float32 or float64 ``(batch_size, d)`` and finite, and whose ``logits`` are None or
      finite ``(batch_size, classes)``, one column per name of ``class_names()``.
    - ``inputs``: images of other sizes (twice as large, not square) and with the other
      channel count (1 for 3, 3 for 1) give features (and logits) of the same widths.
    - ``batching``: an image's features are the same computed alone, in a pair and in the
      whole batch (relative tolerance 1e-4).
    - ``determinism``: the same images give the same features twice and from a new instance
      built from the config (weights loaded, not drawn).
    - ``sensitivity``: different images give different features.

    Args:
        extractor: the component, configured (its network files in place).
        image_shape: ``(height, width, channels)`` of the images.
        batch_size: images per batch (at least 3).
        seed: the seed of the images.
        skip: names of checks not to run.

    Raises:
        ConformanceError: naming the failed check and the problem.
        TypeError: if ``extractor`` is not a :class:`gankit.FeatureExtractor` instance.
        ValueError: for a batch_size below 3.
    """
    require_kind(extractor, FeatureExtractor, "check_feature_extractor")
    if batch_size < 3:
        raise ValueError(f"batch_size must be at least 3, got {batch_size}")
    run = CheckRun(extractor, FEATURE_EXTRACTOR_CHECKS, skip)
    shape = tuple(int(s) for s in image_shape)
    images = _images(batch_size, shape, seed)
    done: dict[str, Any] = {}

    def extract(batch: np.ndarray, instance: FeatureExtractor | None = None,
                what: str = "") -> tuple[np.ndarray, np.ndarray | None]:
        out = (instance or extractor).extract(np.array(batch))
        where = f" for {what}" if what else ""
        if not isinstance(out, Features):
            run.fail(f"extract() returned {type(out).__name__}{where}; return "
                     "gankit.Features(features, logits)")
        features = np.asarray(out.features)
        if features.ndim != 2 or len(features) != len(batch) or features.shape[1] < 1:
            run.fail(f"extract() gave features of shape {features.shape} for {len(batch)} "
                     f"images of shape {batch.shape[1:]}{where}; expected (n, d): one row "
                     "per image (flatten each image's features)")
        if features.dtype not in (np.float32, np.float64):
            run.fail(f"extract() gave features of dtype {features.dtype}{where}; expected "
                     "float32 or float64")
        if not np.all(np.isfinite(features)):
            run.fail(f"extract() gave non-finite features{where}")
        logits = None
        if out.logits is not None:
            logits = np.asarray(out.logits)
            if logits.ndim != 2 or len(logits) != len(batch) or logits.shape[1] < 1 or \
                    not np.issubdtype(logits.dtype, np.floating):
                run.fail(f"extract() gave logits of shape {logits.shape} and dtype "
                         f"{logits.dtype} for {len(batch)} images{where}; expected float "
                         "(n, classes), or None")
            if not np.all(np.isfinite(logits)):
                run.fail(f"extract() gave non-finite logits{where}")
        return features, logits

    def base() -> tuple[np.ndarray, np.ndarray | None]:
        if "base" not in done:
            done["base"] = extract(images)
        return done["base"]

    def close(a: np.ndarray, b: np.ndarray, rtol: float) -> tuple[bool, float]:
        scale = float(np.max(np.abs(a), initial=0.0))
        diff = float(np.max(np.abs(a.astype(np.float64) - b), initial=0.0))
        return diff <= rtol * (1.0 + scale), diff

    def interface():
        names = extractor.class_names()
        if names is None:
            return
        if not isinstance(names, tuple) or not names or \
                not all(isinstance(c, str) and c for c in names) or len(set(names)) != len(names):
            run.fail(f"class_names() must be None or a tuple of distinct non-empty names, got "
                     f"{names!r}")

    def preflight():
        loaded = [m for m in ("tensorflow", "keras") if m in sys.modules]
        if not loaded:
            extractor.preflight()
            extractor.class_names()
            after = [m for m in ("tensorflow", "keras") if m in sys.modules]
            if after:
                run.fail(f"preflight() or class_names() imported {after[0]}; they run before "
                         "anything slow (gankit validate, the start of a run): check files "
                         "only, and import TensorFlow in extract() or protocol()")
            return
        extractor.preflight()
        extractor.class_names()
        cls = type(extractor)
        if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
            run.note(f"{cls.__qualname__} cannot be imported by name in a new process, so "
                     "that preflight() imports no TensorFlow was not checked")
            return
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        try:
            result = subprocess.run(
                [sys.executable, "-c", _PREFLIGHT, cls.__module__, cls.__qualname__,
                 json.dumps(extractor.get_config())],
                capture_output=True, text=True, env=env, timeout=300)
        except subprocess.TimeoutExpired:
            run.fail("preflight() took over 300 s in a new process; it must be quick")
        lines = {line.split(" ", 1)[0]: line.split(" ", 1)[1]
                 for line in result.stdout.splitlines() if line.startswith(("IMPORTED", "DONE"))}
        error = (result.stderr.strip().splitlines() or ["?"])[-1]
        if "IMPORTED" not in lines:
            run.note(f"{cls.__module__} cannot be imported in a new process ({error}), so "
                     "that preflight() imports no TensorFlow was not checked")
            return
        if json.loads(lines["IMPORTED"]):
            run.note(f"importing {cls.__module__} imports TensorFlow already, so that "
                     "preflight() imports none was not checked (a plugin's modules must not "
                     "import it at the top)")
            return
        if "DONE" not in lines:
            run.fail(f"in a new process, building the extractor from its config and calling "
                     f"preflight() failed: {error}")
        after = json.loads(lines["DONE"])
        if after:
            run.fail(f"preflight() or class_names() imported {after[0]}; they run before "
                     "anything slow (gankit validate, the start of a run): check files only, "
                     "and import TensorFlow in extract() or protocol()")

    def protocol():
        first = extractor.protocol()
        if not isinstance(first, Mapping) or not first:
            run.fail(f"protocol() returned {first!r}, expected a non-empty mapping that "
                     "describes the network, its weights and its input")
        try:
            plain = json.loads(json.dumps(dict(first), sort_keys=True))
        except (TypeError, ValueError) as exc:
            run.fail(f"protocol() must be plain JSON data (it keys the reference cache and is "
                     f"written beside every value): {exc}")
        again = _plain(dict(extractor.protocol()))
        rebuilt = _plain(dict(type(extractor).from_config(extractor.get_config()).protocol()))
        for label, other in (("a second call", again), ("a new instance built from the same "
                                                         "config", rebuilt)):
            if other != plain:
                key = next((k for k in sorted(set(plain) | set(other))
                            if plain.get(k) != other.get(k)), "?")
                run.fail(f"{label} gives another protocol ('{key}': {plain.get(key)!r} became "
                         f"{other.get(key)!r}); the cached reference features would never be "
                         "found again: leave out what the config and the weights do not fix "
                         "(object ids, times, temporary paths)")

    def features():
        feats, logits = base()
        names = extractor.class_names()
        if names is not None and logits is not None and logits.shape[1] != len(names):
            run.fail(f"class_names() names {len(names)} classes and the logits have "
                     f"{logits.shape[1]} columns; name each logit's class, in order")

    def inputs():
        feats, logits = base()
        height, width, channels = shape
        others = [(2 * height, 2 * width, channels), (height, 2 * width, channels),
                  (height, width, 1 if channels == 3 else 3)]
        for other in others:
            got, got_logits = extract(_images(2, other, seed), what=f"images of shape {other}")
            widths = (got.shape[1], None if got_logits is None else got_logits.shape[1])
            expected = (feats.shape[1], None if logits is None else logits.shape[1])
            if widths != expected:
                why = ("images reach extract() with their source's channels (3 from a "
                       "folder, a dataset's own in training): convert them"
                       if other[2] != channels else "images of any size reach extract(): "
                       "resize them to the network's input")
                run.fail(f"images of shape {other} give features and logits of widths "
                         f"{widths}, images of shape {shape} {expected}; {why}")

    def batching():
        feats, logits = base()
        alone = [extract(images[i:i + 1]) for i in range(len(images))]
        pair = extract(images[1:3])
        for label, rows, part in (("alone", [a[0][0] for a in alone], range(len(images))),
                                  ("in a pair", list(pair[0]), range(1, 3))):
            for i, row in zip(part, rows):
                ok, diff = close(feats[i], row, 1e-4)
                if not ok:
                    run.fail(f"the features of image {i} computed {label} differ from those "
                             f"computed in a batch of {len(images)} (by up to {diff:.3g}): an "
                             "image's features must not depend on the images beside it (run "
                             "the network with training=False, no batch statistics)")
        if logits is not None:
            for i, (_, row) in enumerate(alone):
                if row is None or not close(logits[i], row[0], 1e-4)[0]:
                    run.fail(f"the logits of image {i} computed alone differ from those "
                             f"computed in a batch of {len(images)}")

    def determinism():
        feats, logits = base()
        for label in ("a second call", "a new instance built from the same config"):
            instance = None if label == "a second call" else \
                type(extractor).from_config(extractor.get_config())
            got, got_logits = extract(images, instance)
            ok, diff = close(feats, got, 1e-5)
            if not ok or (logits is None) != (got_logits is None) or \
                    (logits is not None and not close(logits, got_logits, 1e-5)[0]):
                run.fail(f"{label} gives other features for the same images (by up to "
                         f"{diff:.3g}): reference features are cached and reused by later "
                         "runs, so load the network's weights from what the config names; "
                         "draw nothing at random")

    def sensitivity():
        feats, _ = base()
        scale = 1e-6 * (1.0 + float(np.max(np.abs(feats), initial=0.0)))
        for i in range(len(feats)):
            for j in range(i + 1, len(feats)):
                if float(np.max(np.abs(feats[i].astype(np.float64) - feats[j]))) <= scale:
                    run.fail(f"images {i} and {j} (different seeded noise) give the same "
                             "features: compute the features from the images")

    # Images of several sizes retrace a compiled network, which TensorFlow would report.
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return run.run({"interface": interface,
                        "config": lambda: check_config_round_trip(extractor, run.fail),
                        "preflight": preflight, "protocol": protocol, "features": features,
                        "inputs": inputs, "batching": batching, "determinism": determinism,
                        "sensitivity": sensitivity})
    finally:
        logger.setLevel(level)


__all__ = ["FEATURE_EXTRACTOR_CHECKS", "METRIC_CHECKS", "check_feature_extractor",
           "check_metric"]
