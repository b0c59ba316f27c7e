"""Every durable, atomic write gankit makes: one policy, written once.

The policy: new content goes to a temporary name in the destination's own folder, the file
is fsynced, renamed over the destination, and the folder is fsynced. After a crash or a
power cut a reader finds the old content or the whole new one, never a mix, and a call that
returned is on disk. A failed write removes its temporary file (or folder) and leaves the
old content as it was; what a killed write leaves is a dot-name that the run directory's
``clean_leftovers()`` recognises.

Temporary names: ``.NAME.tmp<pid>`` for bytes and text, ``.tmp<pid>-NAME`` for a Keras
model (Keras wants the ``.keras`` suffix at the end). A folder (a checkpoint, ``best/``) is
built by its writer under a temporary name and put in place with :func:`swap_folder`.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from pathlib import Path
from typing import Any


def fsync_file(path: str | Path) -> None:
    """Flush a written file's content to the disk."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def fsync_dir(folder: str | Path) -> None:
    """Make a rename or a new entry in ``folder`` durable (a no-op where folders cannot be
    opened, and on file systems that cannot fsync a folder).

    Raises:
        OSError: the fsync itself failed (an I/O error).
    """
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


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (the policy above).

    Raises:
        OSError: the write, the rename or the folder's fsync failed; the old file is
            untouched and no temporary file is left.
    """
    path = Path(path)
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
    fsync_dir(path.parent)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically and durably (see :func:`write_bytes`).

    Raises:
        OSError: the write, the rename or the folder's fsync failed.
    """
    write_bytes(path, text.encode("utf-8"))


write_text_atomic = write_text
"""The name ``gankit.run_dir`` gave :func:`write_text` in 0.4 (``gankit._compat`` finds it
here); removed with the old paths in 0.6."""


def save_model(model: Any, path: str | Path) -> Path:
    """Save a Keras model so that ``path`` holds the old model or the whole new one.

    The model is saved to ``.tmp<pid>-NAME`` beside ``path``, fsynced and renamed over it.
    Keras is not imported here; ``model.save`` does the work.

    Args:
        model: anything with ``save(filepath)``, e.g. a ``keras.Model``.

    Returns:
        ``path``.

    Raises:
        Whatever the save raises (an OSError, or Keras' own errors); the temporary file is
        removed and the old model is untouched.
    """
    path = Path(path)
    tmp = path.with_name(f".tmp{os.getpid()}-{path.name}")
    try:
        remove(tmp)  # an earlier process with the same pid may have left it
        model.save(str(tmp))
        if tmp.is_file():
            fsync_file(tmp)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        try:
            remove(tmp)
        except OSError:
            pass  # the run directory's clean_leftovers() gets it next time
        raise
    return path


def swap_folder(tmp: str | Path, final: str | Path, aside: str | Path | None = None) -> None:
    """Put the complete folder ``tmp`` in place as ``final``, replacing any earlier one.

    The writer has made ``tmp``'s files durable (:func:`fsync_file`, or the functions
    above); ``tmp`` itself is fsynced here. An earlier ``final`` is first renamed to
    ``aside``, so a kill at any moment leaves the old or the new folder complete under the
    name ``final`` (or the old one under ``aside``, a temporary name its owner cleans up),
    never a half-deleted one; on success ``aside`` is deleted. Default ``aside``:
    ``.NAME.old.tmp<pid>`` beside ``final``.

    Raises:
        OSError: a rename or an fsync failed; an earlier ``final`` that was moved aside is
            moved back, ``tmp`` is left for the caller to remove.
    """
    tmp, final = Path(tmp), Path(final)
    aside = (final.with_name(f".{final.name}.old.tmp{os.getpid()}") if aside is None
             else Path(aside))
    fsync_dir(tmp)
    moved = False
    try:
        if final.exists():
            os.replace(final, aside)
            moved = True
        os.replace(tmp, final)
        fsync_dir(final.parent)
    except OSError:
        if moved and not final.exists():
            try:
                os.replace(aside, final)
            except OSError:
                pass
        raise
    if moved:
        shutil.rmtree(aside, ignore_errors=True)


def discard_folder(folder: str | Path, aside: str | Path) -> bool:
    """Delete ``folder`` by renaming it to the temporary name ``aside`` first, so a kill
    during the deletion leaves only a leftover behind, never a half-deleted folder under
    its own name. Returns False (and deletes nothing) if it cannot be renamed."""
    try:
        os.replace(folder, aside)
    except OSError:
        return False
    shutil.rmtree(aside, ignore_errors=True)
    return True


def move_aside(path: str | Path, error: type[Exception]) -> Path:
    """Rename a damaged ``path`` to ``NAME.bak-<time>`` (never over an earlier backup)
    before anything replaces it; return the backup's path.

    Raises:
        ``error`` (one line, e.g. a TrainingError): it could not be renamed (it is left as
        it is).
    """
    path = Path(path)
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


def remove(path: str | Path) -> None:
    """Delete a file or a folder if it is there."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
