"""Atomic, self-checking checkpoints of a run's complete training state.

A checkpoint is a folder ``ckpt-<step>`` holding the state files (a ``tf.train.Checkpoint``
of every model, optimizer, EMA copy and the step counter, matched by name) and
``meta.json`` (step, recipe digest, every file's size). It is written under a temporary name
and renamed into place only when complete, so a killed write never leaves a folder that
would be loaded; TensorFlow's per-tensor CRC-32C and the recorded sizes catch a file
corrupted later, and loading falls back to the previous checkpoint with a warning.

This module does not import TensorFlow: the caller writes and restores the state through
the functions it passes in.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from gankit.errors import GankitError, TrainingError
from gankit.util import atomic

FORMAT_VERSION = 2
STATE_PREFIX = "state"
"""The files of the state are ``state.index`` and ``state.data-*`` (a TensorFlow checkpoint
written with this prefix)."""
_NAME = re.compile(r"^ckpt-(\d{8})$")
_TMP = ".tmp-"  # prefix of every folder that is not (or no longer) a complete checkpoint

PAUSE_ENV = "GANKIT_TEST_PAUSE_IN_CHECKPOINT_WRITE"
"""Test-only: set to a step number, the write of that step's checkpoint stops for an hour
after the state files (before ``meta.json`` and the rename), so a test can SIGKILL it there."""


class CheckpointWarning(UserWarning):
    """A checkpoint was skipped (corrupt or incomplete) in favour of an older one."""


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint on disk."""

    path: Path
    step: int
    meta: dict[str, Any]

    @property
    def prefix(self) -> str:
        """What ``tf.train.Checkpoint.read`` takes."""
        return str(self.path / STATE_PREFIX)


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

    def save(self, step: int, write_state: Callable[[str], Any],
             meta: Mapping[str, Any]) -> Path:
        """Write a checkpoint for ``step`` atomically, then prune old ones.

        Args:
            step: the step the state is after.
            write_state: writes the state files given a path prefix inside the new folder
                (e.g. ``tf.train.Checkpoint(...).write``).
            meta: more facts for ``meta.json`` (the recipe digest, the gankit version).

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
            try:
                write_state(str(tmp / STATE_PREFIX))
            except OSError:
                raise
            except Exception as exc:  # TensorFlow reports a failed write as its own errors
                raise OSError(getattr(exc, "errno", None) or 0, _tf_message(exc)) from None
            files = {}
            for p in sorted(tmp.iterdir()):
                atomic.fsync_file(p)
                files[p.name] = p.stat().st_size
            if not any(n.startswith(f"{STATE_PREFIX}.index") for n in files):
                raise OSError(0, "the state was not written")
            if os.environ.get(PAUSE_ENV) == str(step):
                time.sleep(3600)
            info = {"format": FORMAT_VERSION, "step": step, "created": time.time(),
                    "files": files, **meta}
            atomic.write_text(tmp / "meta.json", json.dumps(info, indent=1, default=str))
            # A re-run of the same step after a resume replaces its checkpoint: moved out of
            # the way first, so a kill from here on leaves either it or the new one complete,
            # never a half-deleted folder under a checkpoint name.
            atomic.swap_folder(tmp, final, aside=replaced)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
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
        atomic.discard_folder(self.path(step), doomed)

    def load(self, step: int) -> Checkpoint:
        """Verify the checkpoint of ``step`` (its meta.json and the sizes of its files).

        Raises:
            ValueError: if it is incomplete or corrupt, or of another format (the message
                says how).
        """
        path = self.path(step)
        try:
            meta = json.loads((path / "meta.json").read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"unreadable meta.json ({exc})") from None
        if not isinstance(meta, dict):
            raise ValueError("meta.json does not describe a checkpoint")
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"it has format {meta.get('format')!r}, written by another gankit "
                             f"version (this one reads format {FORMAT_VERSION}); start a new run")
        if meta.get("step") != step or not isinstance(meta.get("files"), dict):
            raise ValueError("meta.json does not describe this checkpoint")
        for name, size in meta["files"].items():
            try:
                actual = (path / name).stat().st_size
            except OSError as exc:
                raise ValueError(f"{name} is missing ({exc.strerror})") from None
            if actual != size:
                raise ValueError(f"{name} has {actual} bytes, expected {size}")
        return Checkpoint(path, step, meta)

    def load_latest(self, restore: Callable[[Checkpoint], None] | None = None
                    ) -> Checkpoint | None:
        """The newest checkpoint that verifies (and that ``restore`` accepts), warning about
        each newer one skipped.

        Args:
            restore: called with each candidate, newest first; an exception from it (a
                corrupt tensor) skips to the next older one, except a
                :class:`~gankit.errors.GankitError` (the state does not fit what the recipe
                builds: no older checkpoint would fit either), which is raised at once.

        Returns None if there are no checkpoints at all.

        Raises:
            TrainingError: if there are checkpoints but none of them is usable.
        """
        steps = self.steps()
        problems = []
        for step in reversed(steps):
            try:
                ckpt = self.load(step)
                if restore is not None:
                    restore(ckpt)
            except GankitError:
                raise
            except Exception as exc:  # noqa: BLE001 - any other failure means "not usable"
                reason = _tf_message(exc) if not isinstance(exc, ValueError) else str(exc)
                problems.append(f"{self.path(step).name}: {reason}")
                warnings.warn(f"checkpoint {self.path(step)} is unusable ({reason}); "
                              f"falling back to the previous one", CheckpointWarning, stacklevel=2)
                continue
            return ckpt
        if steps:
            raise TrainingError(f"no usable checkpoint in {self.directory}: "
                                + "; ".join(problems))
        return None


_ERRNO_REASONS = tuple(os.strerror(code) for code in (
    errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO))


def _tf_message(exc: BaseException) -> str:
    """A one-line reason from an exception (TensorFlow's messages span many lines and name
    its own temporary files; a system error in them is reported as the system's words)."""
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    for reason in _ERRNO_REASONS:
        if reason in text:
            return reason
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first[:300]
