"""``gankit evaluate`` as a Python API: command-line strings (a run directory, a folder, a
``.keras`` file; metric and extractor names; ``--set`` overrides) turned into checked
components and sources without TensorFlow (:func:`plan_evaluation`), so mistakes are one
line before anything slow; then :func:`gankit.evaluation.features.evaluate` scores them.

    import gankit

    result = gankit.evaluate("runs/frog_fast-...", ["fid", "kid"], reference="frogsB",
                             extractor="keras_model",
                             overrides=["extractor.path=classifier.keras"], n=2500)
    print(result.values)
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Sequence

from gankit.app.nearest import NearestPlan, NearestRequest, plan_nearest, run_nearest
from gankit.errors import GankitError, RecipeError, did_you_mean
from gankit.evaluation.features import DEFAULT_N, MAX_N, EvaluationResult
from gankit.evaluation.features import evaluate as _score
from gankit.evaluation.nearest import NearestResult
from gankit.evaluation.per_class import check_per_class
from gankit.evaluation.sources import DatasetSource, GeneratorSource, ImageFolderSource, ImageSource
from gankit.interfaces import FeatureExtractor, Metric
from gankit.recipe.overrides import split_override
from gankit.rundir.owned import refuse_owned_output
from gankit.rundir.run_dir import RunDir
from gankit.util.latents import truncation_problem


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
    nearest: NearestPlan | None = None
    """``--nearest K``'s memorisation check, when asked for."""


def plan_evaluation(source: str, metrics: Sequence[str], *, reference: str | None = None,
                    extractor: str = "inception_v3", overrides: Iterable[str] = (),
                    n: int | None = None, reference_n: int | None = None, seed: int = 0,
                    best: bool = False, value_range: Sequence[float] | None = None,
                    json_path: str | None = None, default_json: bool = True,
                    registry: Any = None, use_ema: bool = True,
                    nearest: NearestRequest | None = None,
                    truncation: float | None = None) -> EvaluationPlan:
    """Check a ``gankit evaluate`` request and build its parts, without TensorFlow.

    ``overrides`` are ``extractor.KEY=VALUE`` or ``METRIC.KEY=VALUE`` (for a metric named
    in ``metrics``); values are YAML. Relative file paths in them are relative to the
    current directory. ``nearest`` asks for the memorisation check too (``metrics`` may
    then be empty; see :mod:`gankit.app.nearest`). ``truncation`` draws a generator's
    latents truncated to ``[-truncation, truncation]`` (:mod:`gankit.util.latents`).

    Raises:
        GankitError: one line naming the argument: an unknown metric or extractor (with the
            closest name), a bad ``--set`` key or value, a missing source or reference, a bad
            ``-n``, ``--seed`` or ``--truncation``.
    """
    from gankit.plugin.registry import resolve
    from gankit.recipe.strict_yaml import parse_yaml

    if registry is None:
        from gankit.plugin.manager import default_plugins
        registry = default_plugins().registry
    for flag, value, low in (("-n", n, 2), ("--reference-n", reference_n, 2)):
        if value is not None and not low <= value <= MAX_N:
            raise GankitError(f"{flag} must be between {low} and {MAX_N:,}, got {value}")
    if not 0 <= seed < 2 ** 63:
        raise GankitError(f"--seed must be between 0 and 2**63 - 1, got {seed}")
    problem = truncation_problem(truncation)
    if problem is not None:
        raise GankitError(f"--truncation {problem}")
    if value_range is not None:
        _check_value_range(value_range)
    if not metrics and nearest is None:
        raise GankitError("name at least one metric, e.g. --metric fid (or ask for the "
                          "memorisation check, --nearest K)")
    if not metrics and json_path is not None:
        raise GankitError("--json writes the metrics' values: give a --metric too (--nearest "
                          "writes its numbers to nearest.json beside its panel)")
    for name in metrics:
        registry.get("metric", name, path="--metric")
    if len(set(metrics)) != len(metrics):
        raise GankitError(f"--metric: each metric once, got {', '.join(metrics)}")
    registry.get("feature_extractor", extractor, path="--extractor")

    sections: dict[str, dict[str, Any]] = {"extractor": {"type": extractor}}
    sections.update({m: {"type": m} for m in metrics})
    for item in overrides:
        key, text = split_override(item) or ("", "")
        head, dot, rest = key.partition(".")
        if not key or not dot or not rest or "." in rest:
            raise GankitError(f"--set: expected extractor.KEY=VALUE or METRIC.KEY=VALUE "
                              f"(e.g. extractor.path=classifier.keras), got {item!r}")
        if head not in sections:
            raise GankitError(f"--set {key}: '{head}' is neither 'extractor' nor a --metric "
                              f"given{did_you_mean(head, sections)}; expected extractor.KEY "
                              f"or one of {', '.join(f'{m}.KEY' for m in metrics)}")
        sections[head][rest] = parse_yaml(text, source=f"--set {key}")
    spec = resolve(registry, "feature_extractor", sections.pop("extractor"), "extractor")
    built_extractor = _create(spec.with_absolute_paths(Path.cwd()), "extractor")
    built_metrics = [_create(resolve(registry, "metric", section, name), name)
                     for name, section in sections.items()]
    built_extractor.preflight()

    needs_real = any(m.needs_real for m in built_metrics) or nearest is not None
    if reference is None and needs_real:
        wanting = ", ".join([m.name for m in built_metrics if m.needs_real]
                            + (["--nearest"] if nearest is not None else []))
        raise GankitError(f"--reference is required for {wanting}: a folder of images or a "
                          f"recipe .yaml whose dataset to compare with")
    ref_source = _reference_source(reference, registry) if reference is not None and needs_real \
        else None
    held_source = None
    if nearest is not None and nearest.holdout is not None:
        if Path(nearest.holdout).expanduser().resolve() == Path(reference).expanduser().resolve():
            raise GankitError(f"--holdout {nearest.holdout} is the --reference itself: give "
                              f"real images the generator did not train on, or leave "
                              f"--holdout out to hold out a fifth of the reference")
        held_source = _reference_source(nearest.holdout, registry, flag="--holdout")
    src = _source(source, best, value_range, registry, use_ema, truncation)
    check_per_class(src, ref_source, built_extractor, built_metrics)
    if n is None and isinstance(src, GeneratorSource):
        n = DEFAULT_N
    for metric in built_metrics:
        each = 2 if metric.needs_real else 1  # a covariance needs 2 images; an accuracy 1
        if metric.needs_labels and n is not None \
                and n < each * len(src.class_names):
            raise GankitError(f"-n {n}: {metric.name} needs at least {each} generated "
                              f"image(s) of each of the {len(src.class_names)} classes; give "
                              f"-n {each * len(src.class_names)} or more")
    _check_counts(src, ref_source, built_metrics, n, reference_n)
    nearest_plan = None if nearest is None else \
        plan_nearest(nearest, src, ref_source, held_source, reference_n)
    out = None
    if json_path is not None:
        out = Path(json_path)
        refuse_owned_output(out, "--json")
        if out.is_dir() or not out.parent.is_dir():
            raise GankitError(f"--json {out}: cannot write there; name a file in an existing "
                              f"folder")
        _check_writable(out.parent, "--json")
    elif default_json and built_metrics and getattr(src, "run_dir", None) is not None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        out = RunDir(src.run_dir).evaluation_file(stamp)
        _check_writable(out.parent, "the result (RUN_DIR/evaluation-<time>.json; or give --json)")
    return EvaluationPlan(src, ref_source, built_extractor, built_metrics, n, reference_n,
                          seed, out, nearest_plan)


MAX_VALUE_RANGE = 1e6


def _check_value_range(value_range: Sequence[float]) -> None:
    """A generator's output range: two finite numbers, low below high, of a sane size."""
    low, high = (float(v) for v in value_range)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise GankitError(f"--value-range {low:g} {high:g}: both ends must be finite numbers "
                          f"(e.g. -1 1 for tanh, 0 1 for a sigmoid)")
    if not low < high:
        raise GankitError(f"--value-range {low:g} {high:g}: LOW must be below HIGH")
    if max(abs(low), abs(high)) > MAX_VALUE_RANGE:
        raise GankitError(f"--value-range {low:g} {high:g}: at most {MAX_VALUE_RANGE:g} in "
                          f"magnitude; a generator's pixels lie in a small range such as -1 1")


def _check_counts(src: ImageSource, ref: ImageSource | None, metrics: list[Metric],
                  n: int | None, reference_n: int | None) -> None:
    """What the image counts alone decide, before TensorFlow loads: a folder that holds
    fewer images than asked for, too few for a covariance, or for a metric's k or splits."""
    folders = [(src, "source", n, "-n")]
    if isinstance(ref, ImageFolderSource):
        folders.append((ref, "--reference", reference_n, "--reference-n"))
    counts: dict[str, int] = {}
    for source, what, wanted, flag in folders:
        if not isinstance(source, ImageFolderSource):
            if wanted is not None:
                counts[what] = wanted
            continue
        have = source.available()
        if wanted is not None and wanted > have:
            raise GankitError(f"{flag} {wanted}: the {what} folder {source.path} holds only "
                              f"{have} image(s)")
        count = wanted if wanted is not None else have
        source.check_files(count)
        counts[what] = count
    for metric in metrics:
        sets = ["source", *(["--reference"] if metric.needs_real else [])]
        known = {k: counts[k] for k in sets if k in counts}
        if not known:
            continue
        least_what, least = min(known.items(), key=lambda item: item[1])
        if metric.needs_real and least < 2:
            raise GankitError(f"{metric.name} fits a Gaussian to each set and needs at least 2 "
                              f"images in each; the {least_what} has {least}")
        k = metric.config.get("k")
        if isinstance(k, int) and least <= k:
            raise GankitError(f"{metric.name}: k is {k} but the {least_what} has {least} "
                              f"image(s); the k-th nearest neighbour needs more than k (lower "
                              f"it with --set {metric.name}.k=...)")
        splits = metric.config.get("splits")
        if isinstance(splits, int) and counts.get("source", splits) < splits:
            raise GankitError(f"{metric.name}: splits is {splits} but the source has "
                              f"{counts['source']} image(s); each split needs one or more")


def _check_writable(folder: Path, what: str) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise GankitError(f"cannot write {what} in {folder}: no permission or a read-only "
                          f"file system; choose another place with --json")


def _create(spec, path: str):
    try:
        return spec.create()
    except RecipeError as err:
        if err.path and not err.path.startswith(path):
            err.path = f"{path}.{err.path.split('.', 1)[-1]}"
        raise


def _reference_source(reference: str, registry: Any, flag: str = "--reference") -> ImageSource:
    path = Path(reference).expanduser()
    if path.suffix.lower() in (".yaml", ".yml") and path.is_file():
        # Only the dataset section matters: a file with just `dataset:` is enough.
        from gankit.plugin.registry import resolve
        from gankit.recipe.strict_yaml import load_raw

        raw = load_raw(path)
        if "dataset" not in raw:
            raise RecipeError(f"no 'dataset' section: {flag} takes a recipe whose dataset "
                              f"to compare with", source=str(path))
        spec = resolve(registry, "dataset", raw["dataset"], "dataset",
                       source=str(path)).with_absolute_paths(path.resolve().parent)
        try:
            dataset = spec.create()
        except RecipeError as err:
            err.source = err.source or str(path)
            raise
        return DatasetSource(dataset, f"dataset {spec.type} of {path.absolute()}")
    if not path.exists():
        raise GankitError(f"{flag}: {path} does not exist; expected a folder of images "
                          f"or a recipe .yaml whose dataset to use")
    if not path.is_dir():
        raise GankitError(f"{flag}: {path} is neither a folder of images nor a recipe "
                          f".yaml")
    return ImageFolderSource(path, what=f"{flag} folder")


def _source(source: str, best: bool, value_range: Sequence[float] | None,
            registry: Any, use_ema: bool = True,
            truncation: float | None = None) -> ImageSource:
    path = Path(source).expanduser()
    if path.is_dir() and not RunDir.is_run(path):
        if best or value_range is not None or truncation is not None:
            flag = "--best" if best else "--value-range" if value_range is not None \
                else "--truncation"
            raise GankitError(f"{flag} is for a run directory or a .keras generator; {path} is "
                              f"a folder of images")
        return ImageFolderSource(path, what="source folder")
    return GeneratorSource(path, value_range=tuple(value_range) if value_range else None,
                           best=best, registry=registry, use_ema=use_ema,
                           truncation=truncation)


def evaluate(source: str | os.PathLike, metrics: Sequence[str] = ("fid",), *,
             reference: str | os.PathLike | None = None, extractor: str = "inception_v3",
             overrides: Iterable[str] = (), n: int | None = None,
             reference_n: int | None = None, seed: int = 0, best: bool = False,
             use_ema: bool = True, value_range: Sequence[float] | None = None,
             batch_size: int = 64, cache: bool = True, progress: bool = False,
             json_path: str | None = None, truncation: float | None = None
             ) -> EvaluationResult:
    """Score ``source`` (a run directory, a ``.keras`` generator or a folder of images) with
    ``metrics`` against ``reference``, as ``gankit evaluate`` does; the result's
    ``values`` maps each value's name to its number. With ``json_path``, also written there
    (a run directory's ``evaluation-<time>.json`` is written only by the command). With
    ``truncation``, the generator's latents are truncated (``gankit evaluate --truncation``).

    Raises:
        GankitError: one line naming the argument, before TensorFlow loads where the input
            alone decides it.
    """
    from gankit.app.train import plugins

    plan = plan_evaluation(str(source), list(metrics), reference=None if reference is None
                           else str(reference), extractor=extractor, overrides=overrides, n=n,
                           reference_n=reference_n, seed=seed, best=best,
                           value_range=value_range, json_path=json_path, default_json=False,
                           registry=plugins().registry, use_ema=use_ema,
                           truncation=truncation)
    result = _score(plan.source, plan.reference, plan.extractor, plan.metrics, plan.n,
                    plan.seed, reference_n=plan.reference_n, batch_size=batch_size,
                    cache=cache, progress=progress)
    if plan.json_path is not None:
        from gankit.util import atomic

        atomic.write_text(plan.json_path, result.to_json())
    return result


def check_memorisation(source: str | os.PathLike, reference: str | os.PathLike,
                       k: int = 4, *, holdout: str | os.PathLike | None = None,
                       rows: int | None = None, n: int | None = None,
                       out: str | os.PathLike | None = None, extractor: str = "inception_v3",
                       overrides: Iterable[str] = (), reference_n: int | None = None,
                       seed: int = 0, best: bool = False, use_ema: bool = True,
                       value_range: Sequence[float] | None = None, batch_size: int = 64,
                       cache: bool = True, progress: bool = False,
                       truncation: float | None = None) -> NearestResult:
    """The memorisation check of ``gankit evaluate SOURCE --nearest K``: each of ``n``
    generated images' ``k`` nearest images of ``reference`` (what the generator trained on)
    in the extractor's features and in pixels, against held-out real images' (``holdout``,
    else a random fifth of ``reference``). The panel and its numbers are written to
    ``out`` and the ``.json`` beside it (default for a run directory:
    ``RUN_DIR/nearest.png``); the result's ``summary`` holds the numbers.

    Raises:
        GankitError: one line naming the argument, before TensorFlow loads where the input
            alone decides it.
    """
    from gankit.app.train import plugins

    request = NearestRequest(k, rows, n, None if holdout is None else str(holdout),
                             None if out is None else str(out))
    plan = plan_evaluation(str(source), [], reference=str(reference), extractor=extractor,
                           overrides=overrides, reference_n=reference_n, seed=seed, best=best,
                           value_range=value_range, registry=plugins().registry,
                           use_ema=use_ema, nearest=request, truncation=truncation)
    return run_nearest(plan.nearest, plan.source, plan.reference, plan.extractor, seed=seed,
                       reference_n=reference_n, batch_size=batch_size, cache=cache,
                       progress=progress)
