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
      best/                with a metrics section: the best generator so far (+ best.json)
      snapshots/           with a snapshot callback: minute_<M>/, step_<N>/ (generators)
      evaluation-<time>.json  what ``gankit evaluate`` measured
      nearest.png, nearest.json  ``gankit evaluate --nearest K``: the memorisation check
      report.html          the run's report

Every one of these names is spelled here (``RunDir``'s constants and paths) and nowhere
else in gankit; the lock is :mod:`gankit.rundir.lock`, the loss log
:mod:`gankit.rundir.losses`, the checkpoints :mod:`gankit.rundir.checkpoints`, and the
saved generators :mod:`gankit.rundir.generators`.

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

import errno
import json
import os
import re
import shutil
import stat
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Mapping

from gankit.errors import GankitError, TrainingError
from gankit.rundir import generators
from gankit.rundir.errors import CorruptRunFileError, RunDirWarning, short
from gankit.rundir.lock import LOCK_FILE, RunDirLock
from gankit.util import atomic
from gankit.util.safe_read import UnsafeFileError, loads_json

__all__ = ["RunDir", "RunDirLock", "CorruptRunFileError", "RunDirWarning"]


class RunDir:
    """Paths and small files of one run directory."""

    RECIPE = "recipe.yaml"
    STATUS = "run.json"
    LOSSES = "losses.csv"
    SAMPLES = "samples"
    CHECKPOINTS = "checkpoints"
    TENSORBOARD = "tensorboard"
    GENERATOR = generators.GENERATOR
    GENERATOR_EMA = generators.GENERATOR_EMA
    BEST = "best"
    BEST_INFO = "best.json"
    SNAPSHOTS = "snapshots"
    REPORT = "report.html"
    EVALUATION = "evaluation-{stamp}.json"
    NEAREST = "nearest.png"
    NEAREST_INFO = "nearest.json"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lock_file = self.path / LOCK_FILE
        self.recipe_file = self.path / self.RECIPE
        self.status_file = self.path / self.STATUS
        self.losses_file = self.path / self.LOSSES
        self.samples = self.path / self.SAMPLES
        self.checkpoints = self.path / self.CHECKPOINTS
        self.tensorboard = self.path / self.TENSORBOARD
        self.generator_file = self.generator_in(self.path)
        self.generator_ema_file = self.generator_in(self.path, ema=True)
        self.best_dir = self.path / self.BEST
        """``best/``: the best generator by ``metrics.best``, its EMA copy and best.json."""
        self.best_info = self.best_dir / self.BEST_INFO
        self.snapshots = self.path / self.SNAPSHOTS
        self.report_file = self.path / self.REPORT
        self.nearest_panel = self.path / self.NEAREST
        """``gankit evaluate --nearest K``'s panel of generated images and their nearest reals."""
        self.nearest_info = self.path / self.NEAREST_INFO
        """Its distances, beside the panel."""

    generator_in = staticmethod(generators.generator_in)

    @staticmethod
    def is_run(path: str | Path) -> bool:
        """Whether ``path`` is a run directory (it holds ``recipe.yaml``)."""
        return (Path(path) / RunDir.RECIPE).is_file()

    def evaluation_file(self, stamp: str) -> Path:
        """Where ``gankit evaluate`` keeps what it measured at time ``stamp``."""
        return self.path / self.EVALUATION.format(stamp=stamp)

    def evaluation_files(self) -> list[Path]:
        """The evaluations kept in the run directory and in its sub-folders (a snapshot's)."""
        pattern = self.EVALUATION.format(stamp="*")
        return [*self.path.glob(pattern), *self.path.glob(f"*/{pattern}")]

    @classmethod
    def default_path(cls, recipe_name: str, root: str | Path = "runs") -> Path:
        return Path(root) / f"{recipe_name}-{time.strftime('%Y%m%d-%H%M%S')}"

    # --- creating and locking ----------------------------------------------------------

    def create(self) -> RunDir:
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

    def create_locked(self, command: str | None = None) -> RunDirLock:
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
            self._check_creatable()
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
        if self.RECIPE in names:
            raise GankitError(f"{self.path} already exists and is not empty; choose another "
                              f"--out, or continue that run with: gankit resume {self.path}")
        raise GankitError(f"{self.path} already exists and is not empty (it holds "
                          f"{short(names[0], 40)}, not a gankit run); choose another --out")

    def _check_creatable(self) -> None:
        """Raise the creation error now (before TensorFlow loads) if the nearest existing
        folder above a missing run directory cannot be written."""
        ancestor = _existing_ancestor(self.path)
        if not ancestor.is_dir():
            raise self._creation_error(OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR)))
        if not os.access(ancestor, os.W_OK | os.X_OK):
            code = errno.EROFS if _read_only_fs(ancestor) else errno.EACCES
            raise self._creation_error(OSError(code, os.strerror(code)))
        # os.access says yes to root everywhere, and /proc or /sys refuse even root: try.
        try:
            probe = tempfile.mkdtemp(prefix=".gankit-probe-", dir=ancestor)
        except OSError as exc:
            raise self._creation_error(exc) from None
        os.rmdir(probe)

    def _creation_error(self, exc: OSError) -> GankitError:
        """One line saying why the run directory cannot be created."""
        code = exc.errno
        target = str(self.path)
        if code == errno.ENAMETOOLONG:
            target = short(target, 120)
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

    def lock(self, command: str | None = None) -> RunDirLock:
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
        return RunDirLock(self.path, command).acquire()

    def check_existing(self) -> RunDir:
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
            atomic.write_text(self.recipe_file, text)
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
            if not self.status_file.is_file() and self.status_file.exists():
                raise CorruptRunFileError(f"{self.status_file} is not a gankit status file "
                                          f"(not a regular file)")
            data = self.status_file.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise GankitError(f"cannot read {self.status_file}: {exc.strerror or exc}") from None
        try:
            status = loads_json(data)
        except UnsafeFileError as exc:
            raise CorruptRunFileError(f"{self.status_file} is not a gankit status file "
                                      f"({exc})") from None
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
            backup = atomic.move_aside(self.status_file, TrainingError)
            warnings.warn(f"{exc}; moved it to {backup} and started a new one",
                          RunDirWarning, stacklevel=2)
            current = {"corrupt_status_backup": str(backup)}
        except GankitError as exc:
            raise TrainingError(str(exc)) from None
        current.update(fields, updated=time.time())
        try:
            atomic.write_text(self.status_file, json.dumps(current, indent=1))
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
        return generators.save_model(model, path)

    def save_generators(self, generator: Any, ema_shadow: Any, folder: str | Path | None = None
                        ) -> tuple[Path, Path | None]:
        """Save a generator and (unless ``ema_shadow`` is None) its EMA copy in ``folder``
        (default: the run directory; or ``best/``, a snapshot's folder) as
        ``generator.keras`` and ``generator_ema.keras``, each as :meth:`save_model_atomic`
        does (:func:`gankit.rundir.generators.save_generators`).

        Returns:
            the two paths (the second None without an EMA copy).

        Raises:
            TrainingError: a model could not be saved.
        """
        return generators.save_generators(generator, ema_shadow,
                                          self.path if folder is None else folder)

    def clean_leftovers(self) -> list[Path]:
        """Remove the temporary files of writes that were killed (not checkpoints); return them.

        Call it while holding the lock: then no leftover belongs to a live write. A missing
        or read-only directory is not an error; what cannot be removed is left in place.
        A ``best/`` whose replacement was killed half-way is restored first
        (:meth:`recover_best`).
        """
        removed = self.recover_best()
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

    def recover_best(self) -> list[Path]:
        """Finish or undo a replacement of ``best/`` that was killed between its renames.

        ``best/`` is replaced by renaming it to ``.tmp-best-old-<pid>``, then the complete
        new folder ``.tmp-best-<pid>`` to ``best``. A kill between the two leaves no
        ``best/``: the old one is renamed back here (with a RunDirWarning saying so). A kill
        after them leaves the old one aside, and one before them an incomplete new one:
        both are removed. Call it while holding the lock. Returns what it removed.
        """
        removed: list[Path] = []
        try:
            entries = [e for e in os.scandir(self.path) if e.is_dir(follow_symlinks=False)]
        except OSError:
            return removed
        aside = sorted((e for e in entries if _BEST_ASIDE.match(e.name)),
                       key=lambda e: e.stat(follow_symlinks=False).st_mtime, reverse=True)
        partial = [e for e in entries if _BEST_PARTIAL.match(e.name)]
        if aside and not os.path.lexists(self.best_dir):
            restored = aside.pop(0)
            try:
                os.replace(restored.path, self.best_dir)
                atomic.fsync_dir(self.path)
                warnings.warn(f"{self.best_dir} was being replaced when a process was "
                              f"stopped; the previous best/ was restored from "
                              f"{restored.name}", RunDirWarning, stacklevel=2)
            except OSError as exc:
                warnings.warn(f"{self.best_dir} is missing and {restored.path} could not be "
                              f"renamed back ({exc.strerror or exc}); rename it to best/ "
                              f"by hand", RunDirWarning, stacklevel=2)
        for entry in (*aside, *partial):
            try:
                shutil.rmtree(entry.path)
            except OSError:
                continue
            removed.append(Path(entry.path))
        return removed


# The folders of a replacement of best/ (gankit.evaluation.callback): the previous best moved
# aside, and the new one while it is written.
_BEST_ASIDE = re.compile(r"^\.tmp-best-old-\d+$")
_BEST_PARTIAL = re.compile(r"^\.tmp-best-\d+$")

# Not content of a "new" directory: a lock or write probe left by an earlier attempt.
_NOT_CONTENT = frozenset({LOCK_FILE, ".write-test"})

# The temporary names of gankit.util.atomic's writes (recipe.yaml, run.json, losses.csv, the
# sample PNGs, snapshot.json), of its save_model
# (.tmp<pid>-generator.keras, .tmp<pid>-generator_ema.keras) and the create() probe.
_LEFTOVER = re.compile(r"^\..+\.tmp\d+$|^\.tmp\d+-.+$|^\.write-test$")
# In the top folder also Keras's own: a model too big for memory is staged in a
# tempfile.NamedTemporaryFile ("tmp" + 8 characters) next to the .keras file.
_LEFTOVER_TOP = re.compile(_LEFTOVER.pattern + r"|^tmp[a-z0-9_]{8}$")


# --- small helpers ---------------------------------------------------------------------


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return "number"


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def ensure_tree(run: RunDir) -> list[str]:
    """Recreate the folders a resumed run writes into (``samples/``, ``checkpoints/``) if
    they were deleted; return the names of those recreated."""
    made = []
    for folder in (run.samples, run.checkpoints):
        if not folder.is_dir():
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise TrainingError(f"cannot recreate {folder}: {exc.strerror or exc}") from None
            made.append(folder.name)
    return made


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
