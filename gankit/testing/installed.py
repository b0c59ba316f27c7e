"""Checks that a plugin is installed and registers what it should."""

from __future__ import annotations

from typing import Iterable, Mapping

from gankit.errors import did_you_mean
from gankit.plugin.registry import Registration


def check_plugin(name: str, provides: Mapping[str, Iterable[str]] | None = None
                 ) -> list[Registration]:
    """Load the installed plugins as ``gankit`` does and check that plugin ``name`` loaded.

    Args:
        name: the plugin's entry-point name in the ``gankit`` group (its namespace).
        provides: optionally, the component names it must register, by kind, e.g.
            ``{"generator": ["upsampling"]}``.

    Returns:
        What the plugin registered.

    Raises:
        AssertionError: if the plugin is not installed, failed to load, registers nothing,
            or lacks a component named in ``provides``.
    """
    from gankit.plugin.manager import load_plugins

    loaded = load_plugins()
    found = [p for p in loaded.plugins if p.name == name]
    if not found:
        names = [p.name for p in loaded.plugins]
        raise AssertionError(f"no plugin '{name}' is installed{did_you_mean(name, names)}; "
                             f"installed: {', '.join(names) or 'none'}. Is the package installed "
                             "(pip install -e .) and its entry point in the 'gankit' group?")
    plugin = found[0]
    if plugin.status != "loaded":
        raise AssertionError(plugin.error or f"plugin '{name}' is {plugin.status}")
    if not plugin.provides:
        raise AssertionError(f"plugin '{name}' loaded but registered no component")
    have = {(r.kind, r.name) for r in plugin.provides}
    for kind, names in (provides or {}).items():
        for component in names:
            if (kind, component) not in have:
                listing = ", ".join(f"{k} {n}" for k, n in sorted(have))
                raise AssertionError(f"plugin '{name}' registers no {kind} '{component}'; it "
                                     f"registers: {listing}")
    return list(plugin.provides)
