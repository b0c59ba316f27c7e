"""Atomic, self-checking checkpoints of a run's complete training state.

A checkpoint is a folder ``ckpt-<step>`` holding ``state.npz`` (every variable, grouped) and
``meta.json`` (step, recipe digest, sizes). It is written under a temporary name and renamed
into place only when complete, so a killed write never leaves a folder that would be loaded;
the zip format's CRC-32 catches a file corrupted later.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from gankit.errors import TrainingError

FORMAT_VERSION = 1
_NAME = re.compile(r"^ckpt-(\d{8})$")


class CheckpointWarning(UserWarning):
    """A checkpoint was skipped (corrupt or incomplete) in favour of an older one."""


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint."""

    path: Path
    step: int
    state: dict[str, list[np.ndarray]]
    meta: dict[str, Any]


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class CheckpointStore:
    """The checkpoints of one run directory.

    Args:
        directory: where ``ckpt-*`` folders live (created if missing).
        keep: how many of the newest checkpoints to keep.
    """

    def __init__(self, directory: str | Path, keep: int = 3) -> None:
        self.directory = Path(directory)
        self.keep = keep

    def steps(self) -> list[int]:
        """Steps of the complete checkpoints present, oldest first."""
        if not self.directory.is_dir():
            return []
        found = [int(m.group(1)) for p in self.directory.iterdir()
                 if (m := _NAME.match(p.name)) and p.is_dir()]
        return sorted(found)

    def path(self, step: int) -> Path:
        return self.directory / f"ckpt-{step:08d}"

    def clean_leftovers(self) -> list[Path]:
        """Remove temporary folders left by writes that were killed; return them."""
        removed = []
        if self.directory.is_dir():
            for p in self.directory.iterdir():
                if p.name.startswith(".tmp-"):
                    shutil.rmtree(p, ignore_errors=True)
                    removed.append(p)
        return removed

    def save(self, step: int, state: Mapping[str, list[np.ndarray]],
             meta: Mapping[str, Any]) -> Path:
        """Write a checkpoint for ``step`` atomically, then prune old ones.

        Raises:
            TrainingError: if it cannot be written (disk full, no permission); the earlier
                checkpoints are left intact.
        """
        final = self.path(step)
        tmp = self.directory / f".tmp-ckpt-{step:08d}-{os.getpid()}"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir()
            arrays = {f"{group}/{i:05d}": np.asarray(v)
                      for group, values in state.items() for i, v in enumerate(values)}
            with open(tmp / "state.npz", "wb") as f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            info = {"format": FORMAT_VERSION, "step": step, "created": time.time(),
                    "groups": {g: len(v) for g, v in state.items()},
                    "state_bytes": (tmp / "state.npz").stat().st_size, **meta}
            with open(tmp / "meta.json", "w") as f:
                json.dump(info, f, indent=1, default=str)
                f.flush()
                os.fsync(f.fileno())
            if final.exists():  # a re-run of the same step after a resume
                shutil.rmtree(final)
            os.replace(tmp, final)
            _fsync_dir(self.directory)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            kept = self.steps()
            intact = f"; the previous checkpoint (step {kept[-1]}) is intact" if kept else ""
            raise TrainingError(f"could not write checkpoint {final}: "
                                f"{exc.strerror or exc}{intact}") from None
        for old in self.steps()[:-self.keep]:
            shutil.rmtree(self.path(old), ignore_errors=True)
        return final

    def load(self, step: int) -> Checkpoint:
        """Load and verify the checkpoint of ``step``.

        Raises:
            ValueError: if it is incomplete or corrupt (the message says how).
        """
        path = self.path(step)
        try:
            meta = json.loads((path / "meta.json").read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"unreadable meta.json ({exc})") from None
        if meta.get("format") != FORMAT_VERSION or meta.get("step") != step:
            raise ValueError("meta.json does not describe this checkpoint")
        npz = path / "state.npz"
        try:
            if npz.stat().st_size != meta.get("state_bytes"):
                raise ValueError(f"state.npz has {npz.stat().st_size} bytes, "
                                 f"expected {meta.get('state_bytes')}")
            state: dict[str, list[np.ndarray]] = {}
            with np.load(npz, allow_pickle=False) as data:
                for group, count in meta["groups"].items():
                    state[group] = [data[f"{group}/{i:05d}"] for i in range(count)]
        except (OSError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            raise ValueError(f"corrupt state.npz ({exc})") from None
        return Checkpoint(path, step, state, meta)

    def load_latest(self) -> Checkpoint | None:
        """The newest checkpoint that verifies, warning about each newer one skipped.

        Returns None if there are no checkpoints at all.

        Raises:
            TrainingError: if there are checkpoints but none of them verifies.
        """
        steps = self.steps()
        problems = []
        for step in reversed(steps):
            try:
                ckpt = self.load(step)
            except ValueError as exc:
                problems.append(f"{self.path(step).name}: {exc}")
                warnings.warn(f"checkpoint {self.path(step)} is unusable ({exc}); "
                              f"falling back to the previous one", CheckpointWarning, stacklevel=2)
                continue
            return ckpt
        if steps:
            raise TrainingError(f"no usable checkpoint in {self.directory}: "
                                + "; ".join(problems))
        return None
