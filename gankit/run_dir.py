"""The run directory: where a run keeps its recipe, samples, losses, checkpoints and models.

::

    RUN_DIR/
      recipe.yaml          the resolved recipe (every default filled in)
      run.json             status, step, timings
      losses.csv           step, d_loss, g_loss, ... one row per step
      samples/             grid_<step>.png, generated_frog_<step>.png, real_frog_<step>.png
      checkpoints/         ckpt-<step>/ (state.npz + meta.json), newest N kept
      tensorboard/         TensorBoard event files
      generator.keras      the final generator, for keras.models.load_model
"""

from __future__ import annotations

import csv
import json
import os
import re
import time
from pathlib import Path
from typing import Any, Mapping

import yaml

from gankit.errors import GankitError, TrainingError


class RunDir:
    """Paths and small files of one run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.recipe_file = self.path / "recipe.yaml"
        self.status_file = self.path / "run.json"
        self.losses_file = self.path / "losses.csv"
        self.samples = self.path / "samples"
        self.checkpoints = self.path / "checkpoints"
        self.tensorboard = self.path / "tensorboard"
        self.generator_file = self.path / "generator.keras"

    @classmethod
    def default_path(cls, recipe_name: str, root: str | Path = "runs") -> Path:
        return Path(root) / f"{recipe_name}-{time.strftime('%Y%m%d-%H%M%S')}"

    def create(self) -> "RunDir":
        """Make the directory tree for a new run.

        Raises:
            GankitError: if it already holds a run, or cannot be created.
        """
        self.ensure_new()
        try:
            for folder in (self.path, self.samples, self.checkpoints):
                folder.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise GankitError(f"cannot create the run directory {self.path}: "
                              f"{exc.strerror or exc}; choose another with --out") from None
        return self

    def ensure_new(self) -> None:
        """Raise GankitError if the directory already holds something."""
        if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise GankitError(f"{self.path} already exists and is not empty; choose another "
                              f"--out, or continue that run with: gankit resume {self.path}")

    def check_existing(self) -> "RunDir":
        """Make sure this is a run directory that can be resumed."""
        if not self.recipe_file.is_file():
            raise GankitError(f"{self.path} is not a gankit run directory (no recipe.yaml)")
        return self

    def write_recipe(self, recipe: Mapping[str, Any]) -> None:
        write_text_atomic(self.recipe_file, yaml.safe_dump(dict(recipe), sort_keys=False))

    def write_status(self, **fields: Any) -> None:
        """Update ``run.json``.

        Raises:
            TrainingError: if it cannot be written (disk full, no permission).
        """
        current = self.read_status()
        current.update(fields, updated=time.time())
        try:
            write_text_atomic(self.status_file, json.dumps(current, indent=1))
        except OSError as exc:
            raise TrainingError(f"could not write {self.status_file}: "
                                f"{exc.strerror or exc}") from None

    def clean_leftovers(self) -> list[Path]:
        """Remove the temporary files of writes that were killed (not checkpoints); return them."""
        removed = []
        for folder in (self.path, self.samples):
            if not folder.is_dir():
                continue
            for p in folder.iterdir():
                if p.is_file() and _LEFTOVER.match(p.name):
                    p.unlink(missing_ok=True)
                    removed.append(p)
        return removed

    def read_status(self) -> dict[str, Any]:
        try:
            return json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            return {}


# The temporary names of write_text_atomic, images.save_png and Trainer._save_generator.
_LEFTOVER = re.compile(r"^\..+\.tmp\d+$|^\.tmp\d+-.+$")


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


class LossLog:
    """``losses.csv``: one row per step, flushed as written so a crash loses nothing.

    On resume the rows after the checkpoint's step are dropped, since those steps run again.
    """

    def __init__(self, path: Path, columns: list[str], resume_after: int | None = None) -> None:
        self.path = path
        self.columns = ["step", *columns]
        rows: list[list[str]] = []
        if resume_after is not None and path.is_file():
            with open(path, newline="") as f:
                reader = csv.reader(f)
                header = next(reader, None)
                if header == self.columns:
                    rows = [r for r in reader if r and r[0].isdigit() and int(r[0]) <= resume_after]
        # Rewritten through a temporary file, so a kill now cannot lose the kept rows.
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(self.columns)
            writer.writerows(rows)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        self._file = open(path, "a", newline="")
        self._writer = csv.writer(self._file)

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        self._writer.writerow([step, *(f"{metrics[c]:.6g}" for c in self.columns[1:])])
        self._file.flush()

    def close(self) -> None:
        self._file.close()
