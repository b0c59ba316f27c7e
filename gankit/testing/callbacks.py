"""The conformance check of callbacks, run in a real (tiny) training run and its resume."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from gankit.interfaces import Callback
from gankit.testing.conformance import (
    CheckRun,
    ConformanceReport,
    check_config_round_trip,
    require_kind,
)

CALLBACK_CHECKS = ("interface", "config", "train", "weights", "logs", "resume")
"""The checks of :func:`check_callback`, in the order run."""

TINY_CALLBACK_RECIPE = {
    "name": "callback-check",
    "generator": {"type": "frog_dcgan", "latent_dim": 4, "height": 24, "width": 24,
                  "base_filters": 4, "filters": 4},
    "discriminator": {"type": "frog_dcgan", "height": 24, "width": 24, "filters": 4},
    "dataset": {"type": "image_folder", "path": None, "height": 24, "width": 24},
    "loss": "bce",
    "train": {"steps": 3, "batch_size": 2, "seed": 0, "sample_every": 100, "grid_every": 100,
              "grid_size": 2, "checkpoint_every": 100, "precision": "float32",
              "xla": "off", "steps_per_call": 1},
}
"""The run :func:`check_callback` trains by default: the article's models, tiny, on eight 24x24
images (written to a temporary folder), three steps, then a resume to five."""


def check_callback(callback: Callback, *, recipe: Mapping[str, Any] | None = None,
                   steps: int = 3, skip: Iterable[str] = ()) -> ConformanceReport:
    """Check that a callback does its side work in a real training run without changing it.

    The callback is handed to :func:`gankit.train` (as ``callbacks=[...]``, so it runs where a
    recipe's ``callbacks`` do, after the NaN guard and before the loss log), then a copy made
    from its config to :func:`gankit.resume`, as a resumed run rebuilds it from the recipe.
    Checks, in order (names for ``skip``):

    - ``interface``: a :class:`gankit.Callback`; ``log_columns()`` is a list of distinct
      strings.
    - ``config``: ``get_config()``/``from_config()`` round trip (see :func:`check_config`).
    - ``train``: the run of ``steps`` steps completes with the callback in it; each hook
      runs (``on_train_begin`` first, ``on_close`` last); every value it adds to ``logs``
      is one number (the trainer makes it a Python float) and ends up in ``losses.csv``. A
      value added on some steps only that ``log_columns()`` does not name is noted: it is
      written from the step it first appears, with the earlier rows empty; declare it to
      have its column from the start.
    - ``weights``: no weight of the generator, the discriminator or the EMA generator
      changes inside the callback's ``on_step_end`` (training is the strategy's work; a
      callback that adapts an augmenter changes the augmenter's ``state()``, which is not
      checked).
    - ``logs``: no value the step logged before the callback is changed or removed by it
      (``d_loss`` is the loss that was trained on; a callback adds its own names).
    - ``resume``: a callback rebuilt from the config runs in :func:`gankit.resume` of the
      same run for two more steps, and the run completes.

    Args:
        callback: the component under test, configured for a short run (e.g. ``every: 1``).
        recipe: a raw recipe mapping to train instead of :data:`TINY_CALLBACK_RECIPE` (for a
            callback that needs a particular part, such as an augmenter with state); its
            ``dataset.path``, if None, gets the temporary image folder.
        steps: the steps of the first run (the resume adds two).
        skip: names of checks not to run.

    Returns:
        A :class:`ConformanceReport`.

    Raises:
        ConformanceError: naming the failed check and the problem.
        TypeError: if ``callback`` is not a :class:`gankit.Callback` instance.
    """
    require_kind(callback, Callback, "check_callback")
    run = CheckRun(callback, CALLBACK_CHECKS, skip)
    state: dict[str, Any] = {}
    folder = tempfile.TemporaryDirectory(prefix="gankit-check-callback-")

    def interface():
        columns = callback.log_columns()
        if (not isinstance(columns, list) or not all(isinstance(c, str) for c in columns)
                or len(set(columns)) != len(columns)):
            run.fail(f"log_columns() must return a list of distinct strings, got {columns!r}")

    def config():
        check_config_round_trip(callback, run.fail)

    def train():
        spies = _Spies(callback)
        state["spies"] = spies
        state["raw"] = raw = _recipe(recipe, Path(folder.name), steps)
        state["run_dir"] = run_dir = Path(folder.name) / "run"
        result = _quietly(lambda: _train(raw, run_dir, spies))
        if result.exit_code != 0 or result.step != steps:
            run.fail(f"the run with the callback stopped at step {result.step} of {steps} "
                     f"(status {result.status!r}){spies.hint()}")
        spies.check_hooks(run, steps)
        spies.check_added(run, run_dir / "losses.csv")

    def weights():
        spies = _need(state, "spies", run)
        if spies.weight_changes:
            step, what = spies.weight_changes[0]
            run.fail(f"on_step_end({step}) changed the weights of {what}: a callback must "
                     f"not train or edit the models (write a Strategy, or keep what it "
                     f"adapts in an augmenter's state())")

    def logs():
        spies = _need(state, "spies", run)
        if spies.log_changes:
            step, name, before, after = spies.log_changes[0]
            change = "removed it" if after is None else f"changed it to {after!r}"
            run.fail(f"on_step_end({step}) received {name}={before!r} in logs and {change}: "
                     f"a callback may add its own names to logs, never change or remove the "
                     f"step's values")

    def resume():
        raw, run_dir = _need(state, "raw", run), _need(state, "run_dir", run)
        again = type(callback).from_config(callback.get_config())
        spies = _Spies(again)
        result = _quietly(lambda: _resume(run_dir, steps + 2, spies))
        if result.exit_code != 0 or result.step != steps + 2:
            run.fail(f"gankit.resume with the callback rebuilt from its config stopped at step "
                     f"{result.step} of {steps + 2} (status {result.status!r}){spies.hint()}")
        del raw

    try:
        return run.run({"interface": interface, "config": config, "train": train,
                        "weights": weights, "logs": logs, "resume": resume})
    finally:
        folder.cleanup()


def _need(state: dict, key: str, run: CheckRun) -> Any:
    if key not in state:
        run.fail("needs the 'train' check, which was skipped")
    return state[key]


def _recipe(recipe: Mapping[str, Any] | None, folder: Path, steps: int) -> dict:
    import copy

    from gankit.testing.data import write_image_folder

    raw = copy.deepcopy(dict(recipe if recipe is not None else TINY_CALLBACK_RECIPE))
    raw.setdefault("train", {})["steps"] = steps
    dataset = raw.get("dataset")
    if isinstance(dataset, dict) and dataset.get("path", "") is None:
        dataset["path"] = str(write_image_folder(folder / "images", n=8,
                                                 height=dataset.get("height", 8),
                                                 width=dataset.get("width", 8)))
    return raw


def _quietly(fn):
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return fn()


def _train(raw: dict, run_dir: Path, spies: _Spies):
    from gankit.app.train import train

    return train(raw, out=run_dir, quiet=True, callbacks=spies.callbacks())


def _resume(run_dir: Path, steps: int, spies: _Spies):
    from gankit.app.train import resume

    return resume(run_dir, overrides=[f"train.steps={steps}"], quiet=True,
                  callbacks=spies.callbacks())


class _Spies:
    """A callback before and one after the checked one, comparing what it changed."""

    def __init__(self, callback: Callback) -> None:
        self.callback = callback
        self.hooks: list[str] = []
        self.weight_changes: list[tuple[int, str]] = []
        self.log_changes: list[tuple[int, str, Any, Any]] = []
        self.added: dict[str, list[int]] = {}
        self.bad_values: list[tuple[int, str, Any]] = []
        self._before: dict[str, Any] = {}
        self._weights: dict[str, list[np.ndarray]] = {}
        spies = self

        class Before(Callback):
            name = "check-before"

            def needs_boundary(self, step):
                return False

            def on_step_end(self, step, logs):
                spies._before = dict(logs)
                spies._weights = spies._snapshot(self.run)

        class After(Callback):
            name = "check-after"

            def needs_boundary(self, step):
                return False

            def on_step_end(self, step, logs):
                spies._compare(self.run, step, logs)

        self._spy_callbacks = (Before(), After())
        self._wrap(callback)

    def callbacks(self) -> list[Callback]:
        return [self._spy_callbacks[0], self.callback, self._spy_callbacks[1]]

    def _wrap(self, callback: Callback) -> None:
        for hook in ("on_train_begin", "on_step_end", "on_train_end", "on_close"):
            original = getattr(callback, hook)

            def recorded(*args, _original=original, _hook=hook):
                self.hooks.append(_hook)
                return _original(*args)

            setattr(callback, hook, recorded)

    def _snapshot(self, run) -> dict[str, list[np.ndarray]]:
        session = run.session
        models = {"the generator": session.generator, "the discriminator": session.discriminator}
        if getattr(session, "ema", None) is not None:
            models["the EMA generator"] = session.ema.shadow
        return {what: [np.array(w) for w in model.get_weights()] for what, model in models.items()}

    def _compare(self, run, step: int, logs: Mapping[str, Any]) -> None:
        after = self._snapshot(run)
        for what, weights in self._weights.items():
            if any(not np.array_equal(a, b, equal_nan=True)
                   for a, b in zip(weights, after.get(what, []))):
                self.weight_changes.append((step, what))
        for name, value in self._before.items():
            now = logs.get(name)
            if name not in logs or not _same(now, value):
                self.log_changes.append((step, name, value, now))
        for name in logs:
            if name not in self._before:
                self.added.setdefault(name, []).append(step)
                value = logs[name]
                if not isinstance(value, (int, float)) or isinstance(value, bool) or \
                        not math.isfinite(float(value)):
                    self.bad_values.append((step, name, value))

    def check_hooks(self, run: CheckRun, steps: int) -> None:
        if not self.hooks or self.hooks[0] != "on_train_begin":
            run.fail(f"on_train_begin was not the first hook called ({self.hooks[:3]}); an "
                     f"override must keep the signature on_train_begin(self, run)")
        if self.hooks[-1] != "on_close":
            run.fail("on_close was not called last")
        if self.hooks.count("on_step_end") != steps:
            run.fail(f"on_step_end ran {self.hooks.count('on_step_end')} times in {steps} steps")

    def check_added(self, run: CheckRun, losses: Path) -> None:
        if self.bad_values:
            step, name, value = self.bad_values[0]
            run.fail(f"on_step_end({step}) logged {name}={value!r}: logged values must be "
                     f"finite Python floats (float(tensor), not the tensor)")
        import csv

        with open(losses, newline="", encoding="utf-8") as f:
            header = next(csv.reader(f))
        declared = set(self.callback.log_columns())
        for name, steps in self.added.items():
            if name not in header:
                run.fail(f"{name!r}, logged at step {steps[0]}, is not in losses.csv")
            if name not in declared and steps[0] != 1:
                run.note(f"{name!r} is logged from step {steps[0]} on and is not in "
                         f"log_columns(): losses.csv gets its column when it first appears; "
                         f"return it from log_columns() to have it from the start")

    def hint(self) -> str:
        return f" (hooks called: {', '.join(dict.fromkeys(self.hooks))})" if self.hooks else ""


def _same(a: Any, b: Any) -> bool:
    try:
        fa, fb = float(a), float(b)
    except (TypeError, ValueError):
        return a == b
    return fa == fb or (math.isnan(fa) and math.isnan(fb))
