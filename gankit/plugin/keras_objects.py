"""Loading saved Keras models with the Keras objects the plugins declare.

A plugin whose models use classes or functions of its own (custom layers) declares them in
its ``gankit_keras_objects`` hook (:mod:`gankit.plugin.spec`). gankit calls that hook only
here, when it loads a saved model, so no plugin needs Keras at import time; every place
gankit loads a ``.keras`` file goes through :func:`load_keras_model`, which passes the
objects of all loaded plugins to ``keras.saving.load_model`` as ``custom_objects``.

When a model does not load because a class is missing, the error names the class, the
module it came from (read from the ``.keras`` archive's ``config.json``) and the plugin or
distribution that should declare it. :func:`saved_objects` lists what a saved model needs
beyond Keras itself.

Nothing here imports TensorFlow or Keras until a model is loaded.
"""

from __future__ import annotations

import importlib.util
import re
import zipfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from gankit.errors import GankitError
from gankit.plugin.manager import DISABLE_ENV, LoadedPlugins, PluginInfo, default_plugins
from gankit.util.safe_read import UnsafeFileError, loads_json

HOOK = "gankit_keras_objects"
GUIDE = "docs/writing-plugins.md, 'Custom Keras layers'"

KERAS_PACKAGES = frozenset({"keras", "keras_hub", "keras_cv", "keras_nlp"})
"""Packages whose objects Keras finds by itself (it imports them by their saved module)."""

_BUILTIN_FUNCTION_MODULES = ("activations", "constraints", "initializers", "losses", "metrics",
                             "optimizers", "regularizers")
_MAX_CONFIG_BYTES = 64 * 1024 * 1024
_MAX_CONFIG_DEPTH = 512


class ModelLoadError(GankitError):
    """A saved Keras model could not be loaded: ``cannot load PATH: REASON``, one line.

    Attributes:
        path: the file.
        reason: why, without the path.
        missing: the :class:`SavedObject` s it needs that no loaded plugin declares.
    """

    def __init__(self, path: str | Path, reason: str, missing: tuple = ()) -> None:
        super().__init__(f"cannot load {path}: {reason}")
        self.path = Path(path)
        self.reason = reason
        self.missing = tuple(missing)


@dataclass(frozen=True)
class SavedObject:
    """A class or function a saved model's config names that Keras does not provide."""

    name: str
    """The class name, or the function's name."""
    lookup_name: str
    """The name Keras looks it up by: its registered name (``package>Name``) or its name."""
    module: str | None
    """The module it was defined in; None for a script's ``__main__``."""
    kind: str = "class"
    """``class`` or ``function``."""

    @property
    def package(self) -> str | None:
        """The top-level package of :attr:`module`."""
        return self.module.split(".")[0] if self.module else None

    def describe(self) -> str:
        saved = f"saved as '{self.lookup_name}', " if self.lookup_name != self.name else ""
        where = f"from module '{self.module}'" if self.module else "defined in a script"
        return f"the Keras {self.kind} '{self.name}' ({saved}{where})"


@dataclass
class KerasObjects:
    """What the loaded plugins' ``gankit_keras_objects`` hooks declare."""

    objects: dict[str, Any] = field(default_factory=dict)
    """Lookup name -> object, for ``custom_objects``."""
    owners: dict[str, list[str]] = field(default_factory=dict)
    """Lookup name -> the plugins that declare an object under it."""
    ambiguous: dict[str, list[str]] = field(default_factory=dict)
    """Names two plugins declare for different objects (left out of :attr:`objects`)."""
    problems: dict[str, str] = field(default_factory=dict)
    """Plugin name -> why (part of) its hook's answer was not used."""


def declared_objects(plugins: LoadedPlugins | None = None) -> KerasObjects:
    """Call every loaded plugin's ``gankit_keras_objects`` hook (imports Keras).

    Each object is keyed by its ``__name__`` and by its Keras registered name. A hook that
    raises, or returns something else than classes and functions, is recorded in
    ``problems``; the other plugins' objects are still used.

    Args:
        plugins: the plugins to ask; default: the installed ones
            (:func:`~gankit.plugin.manager.default_plugins`).
    """
    import keras

    loaded = plugins if plugins is not None else default_plugins()
    found = KerasObjects()
    claims: dict[str, list[tuple[str, Any]]] = {}
    manager = loaded.manager
    implementing = {impl.plugin_name for impl in getattr(manager.hook, HOOK).get_hookimpls()}
    for info in loaded.plugins:
        plugin = manager.get_plugin(info.name) if info.status == "loaded" else None
        if plugin is None or info.name not in implementing:
            continue
        others = [p for p in manager.get_plugins() if p is not plugin]
        try:
            answers = manager.subset_hook_caller(HOOK, remove_plugins=others)()
        except Exception as exc:  # noqa: BLE001 - one plugin's hook must not stop the others
            found.problems[info.name] = f"its {HOOK} hook raised {type(exc).__name__}: {exc}"
            continue
        for answer in answers:
            for name, obj, problem in _entries(answer):
                if problem:
                    found.problems[info.name] = f"its {HOOK} hook {problem}"
                    continue
                names = {name, getattr(obj, "__name__", name)}
                try:
                    names.add(keras.saving.get_registered_name(obj))
                except Exception:  # noqa: BLE001 - an object Keras cannot name: its own keys
                    pass
                for key in names:
                    claims.setdefault(key, []).append((info.name, obj))
    for key, claimed in claims.items():
        found.owners[key] = sorted({plugin for plugin, _ in claimed})
        if len({id(obj) for _, obj in claimed}) > 1:
            found.ambiguous[key] = found.owners[key]
        else:
            found.objects[key] = claimed[0][1]
    return found


def custom_objects(plugins: LoadedPlugins | None = None) -> dict[str, Any]:
    """The ``custom_objects`` for ``keras.saving.load_model``: every object the loaded
    plugins declare, by class name and registered name (:func:`declared_objects`)."""
    return declared_objects(plugins).objects


def load_keras_model(path: str | Path, *, plugins: LoadedPlugins | None = None,
                     compile: bool = False) -> Any:
    """Load a saved ``.keras`` model as every gankit command does: with the Keras objects of
    all loaded plugins (their ``gankit_keras_objects`` hooks) as ``custom_objects``.

    Args:
        path: the ``.keras`` file.
        plugins: whose objects to use; default: the installed plugins.
        compile: passed to ``keras.saving.load_model`` (gankit never needs the training
            configuration).

    Raises:
        ModelLoadError: (a :class:`~gankit.errors.GankitError`) one line, ``cannot load PATH:
            reason``. When a class or function is missing, the reason names it, the module
            it came from and the plugin (or distribution) that should declare it.
    """
    import keras

    loaded = plugins if plugins is not None else default_plugins()
    declared = declared_objects(loaded)
    try:
        return keras.models.load_model(path, custom_objects=declared.objects, compile=compile)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for one bad file
        raise load_error(path, exc, declared, loaded) from None


def load_error(path: str | Path, exc: BaseException, declared: KerasObjects,
               plugins: LoadedPlugins) -> ModelLoadError:
    """The one-line error for a model that did not load with ``declared``'s objects."""
    try:
        needed = saved_objects(path)
    except (OSError, KeyError, zipfile.BadZipFile, UnsafeFileError):
        needed = []  # not a readable archive: Keras' own reason says so
    missing = [obj for obj in needed if not _resolves(obj, declared.objects)]
    if not missing:
        return ModelLoadError(path, _first_line(exc))
    first = missing[0]
    more = (f" (and {', '.join(repr(m.name) for m in missing[1:4])}"
            f"{' ...' if len(missing) > 4 else ''})" if len(missing) > 1 else "")
    if first.lookup_name in declared.ambiguous:
        owners = " and ".join(f"'{p}'" for p in declared.ambiguous[first.lookup_name])
        return ModelLoadError(path, f"it uses {first.describe()}{more}, which plugins {owners} "
                                    f"each declare for a different object; register each with "
                                    f"keras.saving.register_keras_serializable(package=...) "
                                    f"so that their saved names differ", missing)
    return ModelLoadError(path, f"it uses {first.describe()}{more}, which no loaded plugin "
                                f"declares; {_who_should(first, declared, plugins)}", missing)


def saved_objects(path: str | Path) -> list[SavedObject]:
    """The classes and functions a saved ``.keras`` model names that are not Keras' own
    (by the ``module`` of each object in the archive's ``config.json``), each once.

    A model built only of Keras layers gives an empty list: it loads in any process.

    Raises:
        OSError, zipfile.BadZipFile, KeyError: the archive is unreadable or has no
            ``config.json``.
        gankit.util.safe_read.UnsafeFileError: its ``config.json`` is not acceptable JSON.
    """
    with zipfile.ZipFile(path) as archive:
        if archive.getinfo("config.json").file_size > _MAX_CONFIG_BYTES:
            raise UnsafeFileError("its config.json is too big")
        config = loads_json(archive.read("config.json"), max_bytes=_MAX_CONFIG_BYTES,
                            max_depth=_MAX_CONFIG_DEPTH)
    found: dict[tuple, SavedObject] = {}
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(reversed(node))
            continue
        if not isinstance(node, dict):
            continue
        entry = _saved_object(node)
        if entry is not None:
            found.setdefault((entry.lookup_name, entry.module, entry.kind), entry)
        stack.extend(reversed(list(node.values())))
    return list(found.values())


def _saved_object(node: dict) -> SavedObject | None:
    """The object a serialised config ``node`` names, if Keras does not provide it."""
    if "class_name" not in node or "module" not in node:
        return None
    module, name = node.get("module"), node.get("class_name")
    if not isinstance(name, str) or not (module is None or isinstance(module, str)):
        return None
    if name == "function":
        function = node.get("config")
        if not isinstance(function, str):
            return None
        if module == "builtins" and _keras_builtin_function(function):
            return None
        if module and module.split(".")[0] in KERAS_PACKAGES:
            return None
        short = function.split(">")[-1]
        return SavedObject(short, function, None if module == "builtins" else module,
                           "function")
    if module is not None and module.split(".")[0] in KERAS_PACKAGES:
        return None
    registered = node.get("registered_name")
    lookup = registered if isinstance(registered, str) and registered else name
    return SavedObject(name, lookup, module)


def _keras_builtin_function(name: str) -> bool:
    """Whether Keras finds a function saved by name alone among its own (``relu``)."""
    if ">" in name:
        return False
    import keras

    return any(hasattr(getattr(keras, module, None), name)
               for module in _BUILTIN_FUNCTION_MODULES)


def _resolves(obj: SavedObject, objects: dict[str, Any]) -> bool:
    """Whether Keras finds ``obj`` with ``objects`` (or its own global registry)."""
    import keras

    return keras.saving.get_registered_object(obj.lookup_name, custom_objects=objects) \
        is not None


def _who_should(obj: SavedObject, declared: KerasObjects, plugins: LoadedPlugins) -> str:
    """Which plugin (or distribution) should declare ``obj``, and what to do."""
    declare = f"return it from that plugin's {HOOK} hook ({GUIDE})"
    other = declared.objects.get(obj.name)
    if other is not None and obj.lookup_name != obj.name:
        owners = " and ".join(f"'{p}'" for p in declared.owners.get(obj.name, []))
        return (f"plugin {owners} declares a '{obj.name}' saved under another name; keep the "
                f"registered name the model was saved with, or return "
                f"{{'{obj.lookup_name}': {obj.name}}} from the {HOOK} hook")
    if obj.module is None:
        return (f"move it from the script into a plugin's module and return it from that "
                f"plugin's {HOOK} hook ({GUIDE})")
    package = obj.package
    owner = _plugin_of(package, plugins)
    if owner is not None:
        named = f"plugin '{owner.name}' (distribution '{owner.distribution}')"
        if owner.status == "disabled":
            return f"it comes from {named}, which {DISABLE_ENV} disables: enable that plugin"
        if owner.status == "failed":
            return f"it comes from {named}, which failed to load: {owner.error}"
        if owner.name in declared.problems:
            return f"it comes from {named}, but {declared.problems[owner.name]}"
        return f"it comes from {named}: {declare}"
    dists = _distributions_of(package)
    if dists:
        shown = " or ".join(f"'{d}'" for d in dists)
        return (f"module '{obj.module}' comes from distribution {shown}, which is no gankit "
                f"plugin: return it from a plugin's {HOOK} hook ({GUIDE})")
    try:
        present = importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        present = False
    if present:
        return (f"module '{obj.module}' belongs to no installed gankit plugin: return it from "
                f"a plugin's {HOOK} hook ({GUIDE})")
    return (f"module '{obj.module}' is not installed here: install the gankit plugin that "
            f"provides it (its {HOOK} hook declares it)")


def distribution_of(obj: SavedObject, plugins: LoadedPlugins | None = None) -> str | None:
    """The distribution (``pip install`` name) that provides ``obj``'s module: the plugin's
    whose code lives in that package, else any installed one that ships it; None if none.
    """
    loaded = plugins if plugins is not None else default_plugins()
    owner = _plugin_of(obj.package, loaded)
    if owner is not None:
        return owner.distribution
    dists = _distributions_of(obj.package)
    return dists[0] if dists else None


def _plugin_of(package: str | None, plugins: LoadedPlugins) -> PluginInfo | None:
    """The plugin whose entry point or components live in ``package``, else the one whose
    distribution provides it."""
    if not package:
        return None
    for info in plugins.plugins:
        modules = [info.entry_point.split(":")[0]]
        modules += [reg.component.__module__ for reg in info.provides]
        if any(m.split(".")[0] == package for m in modules if m):
            return info
    dists = {_normalize(d) for d in _distributions_of(package)}
    return next((info for info in plugins.plugins if _normalize(info.distribution) in dists),
                None)


def _distributions_of(package: str | None) -> list[str]:
    if not package:
        return []
    try:
        return sorted(set(metadata.packages_distributions().get(package, [])))
    except Exception:  # noqa: BLE001 - a broken installation must not hide the real error
        return []


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0][:300] if lines else type(exc).__name__)


def _entries(answer: Any):
    """``(name, object, problem)`` for each object of one hook's answer."""
    if answer is None:
        return
    if isinstance(answer, dict):
        items = list(answer.items())
    elif isinstance(answer, (list, tuple)):
        items = [(getattr(obj, "__name__", None), obj) for obj in answer]
    else:
        yield None, None, (f"returned {type(answer).__name__}; expected a list of classes and "
                           f"functions or a dict of them by name")
        return
    for name, obj in items:
        if not isinstance(name, str) or not name or not callable(obj):
            yield None, None, (f"returned {obj!r} (under {name!r}); expected classes and "
                               f"functions (a dict needs string keys)")
        else:
            yield name, obj, None
