"""What a run directory owns, and the check that keeps other commands' outputs off it.

A run directory's files are written by the run (and by ``gankit evaluate``, which keeps its
results there). Any command that takes an output path (``--out`` of ``report``, ``sample``,
``evaluate``, ``train-classifier``, ...) asks :func:`refuse_owned_output` first, so that
``gankit report RUN --out RUN/recipe.yaml`` is one line and exit 2, not a run that can no
longer be resumed. New files beside the run's own (``RUN/my_grid.png``,
``RUN/samples/sample_seed0.png``) are allowed.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from gankit.errors import GankitError
from gankit.rundir import generators
from gankit.rundir.lock import LOCK_FILE

__all__ = ["OWNED_NAMES", "OWNED_PATTERNS", "owning_run", "owned_name", "refuse_owned_output"]

OWNED_NAMES = frozenset({
    "recipe.yaml", "run.json", "losses.csv", LOCK_FILE, generators.GENERATOR,
    generators.GENERATOR_EMA, "checkpoints", "best", "snapshots", "tensorboard",
})
"""Top-level entries of a run directory that only the run writes (files or folders)."""

OWNED_PATTERNS = ("evaluation-*.json", "nearest.png", "nearest.json", "*.bak-*", ".tmp-*",
                  "samples/grid_*.png", "samples/generated_*.png", "samples/real_*.png")
"""Relative paths, as glob patterns, that the run or ``gankit evaluate`` writes."""


def owning_run(path: str | Path) -> Path | None:
    """The run directory that ``path`` is in or is (the nearest folder above it that holds a
    recipe.yaml and a run.json), after links are resolved; None if there is none."""
    target = Path(os.path.abspath(path))
    try:
        target = target.parent.resolve() / target.name
    except (OSError, RuntimeError):
        pass
    for folder in (target, *target.parents):
        if (folder / "recipe.yaml").is_file() and (folder / "run.json").is_file():
            return folder
    return None


def owned_name(path: str | Path) -> tuple[Path, str] | None:
    """(run directory, relative path) if ``path`` names something a run owns, else None.

    The run directory itself counts as owned (relative path ``.``)."""
    target = Path(os.path.abspath(path))
    try:
        target = target.parent.resolve() / target.name
        if target.is_symlink():
            target = target.resolve()
    except (OSError, RuntimeError):
        pass
    run = owning_run(target)
    if run is None:
        return None
    relative = target.relative_to(run) if target != run else Path(".")
    parts = relative.parts
    if not parts:
        return run, "."
    if parts[0] in OWNED_NAMES:
        return run, relative.as_posix()
    text = relative.as_posix()
    if any(fnmatch.fnmatchcase(text, pattern) for pattern in OWNED_PATTERNS):
        return run, text
    if len(parts) == 1 and parts[0] == "samples":
        return run, text
    return None


def refuse_owned_output(path: str | Path, flag: str = "--out") -> None:
    """Raise a one-line GankitError if ``path`` would overwrite something a run owns.

    Raises:
        GankitError: ``"--out RUN/recipe.yaml is the run's own file; ..."``.
    """
    owned = owned_name(path)
    if owned is None:
        return
    run, relative = owned
    what = "the run directory itself" if relative == "." else f"the run's own {relative}"
    raise GankitError(f"{flag} {path} is {what} (run directory {run}); gankit does not "
                      f"overwrite a run's files: give a new file name")
