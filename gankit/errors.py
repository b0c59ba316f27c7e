"""Exceptions a user can cause. The CLI prints them as one line and exits with code 2."""

from __future__ import annotations

import difflib
from typing import Iterable


class GankitError(Exception):
    """Base class for errors caused by user input (recipes, data, plugins, paths).

    The CLI turns these into one line on stderr and exit code 2, never a traceback.
    """

    exit_code = 2


class RecipeError(GankitError):
    """A recipe (or a ``--set`` override) is malformed, misspelled or out of range."""

    def __init__(self, message: str, *, path: str | None = None, source: str | None = None):
        super().__init__(message)
        self.message = message
        self.path = path
        self.source = source

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        where += f"{self.path}: " if self.path else ""
        return where + self.message


class ComponentNotFoundError(RecipeError):
    """A recipe names a component that no installed plugin registers."""


class DatasetError(GankitError):
    """Training data is missing, unreadable, or of the wrong shape."""


class PluginError(GankitError):
    """A plugin failed to load, declared an unknown hook, or clashes with another plugin."""


class TrainingError(GankitError):
    """Training cannot go on (a non-finite loss, an unwritable run directory, ...)."""

    exit_code = 1


class PrecisionWarning(UserWarning):
    """``train.precision`` names a policy that the devices only emulate (it trains, slowly);
    the CLI prints it as one line."""


def closest(word: str, choices: Iterable[str]) -> str | None:
    """Return the choice most similar to ``word``, or None if nothing is close."""
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return matches[0] if matches else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    match = closest(word, choices)
    return f" (did you mean '{match}'?)" if match else ""
