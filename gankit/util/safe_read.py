"""Reading back what a run directory (or a hostile user) left on disk, within bounds.

Every file gankit reads back is something a user, a crash or another program may have
changed. The helpers here turn each way such a file can be wrong into one ``UnsafeFileError``
(a ``ValueError``) with a short reason, so callers wrap it in their own one-line error:

- :func:`loads_json` / :func:`read_json`: JSON of bounded size and nesting depth (Python's
  parser raises ``RecursionError`` on a file nested 100,000 deep), with NaN and Infinity
  refused (``json`` accepts them; nothing gankit writes holds them), optionally of one type.
- :func:`regular_file_inside`: a path that is a regular file (not a symbolic link, a FIFO
  that would block a reader, a device, a directory), inside a given root after every link
  is resolved, and at most so many bytes.
- :func:`finite_number`: a JSON value that is a real, finite number (not a bool, a string,
  NaN or infinity).

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any

__all__ = ["UnsafeFileError", "MAX_JSON_BYTES", "MAX_JSON_DEPTH", "loads_json", "read_json",
           "json_depth", "regular_file_inside", "finite_number", "PNG_SIGNATURE", "is_png"]

MAX_JSON_BYTES = 16 * 1024 * 1024
"""The largest JSON file gankit reads back (run.json, best.json, evaluation-*.json, ...)."""
MAX_JSON_DEPTH = 64
"""The deepest nesting of arrays and objects accepted; gankit's own files stay under 6."""

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class UnsafeFileError(ValueError):
    """A file that cannot be trusted as it is: the message is a short reason, no path."""


def json_depth(text: str | bytes, limit: int = MAX_JSON_DEPTH) -> int:
    """The nesting depth of arrays and objects in JSON ``text``, counted without recursion.

    Stops counting (and returns ``limit + 1``) as soon as the depth passes ``limit``.
    Brackets inside strings do not count.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return limit + 1
        elif char in "]}":
            depth -= 1
    return deepest


def _no_constants(word: str) -> Any:
    raise UnsafeFileError(f"it holds {word}, which is not JSON")


def loads_json(data: str | bytes, *, expect: type | tuple[type, ...] | None = None,
               max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON within bounds.

    Args:
        data: the text, or its bytes (UTF-8, a byte-order mark allowed).
        expect: the type the top-level value must have (``dict`` for an object).
        max_bytes: the most bytes accepted.
        max_depth: the deepest nesting accepted.

    Raises:
        UnsafeFileError: too big, too deep, not UTF-8, not JSON, NaN or Infinity in it, or
            not of the expected type.
    """
    size = len(data.encode("utf-8") if isinstance(data, str) else data)
    if size > max_bytes:
        raise UnsafeFileError(f"it is {size:,} bytes, more than the {max_bytes:,} accepted")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise UnsafeFileError(f"byte {exc.start} is not UTF-8") from None
    if json_depth(data, max_depth) > max_depth:
        raise UnsafeFileError(f"it is nested more than {max_depth} deep")
    try:
        value = json.loads(data, parse_constant=_no_constants)
    except UnsafeFileError:
        raise
    except (ValueError, RecursionError) as exc:
        raise UnsafeFileError(f"not JSON: {exc}") from None
    if expect is not None and not isinstance(value, expect):
        raise UnsafeFileError(f"it holds a JSON {json_kind(value)}, not "
                              f"{_expected_name(expect)}")
    return value


def read_json(path: str | Path, *, expect: type | tuple[type, ...] | None = None,
              max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Read and parse a JSON file within bounds (see :func:`loads_json`).

    Refuses what is not a regular file (a FIFO would block the reader forever) and reads at
    most ``max_bytes + 1`` bytes.

    Raises:
        FileNotFoundError: if there is no such file.
        OSError: if it cannot be read.
        UnsafeFileError: if it is not a regular file, or not acceptable JSON.
    """
    path = Path(path)
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFileError(f"it is {_file_kind(info.st_mode)}, not a regular file")
    with open(path, "rb") as handle:
        data = handle.read(max_bytes + 1)
    return loads_json(data, expect=expect, max_bytes=max_bytes, max_depth=max_depth)


def regular_file_inside(path: str | Path, root: str | Path, *,
                        max_bytes: int | None = None) -> Path:
    """``path`` resolved, if it is a regular file inside ``root`` and reached without links.

    Args:
        path: the file.
        root: the folder it must be inside (after both are resolved).
        max_bytes: the largest size accepted, if any.

    Raises:
        FileNotFoundError: if it does not exist.
        UnsafeFileError: a symbolic link, not a regular file, outside ``root``, or too big.
    """
    path = Path(path)
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeFileError("it is a symbolic link")
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFileError(f"it is {_file_kind(info.st_mode)}, not a regular file")
    resolved = path.resolve()
    base = Path(root).resolve()
    if resolved != base and base not in resolved.parents:
        raise UnsafeFileError(f"it is outside {root}")
    if max_bytes is not None and info.st_size > max_bytes:
        raise UnsafeFileError(f"it is {info.st_size:,} bytes, more than the "
                              f"{max_bytes:,} accepted")
    return resolved


def is_png(path: str | Path) -> bool:
    """Whether the file starts with the PNG signature."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE
    except OSError:
        return False


def finite_number(value: Any) -> float | None:
    """``value`` as a float if it is a finite JSON number (not a bool); else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int with 400 digits
        return None
    return number if math.isfinite(number) else None


def json_kind(value: Any) -> str:
    """What a parsed JSON value is, in JSON's words (``object``, ``array``, ``string``, ...)."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def _expected_name(expect: type | tuple[type, ...]) -> str:
    names = {dict: "an object", list: "an array", str: "a string", int: "a number",
             float: "a number", bool: "a boolean"}
    kinds = expect if isinstance(expect, tuple) else (expect,)
    return " or ".join(dict.fromkeys(names.get(kind, kind.__name__) for kind in kinds))


def _file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "not a regular file"
