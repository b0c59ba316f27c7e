"""The component registry: (kind, name) -> component class, with who provided it."""

from __future__ import annotations

import contextlib
import contextvars
import re
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from gankit.errors import ComponentNotFoundError, PluginError, RecipeError, did_you_mean
from gankit.interfaces import Component
from gankit.plugin.kinds import KINDS
from gankit.params import Param, check_params

CORE_KINDS: Mapping[str, type[Component]] = {k.name: k.interface for k in KINDS}
"""The kinds gankit knows out of the box (from :data:`gankit.plugin.kinds.KINDS`), each with the
interface its components implement."""

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Registration:
    """One registered component and where it came from."""

    kind: str
    name: str
    component: type[Component]
    plugin: str
    """The plugin's namespace: its entry-point name (``dcgan`` in ``dcgan:frog_dcgan``)."""
    distribution: str
    """The installed distribution that provides the plugin (``gankit`` for built-ins)."""
    version: str = ""

    @property
    def qualified_name(self) -> str:
        return f"{self.plugin}:{self.name}"

    @property
    def summary(self) -> str:
        doc = (self.component.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


@dataclass
class Registry:
    """Maps (kind, name) to the registered component classes.

    The set of kinds is open: :meth:`add_kind` adds one with the interface its components
    must implement.
    """

    kinds: dict[str, type[Component]] = field(default_factory=lambda: dict(CORE_KINDS))
    _entries: dict[str, dict[str, list[Registration]]] = field(default_factory=dict)

    def add_kind(self, kind: str, interface: type[Component]) -> None:
        """Make ``kind`` a registrable kind whose components subclass ``interface``."""
        if kind in self.kinds and self.kinds[kind] is not interface:
            raise PluginError(f"kind '{kind}' is already defined by {self.kinds[kind].__name__}")
        self.kinds[kind] = interface

    def register(self, component: type[Component], name: str | None = None, *,
                 plugin: str = "local", distribution: str = "", version: str = "") -> Registration:
        """Register ``component`` under its kind and ``name``.

        Raises:
            PluginError: if the class implements no known interface, its name or params are
                malformed, or this plugin already registered the name for that kind.
        """
        who = f"plugin '{plugin}'" + (f" (distribution '{distribution}')" if distribution else "")
        if not isinstance(component, type) or not issubclass(component, Component):
            raise PluginError(f"{who} registered {component!r}, which is not a gankit component "
                              f"class (subclass one of: {', '.join(sorted(self.kinds))})")
        kind = getattr(component, "kind", None)
        if kind not in self.kinds or not issubclass(component, self.kinds[kind]):
            raise PluginError(f"{who} registered {component.__name__} of unknown kind {kind!r}; "
                              f"known kinds: {', '.join(sorted(self.kinds))}")
        name = name or getattr(component, "name", None)
        if not isinstance(name, str) or not _NAME.match(name):
            raise PluginError(f"{who} registered {component.__name__} with an invalid name "
                              f"{name!r}: use letters, digits, '_', '.', '-'")
        if not all(isinstance(p, Param) for p in component.params.values()):
            raise PluginError(f"{who}: {component.__name__}.params must map names to gankit.Param")
        entry = Registration(kind, name, component, plugin, distribution, version)
        existing = self._entries.setdefault(kind, {}).setdefault(name, [])
        if any(e.plugin == plugin for e in existing):
            raise PluginError(f"{who} registered the {kind} '{name}' twice")
        existing.append(entry)
        return entry

    def unregister_plugin(self, plugin: str) -> None:
        """Forget everything ``plugin`` registered (used when it fails half-way)."""
        for names in self._entries.values():
            for name in list(names):
                names[name] = [e for e in names[name] if e.plugin != plugin]
                if not names[name]:
                    del names[name]

    def names(self, kind: str) -> list[str]:
        """The names registered for ``kind``, sorted."""
        return sorted(self._entries.get(kind, {}))

    def __iter__(self) -> Iterator[Registration]:
        for kind in sorted(self._entries):
            for name in sorted(self._entries[kind]):
                yield from self._entries[kind][name]

    def get(self, kind: str, name: str, *, path: str | None = None,
            source: str | None = None) -> Registration:
        """Find the component registered as ``name`` (or ``plugin:name``) for ``kind``.

        Raises:
            ComponentNotFoundError: listing what is registered for the kind and the nearest
                match, or naming every provider when an unqualified name is ambiguous.
        """
        if kind not in self.kinds:
            raise ComponentNotFoundError(
                f"unknown kind '{kind}'{did_you_mean(kind, self.kinds)}", path=path, source=source)
        plugin, _, short = name.rpartition(":")
        candidates = self._entries.get(kind, {}).get(short, [])
        if plugin:
            candidates = [c for c in candidates if c.plugin == plugin]
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            providers = " and ".join(
                f"'{c.qualified_name}' (distribution '{c.distribution}')" for c in candidates)
            raise ComponentNotFoundError(
                f"the {kind} name '{short}' is registered by more than one plugin: {providers}; "
                f"write the qualified name to choose one", path=path, source=source)
        known = [e for e in self if e.kind == kind]
        listing = ", ".join(f"{e.name} ({e.distribution or e.plugin})" for e in known) or "none"
        choices = [e.qualified_name if plugin else e.name for e in known]
        raise ComponentNotFoundError(
            f"no {kind} named '{name}'{did_you_mean(name, choices)}; registered {kind}s: {listing}",
            path=path, source=source)


@dataclass(frozen=True)
class ComponentSpec:
    """A validated component section: what to build and with which parameters."""

    kind: str
    type: str
    registration: Registration
    config: dict[str, Any]
    path: str = ""
    """Where it stands in the recipe (``loss``, ``regularizers[0]``)."""
    registry: "Registry | None" = field(default=None, compare=False, repr=False)
    """Where nested components (a schedule) are looked up when it is created."""

    def create(self) -> Component:
        """Instantiate the component class (no model is built yet)."""
        with using_registry(self.registry):
            return self.registration.component(**self.config)

    def to_dict(self) -> dict[str, Any]:
        """``{type: ..., **config}``: the section as a resolved recipe holds it."""
        return {"type": self.type, **self.config}


def resolve(registry: Registry, kind: str, section: Any, path: str,
            source: str | None = None) -> ComponentSpec:
    """Check a component section (``{type: NAME, ...}`` or ``NAME``) against ``registry``.

    Returns the spec with every parameter checked and defaulted, nested components included.

    Raises:
        RecipeError: naming the key path: an unknown or ambiguous name (with what is
            registered and the nearest match), or a bad parameter.
    """
    if isinstance(section, str):  # `loss: hinge` is shorthand for {type: hinge}
        section = {"type": section}
    if not isinstance(section, dict):
        raise RecipeError(f"expected a mapping with a 'type' key (or a {kind} name), got "
                          f"{_describe_type(section)}", path=path, source=source)
    if "type" not in section:
        names = ", ".join(registry.names(kind)) or "none installed"
        raise RecipeError(f"missing 'type': name the {kind} to use ({names})",
                          path=f"{path}.type", source=source)
    name = section["type"]
    if not isinstance(name, str):
        raise RecipeError(f"expected a {kind} name (a string), got {name!r}",
                          path=f"{path}.type", source=source)
    reg = registry.get(kind, name, path=f"{path}.type", source=source)
    given = {k: v for k, v in section.items() if k != "type"}
    with using_registry(registry):
        config = check_params(reg.component.params, given, path,
                              removed=reg.component.removed_params, source=source)
    return ComponentSpec(kind=kind, type=name, registration=reg, config=config, path=path,
                         registry=registry)


def _describe_type(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    return "null" if value is None else type(value).__name__


_current: contextvars.ContextVar[Registry | None] = contextvars.ContextVar(
    "gankit_registry", default=None)


@contextlib.contextmanager
def using_registry(registry: Registry | None):
    """Within the block, nested components (a ``learning_rate`` schedule) are looked up in
    ``registry`` (None: leave the current one)."""
    if registry is None:
        yield
        return
    token = _current.set(registry)
    try:
        yield
    finally:
        _current.reset(token)


def current_registry() -> Registry:
    """The registry set by :func:`using_registry`, else the installed plugins'."""
    registry = _current.get()
    if registry is None:
        from gankit.plugin.manager import default_plugins
        registry = default_plugins().registry
    return registry


def create(kind: str, section: Any, path: str = "") -> Component:
    """Build the component a (possibly nested) section names, from the current registry."""
    return resolve(current_registry(), kind, section, path or kind).create()
