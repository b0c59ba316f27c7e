"""Declared parameters of components and recipe sections, checked without TensorFlow.

Every component class declares ``params``: a mapping from parameter name to a
:class:`Param`. Recipe validation checks the user's values against it (unknown keys,
types, ranges, choices) before any model is built, and fills in the defaults.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from gankit.errors import RecipeError, did_you_mean


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""Marks a parameter that has no default and must be given."""

_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
               list: "a list", dict: "a mapping"}


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return f"the list {list(value)!r}"
    if isinstance(value, dict):
        return "a mapping"
    return f"{type(value).__name__} {value!r}"


@dataclass(frozen=True)
class Param:
    """One parameter: its type, default, allowed range or choices, and documentation.

    Args:
        type: ``int``, ``float``, ``str``, ``bool`` or ``list``, or a tuple of them.
        default: the value used when the recipe omits the key; ``REQUIRED`` if none.
        doc: one sentence for the recipe reference and ``gankit plugins``.
        min, max: inclusive bounds for numbers (or for each item of a list).
        min_exclusive: if true, ``min`` itself is not allowed.
        choices: the allowed values, if the parameter is an enumeration.
        nullable: whether ``null`` is allowed.
        item_type: the type of each item when ``type`` is ``list``.
        length: the required length when ``type`` is ``list``.
        component: a kind name (``"schedule"``): the value may also be a component of that
            kind, written as a recipe section (``{type: NAME, ...}``); it is checked against
            the registry and kept as that mapping, complete with defaults.
        is_path: the value is a file or folder; a relative one in a recipe file is resolved
            against the recipe's folder (one given with ``--set``, against the current
            directory) and stored absolute in the run directory.
    """

    type: Any
    default: Any = REQUIRED
    doc: str = ""
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    choices: tuple | None = None
    nullable: bool = False
    item_type: Any = None
    length: int | None = None
    component: str | None = None
    is_path: bool = False

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def expected(self) -> str:
        """A phrase saying what the parameter accepts, for error messages and docs."""
        types = self.type if isinstance(self.type, tuple) else (self.type,)
        text = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
        if self.choices is not None:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        if self.type is list and self.item_type is not None:
            n = f"{self.length} " if self.length else ""
            item = _TYPE_NAMES.get(self.item_type, 'items').replace('an ', '').replace('a ', '')
            text = f"a list of {n}{item}s"
        if self.min is not None and self.max is not None:
            text += f" in [{self.min}, {self.max}]"
            if self.min_exclusive:
                text = text.replace(f"[{self.min}", f"({self.min}")
        elif self.min is not None:
            text += f" {'>' if self.min_exclusive else '>='} {self.min}"
        elif self.max is not None:
            text += f" <= {self.max}"
        if self.component and self.type is list:
            text = f"a list of {self.component}s (NAME or {{type: NAME, ...}} each)"
        elif self.component and self.type in ((), None):
            text = f"a {self.component} (NAME or {{type: NAME, ...}})"
        elif self.component:
            text += f", or a {self.component} ({{type: NAME, ...}})"
        if self.nullable:
            text += " (or null)"
        return text

    def check(self, value: Any, path: str) -> Any:
        """Return ``value`` normalised (ints become floats for float parameters).

        Raises:
            RecipeError: naming ``path`` and what was expected.
        """
        if value is None:
            if self.nullable:
                return None
            raise RecipeError(f"expected {self.expected()}, got null", path=path)
        types = self.type if isinstance(self.type, tuple) else (self.type,)
        if self.component and self.type is list:
            if not isinstance(value, (list, tuple)):
                raise RecipeError(f"expected a list of {self.component}s ([NAME or "
                                  f"{{type: NAME, ...}}, ...]), got {_describe(value)}", path=path)
            if self.length is not None and len(value) != self.length:
                raise RecipeError(f"expected {self.length} {self.component}s, got {len(value)}",
                                  path=path)
            return [_component(self.component, v, f"{path}[{i}]") for i, v in enumerate(value)]
        if self.component and (isinstance(value, dict)
                               or (isinstance(value, str) and str not in types)):
            return _component(self.component, value, path)
        value = self._coerce(value, types, path)
        if self.type is list:
            if self.length is not None and len(value) != self.length:
                raise RecipeError(f"expected {self.expected()}, got {len(value)} items", path=path)
            if self.item_type is not None:
                item = Param(self.item_type, min=self.min, max=self.max,
                             min_exclusive=self.min_exclusive)
                value = [item.check(v, f"{path}[{i}]") for i, v in enumerate(value)]
            return value
        if self.choices is not None and value not in self.choices:
            hint = did_you_mean(str(value), [str(c) for c in self.choices])
            raise RecipeError(f"expected {self.expected()}, got {_describe(value)}{hint}", path=path)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                raise RecipeError(f"expected {self.expected()} (finite), got {value}", path=path)
            too_low = self.min is not None and (
                value <= self.min if self.min_exclusive else value < self.min)
            too_high = self.max is not None and value > self.max
            if too_low or too_high:
                raise RecipeError(f"expected {self.expected()}, got {value}", path=path)
        return value

    def _coerce(self, value: Any, types: tuple, path: str) -> Any:
        # bool is a subclass of int in Python; a recipe's `true` is never a number.
        if isinstance(value, bool):
            if bool in types:
                return value
        elif float in types and isinstance(value, (int, float)):
            return value if int in types and isinstance(value, int) else float(value)
        elif int in types and isinstance(value, int):
            return value
        elif str in types and isinstance(value, str):
            return value
        elif list in types and isinstance(value, (list, tuple)):
            return list(value)
        elif dict in types and isinstance(value, dict):
            return dict(value)
        raise RecipeError(f"expected {self.expected()}, got {_describe(value)}", path=path)


Resolver = Callable[[str, Any, str], Any]
"""``(kind, section, path) -> spec``: checks a component section against a registry; the
spec has ``create()`` and ``to_dict()`` (:class:`gankit.plugin.registry.ComponentSpec`)."""

_resolver: contextvars.ContextVar[Resolver | None] = contextvars.ContextVar(
    "gankit_component_resolver", default=None)
_default_resolver: list[Resolver] = []


@contextlib.contextmanager
def using_resolver(resolver: Resolver):
    """Within the block, ``component=`` parameters are checked with ``resolver`` (the plugin
    layer sets it: :func:`gankit.plugin.registry.using_registry`)."""
    token = _resolver.set(resolver)
    try:
        yield
    finally:
        _resolver.reset(token)


def set_default_resolver(resolver: Resolver) -> None:
    """The resolver used outside any :func:`using_resolver` block (the installed plugins';
    set by :mod:`gankit.plugin.manager` when it is imported)."""
    _default_resolver[:] = [resolver]


def _component(kind: str, value: Any, path: str) -> dict[str, Any]:
    """A nested component section, checked by the current resolver and constructed."""
    resolver = _resolver.get() or (_default_resolver[0] if _default_resolver else None)
    if resolver is None:  # pragma: no cover - `import gankit` sets the default
        raise RecipeError(f"cannot check the {kind} here: no component registry is set up "
                          "(import gankit first)", path=path)
    spec = resolver(kind, value, path)
    try:
        spec.create()  # its constructor's own checks
    except RecipeError as err:
        if err.path and not err.path.startswith(path):
            err.path = f"{path}.{err.path.split('.', 1)[-1]}"
        raise
    return spec.to_dict()


def check_params(
    schema: Mapping[str, Param],
    given: Mapping[str, Any],
    path: str,
    *,
    removed: Mapping[str, str] | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """Check ``given`` against ``schema`` and return it complete with defaults.

    Args:
        schema: the declared parameters.
        given: the user's values (from a recipe section, without ``type``).
        path: the key path of the section, for messages (e.g. ``"generator"``).
        removed: legacy names mapped to an explanation of their modern replacement.
        source: the recipe file, for messages.

    Raises:
        RecipeError: for an unknown, legacy, missing, mistyped or out-of-range key.
    """
    removed = removed or {}
    for key in given:
        if key in schema:
            continue
        key_path = f"{path}.{key}"
        if key in removed:
            raise RecipeError(f"'{key}' is a legacy name that gankit does not accept: {removed[key]}",
                              path=key_path, source=source)
        valid = ", ".join(sorted(schema)) or "none"
        raise RecipeError(f"unknown key{did_you_mean(str(key), schema)}; valid keys here: {valid}",
                          path=key_path, source=source)
    resolved: dict[str, Any] = {}
    for key, param in schema.items():
        key_path = f"{path}.{key}"
        if key not in given:
            if param.required:
                raise RecipeError(f"missing required key; expected {param.expected()}"
                                  + (f" ({param.doc})" if param.doc else ""),
                                  path=key_path, source=source)
            resolved[key] = copy.deepcopy(param.default)
            if param.component and resolved[key] is not None:  # a default component, resolved
                resolved[key] = param.check(resolved[key], key_path)
            continue
        try:
            resolved[key] = param.check(given[key], key_path)
        except RecipeError as err:
            err.source = err.source or source
            raise
    return resolved


@dataclass(frozen=True)
class IntOrWord(Param):
    """An integer in ``[min, max]``, or one word (``steps_per_call: auto``)."""

    word: str = "auto"

    def expected(self) -> str:
        return f"an integer in [{self.min}, {self.max}] or '{self.word}'"

    def check(self, value: Any, path: str) -> Any:
        if isinstance(value, str):
            if value == self.word:
                return value
            raise RecipeError(f"expected {self.expected()}, got the string {value!r}"
                              f"{did_you_mean(value, [self.word])}", path=path)
        return super().check(value, path)
