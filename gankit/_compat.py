"""Old import paths of gankit 0.4, kept for one version with a DeprecationWarning.

gankit 0.5 moved its modules into layered packages (docs/architecture.md). Code that still
imports an old path (``gankit.run_dir``, ``gankit.registry``, ``gankit.training.context``,
...) gets the new module's objects and a DeprecationWarning naming the new path. The aliases
are resolved by a finder on ``sys.meta_path``, so nothing here imports the modules it names
until an old path is imported. Removed in 0.6.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings

# old module -> the modules that now hold its public names, first match wins
MOVED: dict[str, tuple[str, ...]] = {
    "gankit.hookspecs": ("gankit.plugin.spec",),
    "gankit.kinds": ("gankit.plugin.kinds",),
    "gankit.registry": ("gankit.plugin.registry", "gankit.plugin.manager"),
    "gankit.plugins": ("gankit.plugin.manager",),
    "gankit.reference": ("gankit.app.reference",),
    "gankit.scaffold": ("gankit.plugin.scaffold",),
    "gankit.recipe_yaml": ("gankit.recipe.strict_yaml",),
    "gankit.run_dir": ("gankit.rundir.run_dir", "gankit.rundir.lock", "gankit.rundir.losses",
                       "gankit.util.atomic"),
    "gankit.checkpoints": ("gankit.rundir.checkpoints",),
    "gankit.image_sources": ("gankit.evaluation.sources",),
    "gankit.per_class": ("gankit.evaluation.per_class", "gankit.interfaces.metrics"),
    "gankit.feature_cache": ("gankit.evaluation.cache",),
    "gankit.classifier": ("gankit.evaluation.classifier",),
    "gankit.training.metrics": ("gankit.evaluation.callback",),
    "gankit.training.metric_names": ("gankit.interfaces.metric_names",),
    "gankit.training.context": ("gankit.interfaces.context",),
    "gankit.sampling": ("gankit.app.sample", "gankit.rundir.generators"),
    "gankit.report": ("gankit.app.report", "gankit.util.machine"),
    "gankit.sweep": ("gankit.app.sweep",),
    "gankit.images": ("gankit.util.images",),
    "gankit.progress": ("gankit.util.progress",),
    "gankit.machine": ("gankit.util.machine",),
}
"""Each moved module and where its names went (CHANGELOG, 0.5.0, lists every move)."""

# names a package's old flat module exported, for the packages that kept the old name
PACKAGES: dict[str, tuple[str, ...]] = {
    "gankit.recipe": ("gankit.recipe.validation", "gankit.recipe.overrides",
                      "gankit.recipe.schema"),
    "gankit.evaluation": ("gankit.evaluation.features", "gankit.evaluation.sources",
                          "gankit.app.evaluate"),
}


def lookup(old: str, name: str, stacklevel: int = 3):
    """``name`` from where the old module ``old`` moved it, with a DeprecationWarning."""
    homes = MOVED.get(old) or PACKAGES.get(old) or ()
    for home in homes:
        try:
            module = importlib.import_module(home)
        except ModuleNotFoundError as err:
            if err.name != home:
                raise
            continue
        if hasattr(module, name):
            warnings.warn(f"{old}.{name} moved to {home}.{name}; the old path goes in gankit 0.6",
                          DeprecationWarning, stacklevel=stacklevel)
            return getattr(module, name)
    raise AttributeError(f"module {old!r} has no attribute {name!r}")


class _Moved(types.ModuleType):
    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return lookup(self.__name__, name)

    def __dir__(self):
        names: set[str] = set()
        for home in MOVED[self.__name__]:
            try:
                names.update(n for n in dir(importlib.import_module(home)) if not n.startswith("_"))
            except ModuleNotFoundError:
                pass
        return sorted(names)


class _Loader(importlib.abc.Loader):
    def create_module(self, spec):
        warnings.warn(f"the module {spec.name} moved to {MOVED[spec.name][0]}; the old path "
                      f"goes in gankit 0.6", DeprecationWarning, stacklevel=2)
        return _Moved(spec.name, f"moved to {', '.join(MOVED[spec.name])}")

    def exec_module(self, module):
        pass


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED:
            return importlib.machinery.ModuleSpec(fullname, _Loader())
        return None


def install() -> None:
    """Put the finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
