"""The lock of a run directory: one writer at a time.

``RunDirLock`` takes an exclusive ``flock`` on ``RUN_DIR/.lock``, which records the holder's
pid, host and command; a second process gets a one-line GankitError naming the holder. The
kernel drops the lock when its holder dies, even by ``kill -9``, so a stale ``.lock`` never
blocks. The run directory itself is locked too (an ``flock`` on its own descriptor), so
deleting ``.lock`` while a run trains cannot let a second writer in: it finds the directory
locked.
"""

from __future__ import annotations

import errno
import json
import os
import shlex
import socket
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from gankit.errors import GankitError
from gankit.rundir.errors import RunDirWarning, one_line
from gankit.util.safe_read import read_json

LOCK_FILE = ".lock"
"""The lock's file in the run directory (it stays when released: deleting it would let two
processes lock)."""


class RunDirLock:
    """The exclusive lock of a run directory (see ``RunDir.lock``); a context manager.

    Args:
        folder: the run directory (it must exist to take the lock).
        command: what the holder is doing, shown to a process that finds it taken (default:
            this process's command line).
    """

    def __init__(self, folder: str | Path, command: str | None = None) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.command = one_line(command if command is not None else _command_line(), 200)
        self._fd: int | None = None
        self._dir_fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunDirLock:
        """Take the lock without waiting.

        Raises:
            GankitError: held by another process (naming its pid), or cannot be taken.
        """
        if self._fd is not None:
            return self
        try:
            import fcntl
        except ImportError:  # Windows: no flock; the lock is advisory anyway
            warnings.warn(f"cannot lock {self.folder} on this platform; make sure no "
                          f"other gankit process writes it", RunDirWarning, stacklevel=3)
            return self
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0),
                             0o644)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                    raise GankitError(f"cannot lock {self.folder}: there is no such "
                                      f"directory") from None
                raise GankitError(f"cannot lock {self.folder}: "
                                  f"{exc.strerror or exc}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise GankitError(self._in_use_message()) from None
                raise GankitError(f"cannot lock {self.folder}: {exc.strerror or exc} "
                                  f"(a file system without locks?)") from None
            # Someone may have deleted and recreated .lock between our open and flock; a lock
            # on the unlinked file would exclude nobody.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except OSError:
                same = False
            if same:
                break
            os.close(fd)
        try:
            self._dir_fd = _lock_directory(self.folder, fcntl)
        except BaseException:
            os.close(fd)
            raise
        if self._dir_fd is None:  # held by a process whose .lock was deleted
            os.close(fd)
            raise GankitError(f"{self.folder} is in use by another process (its .lock file "
                              f"was deleted while it held it); wait for it to finish or "
                              f"stop it")
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8"), 0)
        except OSError as exc:
            os.close(fd)
            self._release_directory()
            raise GankitError(f"cannot lock {self.folder}: could not write "
                              f"{self.path}: {exc.strerror or exc}") from None
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the lock up (the file stays: deleting it would let two processes lock)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # no pid left behind to mislead a reader
        except OSError:
            pass
        os.close(fd)  # closing drops the flock
        self._release_directory()

    def _release_directory(self) -> None:
        if self._dir_fd is not None:
            fd, self._dir_fd = self._dir_fd, None
            os.close(fd)

    def __enter__(self) -> RunDirLock:
        return self.acquire()

    def __exit__(self, *exc_info: Any) -> None:
        self.release()

    def _in_use_message(self) -> str:
        # The holder writes its pid just after taking the lock; give it a moment, and
        # distrust a pid that is not running here (the file of a holder that died).
        info: dict[str, Any] = {}
        deadline = time.monotonic() + 1.0
        while True:
            info = _read_lock_info(self.path)
            pid = info.get("pid")
            here = info.get("host") in (None, socket.gethostname())
            if isinstance(pid, int) and (not here or _pid_alive(pid)):
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        where = self.folder
        pid = info.get("pid")
        if not isinstance(pid, int):
            holder = "another process"
        else:
            holder = f"process {pid}"
            if pid == os.getpid():
                holder += " (this one)"
            if info.get("host") not in (None, socket.gethostname()):
                holder += f" on {info['host']}"
            if info.get("command"):
                holder += f" ({one_line(str(info['command']), 200)})"
        return f"{where} is in use by {holder}; wait for it to finish or stop it"


def _lock_directory(folder: Path, fcntl: Any) -> int | None:
    """An ``flock``-ed descriptor of the directory itself, or None if another holds it."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(folder, flags)
    except OSError as exc:
        raise GankitError(f"cannot lock {folder}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise GankitError(f"cannot lock {folder}: {exc.strerror or exc} "
                          f"(a file system without locks?)") from None
    return fd


def _read_lock_info(path: Path) -> dict[str, Any]:
    try:
        info = read_json(path, max_bytes=64 * 1024)
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _command_line() -> str:
    argv = list(sys.argv) or [""]
    program = os.path.basename(argv[0])
    if program == "__main__.py":  # python -m gankit
        program = os.path.basename(os.path.dirname(argv[0])) or "python"
    elif program in ("", "-c"):
        program = "python -c" if program == "-c" else "python"
    return " ".join([program, *(shlex.quote(a) for a in argv[1:])])
