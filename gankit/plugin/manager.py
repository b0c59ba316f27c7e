"""Discovering and loading plugins through the ``gankit`` entry-point group.

Built-in components are found the same way as third-party ones: gankit's own
``pyproject.toml`` declares entry points for the packages in ``plugins/``.

Environment switches:
    GANKIT_DISABLE_PLUGINS: comma-separated plugin (entry-point) or distribution names to
        skip, e.g. a plugin that breaks on import. A skipped plugin is not even imported.
    GANKIT_TRACE_HOOKS: if set to 1, every plugin load, hook call (with the plugin it
        went to) and registered component is printed to stderr.
"""

from __future__ import annotations

import inspect
import os
import re
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Iterable

import pluggy

from gankit.errors import PluginError, did_you_mean
from gankit.params import set_default_resolver
from gankit.plugin import spec as hookspecs
from gankit.plugin.registry import Registration, Registry, registry_in_use, resolve

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
    entry_point: str = ""
    """What the entry point names (``module`` or ``module:object``)."""


@dataclass
class LoadedPlugins:
    """The outcome of loading: the registry and a record of every plugin."""

    registry: Registry
    plugins: list[PluginInfo]
    manager: pluggy.PluginManager
    warnings: list[str] = field(default_factory=list)
    """Problems that did not stop any plugin, e.g. a disable switch naming no plugin."""

    @property
    def errors(self) -> list[str]:
        return [p.error for p in self.plugins if p.error]


def _normalize(name: str) -> str:
    """A distribution or plugin name compared the way pip does (``My_Plugin`` = ``my-plugin``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _disabled_names(disabled: Iterable[str] | None) -> set[str]:
    names = set(disabled or ())
    names.update(n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip())
    return {_normalize(n) for n in names}


def _one_line(text: str) -> str:
    # pluggy's validation errors span several lines; the CLI prints one line per problem.
    return "; ".join(part.strip() for part in text.splitlines() if part.strip())


class _Tracer:
    """Writes ``[gankit hooks] ...`` lines to stderr when tracing is on."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, message: str) -> None:
        if self.enabled:
            sys.stderr.write(f"[gankit hooks] {message}\n")
            sys.stderr.flush()

    def monitor(self, pm: pluggy.PluginManager, dists: dict[str, str]) -> None:
        """Trace every hook call with the plugins it goes to, its duration and outcome."""
        started: list[float] = []

        def before(hook_name, methods, kwargs):
            who = ", ".join(f"'{m.plugin_name}' ({dists.get(m.plugin_name, '?')})"
                            for m in methods) or "no plugin"
            self(f"call {hook_name}({', '.join(kwargs)}) on {who}")
            started.append(time.perf_counter())

        def after(outcome, hook_name, methods, kwargs):
            ms = 1000 * (time.perf_counter() - started.pop())
            if outcome.exception is None:
                self(f"finish {hook_name} in {ms:.1f} ms")
            else:
                exc = outcome.exception
                self(f"raise {hook_name} after {ms:.1f} ms: {type(exc).__name__}: {exc}")

        if self.enabled:
            pm.add_hookcall_monitoring(before, after)


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
    tracer = _Tracer(trace if trace is not None
                     else os.environ.get(TRACE_ENV, "") not in ("", "0"))
    blocked = _disabled_names(disabled)
    registry = Registry()
    infos: list[PluginInfo] = []
    dists: dict[str, str] = {}  # plugin name -> "distribution version", for the trace
    tracer.monitor(pm, dists)

    candidates: list[tuple[str, str, str, str, Any]] = []  # name, dist, version, target, loader
    if entry_points:
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            # A half-installed distribution (pip running meanwhile) can lack its metadata.
            dist = (getattr(ep.dist, "name", None) if ep.dist else None) or "?"
            version = (getattr(ep.dist, "version", None) if ep.dist else None) or ""
            candidates.append((ep.name, dist, version, ep.value, ep.load))
    for name, obj in extra:
        candidates.append((name, "(local)", "", repr(obj), lambda obj=obj: obj))

    for name, dist, version, target, loader in candidates:
        info = PluginInfo(name, dist, version, entry_point=target)
        infos.append(info)
        if _normalize(name) in blocked or _normalize(dist) in blocked:
            info.status = "disabled"
            tracer(f"skip plugin '{name}' ({dist} {version}): disabled by {DISABLE_ENV}")
            continue
        tracer(f"load plugin '{name}' = {target} ({dist} {version})")
        dists[name] = f"{dist} {version}".strip()
        try:
            earlier = next((p for p in infos[:-1] if p.name == name and p.status == "loaded"),
                           None)
            if earlier is not None:
                raise PluginError(f"the plugin name '{name}' is already taken by distribution "
                                  f"'{earlier.distribution}'; rename one entry point in the "
                                  f"'{ENTRY_POINT_GROUP}' group")
            _load_one(pm, registry, info, loader, tracer)
        except (Exception, SystemExit) as exc:  # a broken plugin must not take the others down
            info.status = "failed"
            reason = str(exc) if isinstance(exc, PluginError) else f"{type(exc).__name__}: {exc}"
            info.error = (f"plugin '{name}' from distribution '{dist}' failed to load: "
                          f"{_one_line(reason)} (disable it with {DISABLE_ENV}={name})")
            info.provides = []
            tracer(f"failed: {info.error}")
    warnings = []
    known = {_normalize(n) for p in infos for n in (p.name, p.distribution)}
    for name in sorted(blocked - known):
        warnings.append(f"{DISABLE_ENV} names '{name}', but no installed plugin or distribution "
                        f"has that name{did_you_mean(name, sorted(known))}")
    return LoadedPlugins(registry, infos, pm, warnings)


def _load_one(pm: pluggy.PluginManager, registry: Registry, info: PluginInfo, loader,
              tracer: _Tracer) -> None:
    plugin = loader()
    _check_hook_names(plugin)
    pm.register(plugin, name=info.name)
    try:
        _register_components(pm, registry, info, plugin, tracer)
    except Exception:
        pm.unregister(plugin)
        registry.unregister_plugin(info.name)
        raise


def _known_hooks() -> list[str]:
    return [n for n in dir(hookspecs) if n.startswith("gankit_")]


def _check_hook_names(plugin: Any) -> None:
    """Catch hooks pluggy would skip silently: functions that look like hooks but are not
    decorated with ``@gankit.hookimpl``."""
    marker = f"{hookspecs.PROJECT}_impl"
    for attr, value in vars(plugin).items() if inspect.ismodule(plugin) else ():
        if (attr.startswith("gankit_") and inspect.isfunction(value)
                and value.__module__ == plugin.__name__ and not hasattr(value, marker)):
            hint = (" (decorate it with @gankit.hookimpl)" if attr in _known_hooks()
                    else f", which is not a gankit hook{did_you_mean(attr, _known_hooks())}")
            raise PluginError(f"its function '{attr}' is not decorated with @gankit.hookimpl"
                              f"{hint}")


def _register_components(pm: pluggy.PluginManager, registry: Registry, info: PluginInfo,
                         plugin: Any, tracer: _Tracer) -> None:
    callers = pm.get_hookcallers(plugin) or []
    for caller in callers:
        if not caller.has_spec():
            raise PluginError(f"it implements an unknown hook '{caller.name}'"
                              f"{did_you_mean(caller.name, _known_hooks())}")
    if not callers:
        raise PluginError(f"it implements no gankit hook (known hooks: "
                          f"{', '.join(_known_hooks())}, each decorated with @gankit.hookimpl)")
    registered: list[Registration] = []

    def register(component, name: str | None = None) -> None:
        registered.append(registry.register(
            component, name, plugin=info.name, distribution=info.distribution,
            version=info.version))
        entry = registered[-1]
        tracer(f"  '{info.name}' registered {entry.kind} '{entry.qualified_name}' = "
               f"{entry.component.__module__}.{entry.component.__qualname__}")

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


def current_registry() -> Registry:
    """The registry set by :func:`~gankit.plugin.registry.using_registry`, else the installed
    plugins'."""
    registry = registry_in_use()
    return registry if registry is not None else default_plugins().registry


def create(kind: str, section: Any, path: str = ""):
    """Build the component a (possibly nested) section names, from the current registry:
    ``create("loss", "hinge")``, ``create("schedule", {"type": "CosineDecay", ...})``."""
    return resolve(current_registry(), kind, section, path or kind).create()


set_default_resolver(lambda kind, section, path: resolve(current_registry(), kind, section, path))
