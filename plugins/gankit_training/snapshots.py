"""The ``snapshot`` callback: the generator as it was after some minutes or steps of training,
kept for later comparison (FID after 5, 10 and 15 minutes: docs/frog_fast.md)."""

from __future__ import annotations

import json
import time

from gankit.errors import RecipeError, TrainingError
from gankit.interfaces import Callback
from gankit.params import Param
from gankit.util import atomic

MAX_MARKS = 1000


class Snapshot(Callback):
    """Saves the generator (and its EMA) at given minutes of wall-clock and at given steps.

    ``snapshots/minute_5/`` holds ``generator.keras`` (``generator_ema.keras`` with an
    ``ema`` section) and ``snapshot.json`` (the step, the seconds since the session began,
    and the mark); ``snapshots/step_1000/`` the same for a step. Minutes count from the
    start of the session, as ``train.max_minutes`` does (compilation included), and a
    minute's snapshot is taken at the end of the first compiled call that ends after it
    (``train.steps_per_call: auto`` keeps calls near a second long). A step's snapshot is
    that exact step. A resumed session counts its minutes afresh, from its own start, and
    keeps them apart from the first session's: a session resumed at step 4000 writes
    ``minute_5-from_step_4000/`` (``-2``, ``-3``, ... appended if that too exists), so no
    minute snapshot is ever replaced. A step's snapshot written again by a resume is the
    same step's generator (resumes are exact) and replaces the earlier copy. Each file is
    written atomically.

    Score one with ``gankit evaluate RUN/snapshots/minute_5/generator_ema.keras ...``.
    """

    name = "snapshot"
    params = {
        "minutes": Param(list, [], item_type=float, min=0.0, min_exclusive=True, max=1.0e7,
                         doc="minutes of wall-clock after which to save the generator"),
        "steps": Param(list, [], item_type=int, min=1, max=10 ** 9,
                       doc="steps after which to save the generator"),
    }

    def __init__(self, **config):
        super().__init__(**config)
        minutes, steps = self.config["minutes"], self.config["steps"]
        if not minutes and not steps:
            raise RecipeError("give the minutes or the steps to save the generator at "
                              "(minutes: [5, 10], steps: [1000])", path="minutes")
        for key, marks in (("minutes", minutes), ("steps", steps)):
            if len(marks) > MAX_MARKS:
                raise RecipeError(f"at most {MAX_MARKS} marks, got {len(marks)}", path=key)
            if len(set(marks)) != len(marks):
                raise RecipeError(f"a mark is listed twice: {marks}", path=key)
            if any(_label(key, a) == _label(key, b) for a, b in zip(sorted(marks),
                                                                   sorted(marks)[1:])):
                raise RecipeError(f"two marks round to the same folder name: {marks}", path=key)
        self._minutes = sorted(minutes)
        self._steps = set(steps)

    def check_recipe(self, recipe, path: str) -> None:
        late = [s for s in self.config["steps"] if s > recipe.train.steps]
        if late:
            raise RecipeError(f"step {late[0]} is after the last step (train.steps="
                              f"{recipe.train.steps}), so it would never be saved",
                              path=f"{path}.steps")

    def needs_boundary(self, step: int) -> bool:
        return step in self._steps

    def on_train_begin(self, run) -> None:
        super().on_train_begin(run)
        self._began = run.began if run.began is not None else time.perf_counter()
        self._pending = list(self._minutes)  # minute marks not yet saved, in order

    def on_step_end(self, step: int, logs: dict[str, float]) -> None:
        if step in self._steps:
            self._save(f"step_{step}", step, {"step_mark": step})
        if not self._pending or not self.run.at_call_end:
            return  # the models are at this step only after the call's last step
        elapsed = time.perf_counter() - self._began
        due = [m for m in self._pending if elapsed >= m * 60.0]
        if due:
            self._pending = self._pending[len(due):]
            # several marks passed in one call share one state: save it under the latest
            label = _label("minutes", due[-1])
            if self.run.start_step:  # a resumed session: apart from the first one's minutes
                label = f"{label}-from_step_{self.run.start_step}"
            label = _unused(self.run.run_dir.snapshots, label)  # never over an earlier one
            self._save(label, step, {"minute_mark": due[-1], "also_for_minutes": due[:-1]})

    def _save(self, label: str, step: int, mark: dict) -> None:
        run = self.run
        folder = run.run_dir.snapshots / label
        try:
            folder.mkdir(parents=True, exist_ok=True)
            ema = run.session.ema
            run.run_dir.save_generators(run.session.generator,
                                        ema.shadow if ema is not None else None, folder)
            info = {"step": step, "seconds": round(time.perf_counter() - self._began, 3),
                    "session_start_step": run.start_step, **mark}
            atomic.write_text(folder / "snapshot.json", json.dumps(info, indent=1) + "\n")
        except OSError as exc:
            raise TrainingError(f"could not write the snapshot {folder}: "
                                f"{exc.strerror or exc}") from None
        run.message(f"snapshot {label} (step {step}) saved in {folder}")


def _unused(folder, label: str) -> str:
    """``label``, or ``label-2``, ``label-3``, ... whichever names no folder yet."""
    name, n = label, 1
    while (folder / name).exists():
        n += 1
        name = f"{label}-{n}"
    return name


def _label(key: str, mark) -> str:
    if key == "steps":
        return f"step_{mark}"
    return f"minute_{mark:g}".replace(".", "_")
