"""Discovering and loading plugins through the ``gankit`` entry-point group.

Built-in components are found the same way as third-party ones: gankit's own
``pyproject.toml`` declares entry points for the packages in ``plugins/``.

Environment switches:
    GANKIT_DISABLE_PLUGINS: comma-separated plugin (entry-point) or distribution names to
        skip, e.g. a plugin that breaks on import.
    GANKIT_TRACE_HOOKS: if set to 1, every hook call and its result is printed to stderr.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Iterable

import pluggy

from gankit import hookspecs
from gankit.errors import PluginError, did_you_mean
from gankit.registry import Registration, Registry

ENTRY_POINT_GROUP = "gankit"
DISABLE_ENV = "GANKIT_DISABLE_PLUGINS"
TRACE_ENV = "GANKIT_TRACE_HOOKS"


@dataclass
class PluginInfo:
    """A plugin found through an entry point (or added directly), and how loading it went."""

    name: str
    distribution: str
    version: str
    status: str = "loaded"
    """``loaded``, ``disabled`` or ``failed``."""
    error: str | None = None
    provides: list[Registration] = field(default_factory=list)


@dataclass
class LoadedPlugins:
    """The outcome of loading: the registry and a record of every plugin."""

    registry: Registry
    plugins: list[PluginInfo]
    manager: pluggy.PluginManager

    @property
    def errors(self) -> list[str]:
        return [p.error for p in self.plugins if p.error]


def _disabled_names(disabled: Iterable[str] | None) -> set[str]:
    names = set(disabled or ())
    names.update(n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip())
    return names


def load_plugins(
    *,
    entry_points: bool = True,
    extra: Iterable[tuple[str, Any]] = (),
    disabled: Iterable[str] | None = None,
    trace: bool | None = None,
) -> LoadedPlugins:
    """Load plugins and collect their components into a new :class:`Registry`.

    A plugin that fails to import, declares a hook gankit does not define, or fails while
    registering is recorded with an error naming its distribution; the others still load.

    Args:
        entry_points: discover installed plugins in the ``gankit`` entry-point group.
        extra: more ``(name, plugin_object)`` pairs to load, e.g. a module in a test.
        disabled: plugin or distribution names to skip (added to ``GANKIT_DISABLE_PLUGINS``).
        trace: print hook calls to stderr; defaults to ``GANKIT_TRACE_HOOKS``.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    if trace if trace is not None else os.environ.get(TRACE_ENV, "") not in ("", "0"):
        pm.trace.root.setwriter(lambda msg: sys.stderr.write(f"[gankit hooks] {msg}"))
        pm.enable_tracing()
    blocked = _disabled_names(disabled)
    registry = Registry()
    infos: list[PluginInfo] = []

    candidates: list[tuple[str, str, str, Any]] = []  # name, dist, version, loader
    if entry_points:
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else ""
            candidates.append((ep.name, dist, version, ep.load))
    for name, obj in extra:
        candidates.append((name, "(local)", "", lambda obj=obj: obj))

    for name, dist, version, loader in candidates:
        info = PluginInfo(name, dist, version)
        infos.append(info)
        if name in blocked or dist in blocked:
            info.status = "disabled"
            continue
        try:
            _load_one(pm, registry, info, loader)
        except Exception as exc:  # a broken plugin must not take the others down
            info.status = "failed"
            reason = str(exc) if isinstance(exc, PluginError) else f"{type(exc).__name__}: {exc}"
            info.error = (f"plugin '{name}' from distribution '{dist}' failed to load: {reason} "
                          f"(disable it with {DISABLE_ENV}={name})")
            info.provides = []
    return LoadedPlugins(registry, infos, pm)


def _load_one(pm: pluggy.PluginManager, registry: Registry, info: PluginInfo, loader) -> None:
    plugin = loader()
    if pm.get_plugin(info.name) is not None:
        raise PluginError(f"another plugin is already named '{info.name}'")
    pm.register(plugin, name=info.name)
    try:
        _register_components(pm, registry, info, plugin)
    except Exception:
        pm.unregister(plugin)
        registry.unregister_plugin(info.name)
        raise


def _register_components(pm: pluggy.PluginManager, registry: Registry, info: PluginInfo,
                         plugin: Any) -> None:
    for caller in pm.get_hookcallers(plugin) or []:
        if not caller.has_spec():
            known = [n for n in dir(hookspecs) if n.startswith("gankit_")]
            raise PluginError(f"it implements an unknown hook '{caller.name}'"
                              f"{did_you_mean(caller.name, known)}")
    registered: list[Registration] = []

    def register(component, name: str | None = None) -> None:
        registered.append(registry.register(
            component, name, plugin=info.name, distribution=info.distribution,
            version=info.version))

    caller = pm.subset_hook_caller("gankit_register_components",
                                   remove_plugins=[p for p in pm.get_plugins() if p is not plugin])
    caller(register=register)
    info.provides = registered


_cached: LoadedPlugins | None = None


def default_plugins() -> LoadedPlugins:
    """The installed plugins, loaded once per process."""
    global _cached
    if _cached is None:
        _cached = load_plugins()
    return _cached
