"""The component registry: (kind, name) -> component class, with who provided it."""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

from gankit.errors import ComponentNotFoundError, PluginError, RecipeError, did_you_mean
from gankit.interfaces import Component
from gankit.params import Param, check_params, using_resolver
from gankit.plugin.kinds import KINDS

CORE_KINDS: Mapping[str, type[Component]] = {k.name: k.interface for k in KINDS}
"""The kinds gankit knows out of the box (from :data:`gankit.plugin.kinds.KINDS`), each with the
interface its components implement."""

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


_ABBREVIATIONS = {"al", "e.g", "i.e", "etc", "vs", "cf", "fig", "eq", "approx"}
"""Words whose full stop does not end a summary's sentence (``Mao et al. 2017``)."""


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
        """The docstring's first sentence (its first paragraph, if that has no full stop),
        on one line: what ``gankit plugins`` shows."""
        doc = (self.component.__doc__ or "").strip()
        paragraph = " ".join(line.strip() for line in doc.split("\n\n", 1)[0].splitlines())
        for end in re.finditer(r"[.!?](?=\s|$)", paragraph):
            word = paragraph[:end.start()].rsplit(None, 1)[-1].lower()
            if word not in _ABBREVIATIONS:
                return paragraph[:end.start() + 1]
        return paragraph


@dataclass
class Registry:
    """Maps (kind, name) to the registered component classes (``kinds``: each kind with the
    interface its components implement)."""

    kinds: dict[str, type[Component]] = field(default_factory=lambda: dict(CORE_KINDS))
    _entries: dict[str, dict[str, list[Registration]]] = field(default_factory=dict)

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
    registry: Registry | None = field(default=None, compare=False, repr=False)
    """Where nested components (a schedule) are looked up when it is created."""

    def create(self) -> Component:
        """Instantiate the component class (no model is built yet)."""
        with using_registry(self.registry):
            return self.registration.component(**self.config)

    def to_dict(self) -> dict[str, Any]:
        """``{type: ..., **config}``: the section as a resolved recipe holds it."""
        return {"type": self.type, **self.config}

    def with_absolute_paths(self, root: Callable[[str], os.PathLike | str] | os.PathLike | str
                            ) -> ComponentSpec:
        """This spec with its relative file parameters (``Param(is_path=True)``) made
        absolute: against ``root``, or ``root(key)`` for each key (``~`` expanded first).
        The one path resolver of recipes and of ``gankit evaluate``."""
        config = dict(self.config)
        for key, param in self.registration.component.params.items():
            value = config.get(key)
            if param.component and self.registry is not None:
                # Nested components (an ensemble's members) have file parameters too; theirs
                # are keyed by their path below this one (``members[1].backbone``).
                config[key] = self._nested_absolute(param.component, key, value, root)
                continue
            if not (param.is_path and isinstance(value, str) and value):
                continue
            expanded = os.path.expanduser(value)
            if os.path.isabs(expanded):
                config[key] = expanded
                continue
            base = root(key) if callable(root) else root
            config[key] = os.path.normpath(os.path.join(os.path.abspath(base), expanded))
        return ComponentSpec(self.kind, self.type, self.registration, config, self.path,
                             self.registry)

    def _nested_absolute(self, kind: str, key: str, value: Any, root) -> Any:
        def one(section: Any, sub: str) -> Any:
            if not isinstance(section, dict):
                return section  # a plain value of a parameter that also takes a component
            spec = resolve(self.registry, kind, section, f"{self.path}.{sub}")
            inner = (lambda k: root(f"{sub}.{k}")) if callable(root) else root
            return spec.with_absolute_paths(inner).to_dict()

        if isinstance(value, list):
            return [one(item, f"{key}[{i}]") for i, item in enumerate(value)]
        return one(value, key)


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
        with using_resolver(lambda kind, section, path: resolve(registry, kind, section, path)):
            yield
    finally:
        _current.reset(token)


def registry_in_use() -> Registry | None:
    """The registry set by :func:`using_registry`, or None outside one
    (:func:`gankit.plugin.manager.current_registry` falls back to the installed plugins)."""
    return _current.get()
