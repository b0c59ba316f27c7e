"""Quality measured during training: the recipe's ``metrics`` section as a callback.

Every ``metrics.every`` steps (and at the last step) the generator (its EMA copy when the
recipe has one) makes ``metrics.samples`` images from the same latents each time; the
extractor's features of those are compared with the training data's (computed once and
cached, see ``gankit.evaluation.cache``). The values go to ``losses.csv`` (their columns are
empty on other steps), TensorBoard and the progress output; the best generator so far by
``metrics.best`` is kept in ``RUN_DIR/best/`` and never pruned.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import warnings
from pathlib import Path

from gankit.errors import GankitError
from gankit.interfaces.metric_names import split_per_class, value_names
from gankit.rundir.generators import save_generators
from gankit.rundir.run_dir import RunDir, RunDirWarning
from gankit.training.callbacks import CoreCallback
from gankit.util import atomic
from gankit.util.safe_read import UnsafeFileError, finite_number, read_json


class MetricsCallback(CoreCallback):
    """Computes the recipe's metrics every ``every`` steps and keeps the best generator.

    Args:
        recipe: the validated recipe (its ``metrics`` section must be set).
    """

    def __init__(self, recipe) -> None:
        super().__init__()
        from gankit.plugin.manager import create
        from gankit.plugin.registry import using_registry

        self.settings = recipe.metrics
        with using_registry(recipe.registry):
            self.extractor = create("feature_extractor", self.settings.extractor,
                                    "metrics.extractor")
            self.metrics = [create("metric", m, f"metrics.use[{i}]")
                            for i, m in enumerate(self.settings.use)]
        self.class_names = None
        if any(m.needs_labels for m in self.metrics):
            self.class_names = recipe.create("dataset").class_names
        self._names = value_names(self.metrics, self.class_names)
        self.rank_name = self.settings.best or self._names[0][1]
        if self.rank_name not in [n for _, n in self._names]:
            valid = ", ".join(n for _, n in self._names)
            raise GankitError(f"metrics.best: '{self.rank_name}' is not a value the metrics "
                              f"give (they give: {valid})")
        owner = next(m for m, n in self._names if n == self.rank_name)
        self.lower_is_better = owner.lower_is_better
        self.best_value: float | None = None
        self.reference_source = None

    def log_columns(self) -> list[str]:
        return [name for _, name in self._names]

    def preflight(self, recipe) -> None:
        """Before the run directory is created or changed: the training data holds the
        ``reference_samples`` asked for (a run that cannot measure fails here, not after
        its directory was made and marked failed)."""
        from gankit.evaluation.sources import DatasetSource

        self.reference_source = DatasetSource.from_recipe(recipe)
        wanted, available = self.settings.reference_samples, self.reference_source.available()
        if wanted is not None and available is not None and available < wanted:
            raise GankitError(f"metrics.reference_samples is {wanted:,} but the training data "
                              f"holds {available:,} images; lower it, or leave it out (null: "
                              f"all of them)")

    def on_train_begin(self, run) -> None:
        super().on_train_begin(run)
        from gankit.evaluation.cache import ReferenceCache
        from gankit.evaluation.features import reference_features
        from gankit.evaluation.per_class import check_per_class
        from gankit.evaluation.sources import DatasetSource, GeneratorSource

        session = run.session
        model = session.ema.shadow if session.ema is not None else session.generator
        classes = session.parts.generator.num_classes
        names = run.recipe.create("dataset").class_names
        self.source = GeneratorSource(model, value_range=run.value_range, num_classes=classes,
                                      class_names=names if classes and names is not None
                                      and len(names) == classes else None)
        shown = ", ".join(n for _, n in self._names if split_per_class(n)[1] is None)
        if self.reference_source is None:  # preflight() was not called
            self.reference_source = DatasetSource.from_recipe(run.recipe)
        check_per_class(self.source, self.reference_source, self.extractor, self.metrics)
        cache = ReferenceCache()
        self.reference, cached, _ = reference_features(
            self.reference_source, self.extractor, self.settings.reference_samples,
            cache=cache, batch_size=self.settings.batch_size, progress=False,
            before_computing=lambda: run.message(
                f"metrics: computing the training data's features for {shown} (cached in "
                f"{cache.root} for later runs)"))
        if cached:
            run.message(f"metrics: the training data's features for {shown} come from the "
                        f"cache in {cache.root}")
        self.best_dir = RunDir(run.run_dir.path).best_dir
        saved = _read_best(self.best_dir)
        if saved is not None and saved.get("name") == self.rank_name:
            self.best_value = float(saved["value"])

    def needs_boundary(self, step: int) -> bool:  # evaluates the generator at its steps
        return step % self.settings.every == 0 or step == self.run.train.steps

    def on_step_end(self, step: int, logs: dict[str, float]) -> None:
        if step % self.settings.every and not self.run.is_final(step):
            return
        from gankit.evaluation.features import compute_features, compute_values

        t0 = time.perf_counter()
        fake = compute_features(self.source, self.extractor, self.settings.samples,
                                batch_size=self.settings.batch_size, seed=self.settings.seed,
                                progress=False)
        values = compute_values(self.metrics, fake, self.reference, self.settings.seed,
                                self.source, self.reference_source, self.extractor)
        logs.update({k: float(v) for k, v in values.items()})
        self._tensorboard(step, values)
        shown = " ".join(f"{k} {v:.4g}" for k, v in values.items()
                         if split_per_class(k)[1] is None)  # per-class values: csv, report
        self.run.message(f"step {step}: {shown} ({time.perf_counter() - t0:.1f} s)")
        value = float(values[self.rank_name])
        if math.isfinite(value) and (self.best_value is None or (
                value < self.best_value if self.lower_is_better else value > self.best_value)):
            self._save_best(step, value, values)
            self.best_value = value

    def _tensorboard(self, step: int, values: dict[str, float]) -> None:
        import tensorflow as tf

        with self.run.writer.as_default():
            for name, value in values.items():
                tf.summary.scalar(f"metrics/{name}", value, step=step)

    def _save_best(self, step: int, value: float, values: dict[str, float]) -> None:
        """Write ``best/`` (the generator, its EMA copy, best.json) as a whole: into a
        temporary folder first, then renamed over the previous best."""
        session, best = self.run.session, self.best_dir
        tmp = best.with_name(f".tmp-{best.name}-{os.getpid()}")
        old = best.with_name(f".tmp-{best.name}-old-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            save_generators(session.generator,
                            session.ema.shadow if session.ema is not None else None, tmp)
            info = {"step": step, "name": self.rank_name, "value": value,
                    "lower_is_better": self.lower_is_better, "values": values,
                    "protocol": dict(self.extractor.protocol()), "created": time.time()}
            atomic.write_text(tmp / RunDir.BEST_INFO, json.dumps(info, indent=1, default=str))
            atomic.swap_folder(tmp, best, aside=old)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)
        self.run.message(f"step {step}: new best {self.rank_name} {value:.4g}; saved in "
                         f"{self.best_dir}")


def _read_best(folder: Path) -> dict | None:
    """``best/best.json`` if it records a finite value; None (and a warning, if the file is
    there) otherwise, so that the next measured value becomes the best."""
    path = folder / RunDir.BEST_INFO
    try:
        data = read_json(path, expect=dict)
    except FileNotFoundError:
        return None
    except (OSError, UnsafeFileError) as exc:
        warnings.warn(f"{path} cannot be read ({exc}); the next measured value will "
                      f"replace best/", RunDirWarning, stacklevel=2)
        return None
    value = finite_number(data.get("value"))
    if value is None:
        warnings.warn(f"{path} records no finite value (value: "
                      f"{str(data.get('value'))[:40]}); the next measured value will "
                      f"replace best/", RunDirWarning, stacklevel=2)
        return None
    return {**data, "value": value}
