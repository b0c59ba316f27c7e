"""What goes wrong in a run directory, and the helpers that word it in one line."""

from __future__ import annotations

from gankit.errors import GankitError


class CorruptRunFileError(GankitError):
    """A file of the run directory (``run.json``, ``losses.csv``) is not as gankit wrote it."""


class RunDirWarning(UserWarning):
    """A damaged file of the run directory was moved aside and replaced."""


def one_line(text: str, limit: int) -> str:
    """``text`` with its whitespace folded to single spaces, cut to ``limit`` characters."""
    return short(" ".join(text.split()), limit)


def short(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending in ``...`` when cut."""
    return text if len(text) <= limit else text[:limit - 3] + "..."
