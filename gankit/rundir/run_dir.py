"""The run directory: where a run keeps its recipe, samples, losses, checkpoints and models.

::

    RUN_DIR/
      .lock                held by the one process writing this run (pid, host, command)
      recipe.yaml          the resolved recipe (every default filled in)
      run.json             status, step, timings
      losses.csv           step, d_loss, g_loss, ... one row per step
      samples/             grid_<step>.png, generated_<step>.png, real_<step>.png
      checkpoints/         ckpt-<step>/ (state.index, state.data-* + meta.json), newest N kept
      tensorboard/         TensorBoard event files
      generator.keras      the final generator, for keras.models.load_model
      generator_ema.keras  its moving average, if the recipe has an ema section

What a run directory guarantees, to a writer that holds ``RunDir.lock()``:

- One writer at a time. ``lock()`` takes an exclusive ``flock`` on ``.lock``; a second
  process gets a one-line GankitError naming the holder's pid and command. The kernel drops
  the lock when its holder dies, even by ``kill -9``, so a stale ``.lock`` never blocks.
- Whole files or the previous ones. ``recipe.yaml``, ``run.json``, ``losses.csv`` (when it is
  rewritten on resume) and saved models are written to a temporary name in the same folder,
  fsynced, renamed over the old file, and the folder is fsynced: after a crash or a power
  cut a reader finds the old or the new file, never a mix. A failed write removes its
  temporary file; ``clean_leftovers()`` removes those of killed writes.
- No silent loss. A ``run.json`` or ``losses.csv`` that cannot be read as gankit wrote it
  is moved aside to ``NAME.bak-<time>`` (never over an earlier backup) before anything
  replaces it, and the user is told where it went.
- ``losses.csv`` rows are appended and flushed one by one; a resume keeps the rows up to
  the checkpoint's step and drops only the later ones, whose steps run again.
- Errors a user can cause (a taken directory, a bad ``--out``, a damaged file) are
  GankitError with one line; a disk that fails while training is TrainingError.
"""

from __future__ import annotations

import codecs
import csv
import errno
import io
import json
import os
import re
import shlex
import shutil
import socket
import stat
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Mapping, NoReturn


from gankit.errors import GankitError, TrainingError


class CorruptRunFileError(GankitError):
    """A file of the run directory (``run.json``, ``losses.csv``) is not as gankit wrote it."""


class RunDirWarning(UserWarning):
    """A damaged file of the run directory was moved aside and replaced."""


class RunDir:
    """Paths and small files of one run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lock_file = self.path / ".lock"
        self.recipe_file = self.path / "recipe.yaml"
        self.status_file = self.path / "run.json"
        self.losses_file = self.path / "losses.csv"
        self.samples = self.path / "samples"
        self.checkpoints = self.path / "checkpoints"
        self.tensorboard = self.path / "tensorboard"
        self.generator_file = self.path / "generator.keras"
        self.generator_ema_file = self.path / "generator_ema.keras"

    @classmethod
    def default_path(cls, recipe_name: str, root: str | Path = "runs") -> Path:
        return Path(root) / f"{recipe_name}-{time.strftime('%Y%m%d-%H%M%S')}"

    # --- creating and locking ----------------------------------------------------------

    def create(self) -> "RunDir":
        """Make the directory tree for a new run.

        Raises:
            GankitError: if it already holds a run, or cannot be created (one line naming
                the reason: a file in the way, no permission, a path too long, ...).
        """
        self.ensure_new()
        try:
            for folder in (self.path, self.samples, self.checkpoints):
                folder.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise self._creation_error(exc) from None
        return self

    def create_locked(self, command: str | None = None) -> "RunDirLock":
        """Create a new run directory and lock it, with no window for a second creator.

        The directory is checked again once the lock is held, so of two processes given the
        same ``--out`` one gets the run and the other a GankitError.

        Returns:
            the held lock (see ``lock()``).
        """
        self.ensure_new()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._creation_error(exc) from None
        held = self.lock(command)
        try:
            self.ensure_new()
            self.create()
        except BaseException:
            held.release()
            raise
        return held

    def ensure_new(self) -> None:
        """Raise GankitError unless the path is free for a new run (missing, or an empty folder).

        A leftover ``.lock`` or write probe does not count as content.
        """
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            if os.path.islink(self.path):
                raise GankitError(f"{self.path} is a symbolic link to a missing "
                                  f"{os.readlink(self.path)}; choose another --out") from None
            return
        except OSError as exc:  # ENOTDIR, ENAMETOOLONG, ELOOP, EACCES on a parent
            raise self._creation_error(exc) from None
        if stat.S_ISREG(info.st_mode):
            raise GankitError(f"{self.path} is a file, not a directory; choose another --out "
                              f"(a new or empty folder)")
        if not stat.S_ISDIR(info.st_mode):
            raise GankitError(f"{self.path} exists and is not a directory; choose another --out")
        try:
            names = [n for n in os.listdir(self.path) if n not in _NOT_CONTENT]
        except OSError as exc:
            raise GankitError(f"cannot read {self.path}: {exc.strerror or exc}; "
                              f"choose another --out") from None
        if not names:
            return
        if "recipe.yaml" in names:
            raise GankitError(f"{self.path} already exists and is not empty; choose another "
                              f"--out, or continue that run with: gankit resume {self.path}")
        raise GankitError(f"{self.path} already exists and is not empty (it holds "
                          f"{_short(names[0], 40)}, not a gankit run); choose another --out")

    def _creation_error(self, exc: OSError) -> GankitError:
        """One line saying why the run directory cannot be created."""
        code = exc.errno
        target = str(self.path)
        if code == errno.ENAMETOOLONG:
            target = _short(target, 120)
            reason = (f"the path is too long for the file system ({len(str(self.path))} "
                      f"characters; a name may have at most 255 bytes)")
        elif code in (errno.ENOTDIR, errno.EEXIST):
            blocker = _first_non_directory(self.path)
            reason = (f"{blocker} is a file, not a directory" if blocker
                      else exc.strerror or str(exc))
        elif code in (errno.EACCES, errno.EPERM):
            reason = f"no permission to write in {_existing_ancestor(self.path)}"
        elif code == errno.EROFS:
            reason = f"{_existing_ancestor(self.path)} is on a read-only file system"
        elif code == errno.ENOSPC:
            reason = f"no space left on the device of {_existing_ancestor(self.path)}"
        else:
            reason = exc.strerror or str(exc)
        return GankitError(f"cannot create the run directory {target}: {reason}; "
                           f"choose another with --out")

    def lock(self, command: str | None = None) -> "RunDirLock":
        """Take the run directory's exclusive lock; hold it while writing anything in it.

        Use it as ``with run.lock(): ...`` or keep the returned object and call
        ``release()``. The lock is an ``flock`` on ``RUN_DIR/.lock``, which records the
        holder's pid, host and command; the kernel releases it when the process ends, however
        it ends. The directory must exist.

        Args:
            command: what the holder is doing, shown to a process that finds the directory
                taken (default: this process's command line).

        Returns:
            the held lock.

        Raises:
            GankitError: another process holds it ("RUN_DIR is in use by process PID (...)"),
                or it cannot be taken (no such directory, no permission).
        """
        return RunDirLock(self, command).acquire()

    def check_existing(self) -> "RunDir":
        """Make sure this is a run directory that can be resumed."""
        if not self.recipe_file.is_file():
            raise GankitError(f"{self.path} is not a gankit run directory (no recipe.yaml)")
        return self

    # --- small files -------------------------------------------------------------------

    def write_recipe(self, recipe: Mapping[str, Any]) -> None:
        """Write ``recipe.yaml`` atomically and durably.

        When it returns, the file and its directory entry are on disk, so nothing written
        after it (a checkpoint) can exist without it, even after a power cut. If it fails,
        the previous ``recipe.yaml`` is untouched and no temporary file is left.

        Raises:
            TrainingError: if it cannot be written (disk full, no permission).
        """
        from gankit.recipe.strict_yaml import dump_yaml

        text = dump_yaml(dict(recipe))
        try:
            write_text_atomic(self.recipe_file, text)
        except OSError as exc:
            raise TrainingError(f"could not write {self.recipe_file}: "
                                f"{exc.strerror or exc}") from None

    def read_status(self) -> dict[str, Any]:
        """The contents of ``run.json``; an empty dict if there is none yet.

        Raises:
            CorruptRunFileError: (a GankitError) if it is not a JSON object, so not a
                gankit status file.
            GankitError: if it exists but cannot be read.
        """
        try:
            data = self.status_file.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise GankitError(f"cannot read {self.status_file}: {exc.strerror or exc}") from None
        try:
            status = json.loads(data.decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            raise CorruptRunFileError(f"{self.status_file} is not a gankit status file "
                                      f"(byte {exc.start} is not UTF-8)") from None
        except ValueError as exc:
            raise CorruptRunFileError(f"{self.status_file} is not a gankit status file "
                                      f"(not JSON: {exc})") from None
        if not isinstance(status, dict):
            raise CorruptRunFileError(f"{self.status_file} is not a gankit status file (it "
                                      f"holds a JSON {_json_kind(status)}, not an object)")
        return status

    def class_names(self) -> tuple[str, ...] | None:
        """The names of the classes the run was trained on, as ``run.json`` records them
        (``class_names``, written when training starts); None for an unlabelled run, or when
        run.json is missing, unreadable or does not record them."""
        try:
            names = self.read_status().get("class_names")
        except GankitError:
            return None
        if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
            return tuple(names)
        return None

    def write_status(self, **fields: Any) -> None:
        """Update ``run.json`` with ``fields`` (and the time as ``updated``).

        A ``run.json`` that cannot be read is not overwritten: it is moved to
        ``run.json.bak-<time>`` (named in a RunDirWarning and in the new file's
        ``corrupt_status_backup``) and a new one is started.

        Raises:
            TrainingError: if it cannot be written (disk full, no permission).
        """
        try:
            current = self.read_status()
        except CorruptRunFileError as exc:
            backup = _move_aside(self.status_file, TrainingError)
            warnings.warn(f"{exc}; moved it to {backup} and started a new one",
                          RunDirWarning, stacklevel=2)
            current = {"corrupt_status_backup": str(backup)}
        except GankitError as exc:
            raise TrainingError(str(exc)) from None
        current.update(fields, updated=time.time())
        try:
            write_text_atomic(self.status_file, json.dumps(current, indent=1))
        except OSError as exc:
            raise TrainingError(f"could not write {self.status_file}: "
                                f"{exc.strerror or exc}") from None

    # --- models and leftovers ----------------------------------------------------------

    def save_model_atomic(self, model: Any, path: str | Path) -> Path:
        """Save a Keras model so that ``path`` holds the old model or the whole new one.

        The model is saved to ``.tmp<pid>-<name>`` in the same folder (so the name keeps its
        ``.keras`` suffix), fsynced and renamed over ``path``. Any failure removes the
        temporary file. Keras is not imported here; ``model.save`` does the work.

        Args:
            model: anything with ``save(filepath)``, e.g. a ``keras.Model``.
            path: where to save it; a bare file name is taken inside the run directory.

        Returns:
            the path saved to.

        Raises:
            TrainingError: "could not save PATH: reason" for any exception of the save
                (disk full, no permission, or whatever Keras raises).
        """
        path = Path(path)
        if path.parent == Path("."):
            path = self.path / path
        tmp = path.with_name(f".tmp{os.getpid()}-{path.name}")
        try:
            _remove(tmp)  # an earlier process with the same pid may have left it
            model.save(str(tmp))
            if tmp.is_file():
                _fsync_file(tmp)
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        except BaseException as exc:
            try:
                _remove(tmp)
            except OSError:
                pass  # clean_leftovers() gets it next time
            if not isinstance(exc, Exception):
                raise
            raise TrainingError(f"could not save {path}: {_reason(exc)}") from exc
        return path

    def clean_leftovers(self) -> list[Path]:
        """Remove the temporary files of writes that were killed (not checkpoints); return them.

        Call it while holding the lock: then no leftover belongs to a live write. A missing
        or read-only directory is not an error; what cannot be removed is left in place.
        """
        removed = []
        for folder, pattern in ((self.path, _LEFTOVER_TOP), (self.samples, _LEFTOVER)):
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                if not pattern.match(entry.name):
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path)
                    else:
                        os.unlink(entry.path)
                except OSError:
                    continue
                removed.append(Path(entry.path))
        return removed


# Not content of a "new" directory: a lock or write probe left by an earlier attempt.
_NOT_CONTENT = frozenset({".lock", ".write-test"})

# The temporary names of write_text_atomic, images.save_png, LossLog, save_model_atomic
# (.tmp<pid>-generator.keras, .tmp<pid>-generator_ema.keras) and the create() probe.
_LEFTOVER = re.compile(r"^\..+\.tmp\d+$|^\.tmp\d+-.+$|^\.write-test$")
# In the top folder also Keras's own: a model too big for memory is staged in a
# tempfile.NamedTemporaryFile ("tmp" + 8 characters) next to the .keras file.
_LEFTOVER_TOP = re.compile(_LEFTOVER.pattern + r"|^tmp[a-z0-9_]{8}$")


class RunDirLock:
    """The exclusive lock of a run directory (see ``RunDir.lock``); a context manager."""

    def __init__(self, run_dir: RunDir, command: str | None = None) -> None:
        self.run_dir = run_dir
        self.path = run_dir.lock_file
        self.command = _one_line(command if command is not None else _command_line(), 200)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "RunDirLock":
        """Take the lock without waiting.

        Raises:
            GankitError: held by another process (naming its pid), or cannot be taken.
        """
        if self._fd is not None:
            return self
        try:
            import fcntl
        except ImportError:  # Windows: no flock; the lock is advisory anyway
            warnings.warn(f"cannot lock {self.run_dir.path} on this platform; make sure no "
                          f"other gankit process writes it", RunDirWarning, stacklevel=3)
            return self
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0),
                             0o644)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                    raise GankitError(f"cannot lock {self.run_dir.path}: there is no such "
                                      f"directory") from None
                raise GankitError(f"cannot lock {self.run_dir.path}: "
                                  f"{exc.strerror or exc}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise GankitError(self._in_use_message()) from None
                raise GankitError(f"cannot lock {self.run_dir.path}: {exc.strerror or exc} "
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
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8"), 0)
        except OSError as exc:
            os.close(fd)
            raise GankitError(f"cannot lock {self.run_dir.path}: could not write "
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

    def __enter__(self) -> "RunDirLock":
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
        where = self.run_dir.path
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
                holder += f" ({_one_line(str(info['command']), 200)})"
        return f"{where} is in use by {holder}; wait for it to finish or stop it"


def _read_lock_info(path: Path) -> dict[str, Any]:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
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


# --- atomic files ----------------------------------------------------------------------


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename.

    The file is fsynced before the rename and its folder after it, so after a crash ``path``
    holds the old or the new text, and a returned call is on disk. On any failure the
    temporary file is removed and the old file is untouched.

    Raises:
        OSError: the write, the rename or the folder's fsync failed.
    """
    _write_bytes_atomic(Path(path), text.encode("utf-8"))


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # Windows, or a folder without read permission
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _move_aside(path: Path, error: type[GankitError] = GankitError) -> Path:
    """Rename ``path`` to ``NAME.bak-<time>`` (never over an earlier backup); return that."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = path.with_name(f"{path.name}.bak-{stamp}")
    n = 1
    while backup.exists() or backup.is_symlink():
        n += 1
        backup = path.with_name(f"{path.name}.bak-{stamp}-{n}")
    try:
        os.rename(path, backup)
    except OSError as exc:
        raise error(f"could not move the damaged {path} aside to {backup}: "
                    f"{exc.strerror or exc}; it was left as it is") from None
    return backup


# --- small helpers ---------------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return _one_line(str(exc), 300) or type(exc).__name__


def _one_line(text: str, limit: int) -> str:
    return _short(" ".join(text.split()), limit)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return "number"


def _existing_ancestor(path: Path) -> Path:
    """``path`` or its nearest parent that is a directory."""
    path = path.absolute()
    for parent in (path, *path.parents):
        try:
            if parent.is_dir():
                return parent
        except OSError:
            continue
    return Path(path.anchor or "/")


def _first_non_directory(path: Path) -> Path | None:
    """The first component of ``path`` that exists and is not a directory."""
    for part in [*reversed(path.parents), path]:
        try:
            info = os.stat(part)
        except OSError:
            return None
        if not stat.S_ISDIR(info.st_mode):
            return part
    return None


# --- losses.csv ------------------------------------------------------------------------


class LossLog:
    """``losses.csv``: one row per step, flushed as written so a crash loses nothing.

    Pass every column up front, including metrics that only appear later (a penalty logged
    every k steps): a step without a value leaves its cell empty.

    On resume the rows after the checkpoint's step are dropped, since those steps run again;
    the rows up to it are kept. The file is read as UTF-8 with or without a BOM (a spreadsheet
    adds one). A final row cut short by a kill is dropped when it follows the resume step.
    Anything else that is not as gankit wrote it (a different header, a row with a
    non-numeric step or value or the wrong number of cells, bytes that are not UTF-8) stops
    the resume: the file is renamed to ``losses.csv.bak-<time>`` and CorruptRunFileError
    says what was wrong, on which line, and where the file went.

    Why stop rather than warn and go on: a resume gets here seconds after it starts, so
    stopping costs nothing, and the user then decides (repair the file and move it back, or
    resume again to start a new log) with the exact line in front of them. A warning
    would scroll past under the progress bar and leave a losses.csv that looks complete but
    silently lacks rows. Create the log before the first training step for that reason.

    Columns cannot change between sessions: a different header is one of the errors above.
    """

    def __init__(self, path: Path, columns: list[str], resume_after: int | None = None) -> None:
        """
        Args:
            path: the ``losses.csv`` to write.
            columns: the metric names, in order (``step`` comes first by itself).
            resume_after: the step of the checkpoint being resumed; None for a new run.

        Raises:
            CorruptRunFileError: (a GankitError) the old file could not be read as above.
            TrainingError: it could not be moved aside.
            OSError: it could not be written.
        """
        self.path = Path(path)
        self.columns = ["step", *columns]
        if len(set(self.columns)) != len(self.columns):
            raise ValueError(f"duplicate columns in {self.columns}")
        rows = self._rows_to_keep(resume_after) if resume_after is not None else []
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow(self.columns)
        writer.writerows(rows)
        # Rewritten through a temporary file, so a kill now cannot lose the kept rows.
        _write_bytes_atomic(self.path, text.getvalue().encode("utf-8"))
        self._file = open(self.path, "a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        """Append the row of ``step``; a column missing from ``metrics`` stays empty.

        Raises:
            ValueError: ``metrics`` has a name that is not a column.
        """
        unknown = [k for k in metrics if k not in self.columns[1:]]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a column of {self.path} "
                             f"({', '.join(self.columns[1:])}); pass every column up front")
        self._writer.writerow([step, *(f"{metrics[c]:.6g}" if c in metrics else ""
                                       for c in self.columns[1:])])
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "LossLog":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _rows_to_keep(self, resume_after: int) -> list[list[str]]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        bom = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
        try:
            text = raw[bom:].decode("utf-8")  # as "utf-8-sig", but with true byte offsets
        except UnicodeDecodeError as exc:
            at = bom + exc.start
            line = raw.count(b"\n", 0, at) + 1
            self._refuse(f"line {line} holds bytes that are not UTF-8 (byte {at})")
        reader = csv.reader(io.StringIO(text, newline=""))
        records: list[tuple[int, list[str]]] = []
        try:
            for row in reader:
                records.append((reader.line_num, row))
        except csv.Error as exc:
            self._refuse(f"near line {reader.line_num} cannot be read as CSV ({exc})")
        if not records:
            return []
        header = records[0][1]
        if header != self.columns:
            self._refuse(f"has the columns {_short(','.join(header), 120)!r} where this run "
                         f"writes {_short(','.join(self.columns), 120)!r}")
        body = records[1:]
        cut_short = not text.endswith(("\n", "\r"))
        kept: list[list[str]] = []
        last_step = 0
        for i, (line, row) in enumerate(body):
            if not row:
                continue  # a blank line carries no data
            try:
                step = self._parse(row)
            except ValueError as why:
                if i == len(body) - 1 and cut_short and last_step >= resume_after:
                    continue  # a row a kill cut short, of a step that runs again
                self._refuse(f"line {line}: {why}")
            if step <= resume_after:
                kept.append(row)
            last_step = step
        return kept

    def _parse(self, row: list[str]) -> int:
        if len(row) != len(self.columns):
            raise ValueError(f"{len(row)} cells where the header has {len(self.columns)}")
        if not re.fullmatch(r"[0-9]+", row[0].strip()):
            raise ValueError(f"the step {_short(row[0], 40)!r} is not a whole number")
        for name, value in zip(self.columns[1:], row[1:]):
            if value.strip():
                try:
                    float(value)
                except ValueError:
                    raise ValueError(f"{name} {_short(value, 40)!r} is not a number") from None
        return int(row[0])

    def _refuse(self, reason: str) -> NoReturn:
        backup = _move_aside(self.path, TrainingError)
        raise CorruptRunFileError(
            f"{self.path} {reason}, so the resume stopped rather than drop rows; the file was "
            f"moved to {backup}: repair it and move it back, or resume again to start a new "
            f"{self.path.name}")
