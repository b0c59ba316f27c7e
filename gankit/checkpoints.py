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
from typing import Any, Iterable, Mapping

import numpy as np

from gankit.errors import TrainingError

FORMAT_VERSION = 1
_NAME = re.compile(r"^ckpt-(\d{8})$")
_TMP = ".tmp-"  # prefix of every folder that is not (or no longer) a complete checkpoint

PAUSE_ENV = "GANKIT_TEST_PAUSE_IN_CHECKPOINT_WRITE"
"""Test-only: set to a step number, the write of that step's checkpoint stops for an hour
after ``state.npz`` (before ``meta.json`` and the rename), so a test can SIGKILL it there."""


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
                if p.name.startswith(_TMP):
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
        tmp = self.directory / f"{_TMP}ckpt-{step:08d}-{os.getpid()}"
        replaced = self.directory / f"{_TMP}old-{final.name}-{os.getpid()}"
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
            if os.environ.get(PAUSE_ENV) == str(step):
                time.sleep(3600)
            info = {"format": FORMAT_VERSION, "step": step, "created": time.time(),
                    "groups": {g: len(v) for g, v in state.items()},
                    "state_bytes": (tmp / "state.npz").stat().st_size, **meta}
            with open(tmp / "meta.json", "w") as f:
                json.dump(info, f, indent=1, default=str)
                f.flush()
                os.fsync(f.fileno())
            if final.exists():  # a re-run of the same step after a resume
                # Renamed out of the way first, so a kill from here on leaves either it or
                # the new one complete, never a half-deleted folder under a checkpoint name.
                os.replace(final, replaced)
            os.replace(tmp, final)
            _fsync_dir(self.directory)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if replaced.exists() and not final.exists():
                try:
                    os.replace(replaced, final)
                except OSError:
                    pass
            kept = self.steps()
            intact = f"; the previous checkpoint (step {kept[-1]}) is intact" if kept else ""
            raise TrainingError(f"could not write checkpoint {final}: "
                                f"{exc.strerror or exc}{intact}") from None
        for old in self.steps()[:-self.keep]:
            self._discard(old)
        self.clean_leftovers()
        return final

    def _discard(self, step: int) -> None:
        # A rename first: a kill during the deletion leaves only a .tmp- folder behind.
        doomed = self.directory / f"{_TMP}old-{self.path(step).name}-{os.getpid()}"
        try:
            os.replace(self.path(step), doomed)
        except OSError:
            return
        shutil.rmtree(doomed, ignore_errors=True)

    def load(self, step: int, groups: Iterable[str] | None = None) -> Checkpoint:
        """Load and verify the checkpoint of ``step``.

        Args:
            step: which checkpoint.
            groups: load only these groups (e.g. ``["generator"]``); default: all.

        Raises:
            ValueError: if it is incomplete or corrupt (the message says how).
        """
        path = self.path(step)
        try:
            meta = json.loads((path / "meta.json").read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"unreadable meta.json ({exc})") from None
        if not isinstance(meta, dict) or not isinstance(meta.get("groups"), dict) \
                or meta.get("format") != FORMAT_VERSION or meta.get("step") != step:
            raise ValueError("meta.json does not describe this checkpoint")
        npz = path / "state.npz"
        try:
            if npz.stat().st_size != meta.get("state_bytes"):
                raise ValueError(f"state.npz has {npz.stat().st_size} bytes, "
                                 f"expected {meta.get('state_bytes')}")
            state: dict[str, list[np.ndarray]] = {}
            with np.load(npz, allow_pickle=False) as data:
                for group, count in meta["groups"].items():
                    if groups is None or group in groups:
                        state[group] = [data[f"{group}/{i:05d}"] for i in range(count)]
        except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise ValueError(f"corrupt state.npz ({exc})") from None
        return Checkpoint(path, step, state, meta)

    def load_latest(self, groups: Iterable[str] | None = None) -> Checkpoint | None:
        """The newest checkpoint that verifies, warning about each newer one skipped.

        Args:
            groups: load only these groups; default: all.

        Returns None if there are no checkpoints at all.

        Raises:
            TrainingError: if there are checkpoints but none of them verifies.
        """
        steps = self.steps()
        problems = []
        for step in reversed(steps):
            try:
                ckpt = self.load(step, groups)
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
