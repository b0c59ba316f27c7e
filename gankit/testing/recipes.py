"""Running a recipe for a few steps inside a test, as ``gankit run`` does (through
:func:`gankit.app.train.train`, the function the command calls)."""

from __future__ import annotations

import contextlib
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence


@dataclass(frozen=True)
class RecipeRun:
    """The outcome of :func:`run_recipe`.

    Attributes:
        exit_code: what ``gankit run`` returned (0 on success).
        run_dir: the run directory it wrote.
        stdout, stderr: what it printed.
    """

    exit_code: int
    run_dir: Path
    stdout: str
    stderr: str


def run_recipe(recipe: str | Path, run_dir: str | Path, *, steps: int = 2,
               overrides: Sequence[str] = (), check: bool = True) -> RecipeRun:
    """Train ``recipe`` for ``steps`` steps into ``run_dir``, exactly as ``gankit run`` does.

    Args:
        recipe: the recipe file.
        run_dir: a run directory that does not exist yet.
        steps: overrides ``train.steps``.
        overrides: more ``key.path=VALUE`` overrides, as with ``--set``.
        check: raise if the run fails.

    Raises:
        AssertionError: with ``check``, if ``gankit run`` exits non-zero (the message holds
            what it printed on stderr).
    """
    from gankit.app.train import train
    from gankit.errors import GankitError

    args = ["run", str(recipe), "--out", str(run_dir), "--quiet", "--set", f"train.steps={steps}"]
    for item in overrides:
        args += ["--set", item]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = train(recipe, out=run_dir, quiet=True,
                         overrides=[f"train.steps={steps}", *overrides]).exit_code
        except GankitError as error:  # as the command reports it
            print(f"gankit: error: {error}", file=sys.stderr)
            code = error.exit_code
    result = RecipeRun(code, Path(run_dir), out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(f"gankit {' '.join(args)} exited with {code}:\n{result.stderr}")
    return result
