"""Loading, overriding and validating YAML recipes.

A recipe names one component per kind and the training settings::

    generator:     {type: frog_dcgan, latent_dim: 32}
    discriminator: {type: frog_dcgan}
    dataset:       {type: cifar10, label: frog}
    strategy:      {type: alternating}
    train:         {steps: 1000, batch_size: 2, seed: 0, ...}

Validation is strict and needs no TensorFlow: every key is checked against what the named
component declares, and every error names the recipe file and the key's full path.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from gankit.errors import RecipeError, did_you_mean
from gankit.interfaces import Component
from gankit.params import Param, check_params
from gankit.registry import Registration, Registry

COMPONENT_SECTIONS = ("generator", "discriminator", "dataset", "strategy")
"""The component kinds every recipe must name, in build order."""

TRAIN_PARAMS: dict[str, Param] = {
    "steps": Param(int, min=1,
                   doc="number of training steps (one discriminator and one generator update each)"),
    "batch_size": Param(int, 2, min=1, doc="real images per step (the discriminator also sees as many fakes)"),
    "seed": Param(int, 0, min=0, doc="seed for weights, latents, label noise, dropout and shuffling"),
    "shuffle": Param(bool, False, doc="visit the data in a seeded random order each epoch instead of in order"),
    "sample_every": Param(int, 2, min=1, doc="steps between saving a generated and a real image and logging losses"),
    "grid_every": Param(int, 100, min=1, doc="steps between grids of a fixed batch of latents (also at the last step)"),
    "grid_size": Param(int, 8, min=1, max=32, doc="the grid is grid_size x grid_size images"),
    "checkpoint_every": Param(int, 100, min=1, doc="steps between checkpoints (also at the last step)"),
    "keep_checkpoints": Param(int, 3, min=1, doc="how many of the newest checkpoints to keep"),
    "xla": Param(str, "auto", choices=("auto", "on", "off"),
                 doc="XLA compilation: on compiles the whole step, off nothing, auto only the "
                     "optimizer updates (measured fastest on CPU). With on, TensorFlow draws "
                     "other random numbers for the same seed, so runs differ from off/auto"),
    "deterministic": Param(bool, True, doc="turn on TensorFlow op determinism (bit-identical reruns)"),
}
"""The keys of the ``train`` section."""

TOP_LEVEL = {"name": Param(str, None, nullable=True, doc="a name for runs of this recipe"),
             "description": Param(str, None, nullable=True, doc="free text")}


@dataclass(frozen=True)
class TrainConfig:
    """The validated ``train`` section."""

    steps: int
    batch_size: int
    seed: int
    shuffle: bool
    sample_every: int
    grid_every: int
    grid_size: int
    checkpoint_every: int
    keep_checkpoints: int
    xla: str
    deterministic: bool


assert {f.name for f in fields(TrainConfig)} == set(TRAIN_PARAMS)


@dataclass(frozen=True)
class ComponentSpec:
    """A validated component section: what to build and with which parameters."""

    kind: str
    type: str
    registration: Registration
    config: dict[str, Any]

    def create(self) -> Component:
        """Instantiate the component class (no model is built yet)."""
        return self.registration.component(**self.config)


@dataclass(frozen=True)
class Recipe:
    """A validated recipe, complete with every default."""

    source: str
    name: str
    components: dict[str, ComponentSpec]
    train: TrainConfig
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The resolved recipe as plain data (what a run directory stores)."""
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        for kind, spec in self.components.items():
            out[kind] = {"type": spec.type, **spec.config}
        out["train"] = asdict(self.train)
        return out

    def digest(self) -> str:
        """A stable hash of the resolved recipe, stored with checkpoints."""
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


# --- YAML ------------------------------------------------------------------------------

class _RecipeLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 scalars (``8e-4`` is a float; only true/false are booleans,
    so ``xla: off`` stays the string 'off') that rejects duplicate keys."""


_BOOL = "tag:yaml.org,2002:bool"
_RecipeLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_RecipeLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))

_FLOAT = re.compile(r"^[-+]?(?:\d[\d_]*)?(?:\.\d*)?(?:[eE][-+]?\d+)$|^[-+]?\d[\d_]*\.\d*$")
_RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def _construct_mapping(loader: _RecipeLoader, node: yaml.MappingNode) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}' (first at line {seen[key] + 1})",
                key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node)


_RecipeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text the way recipes are read; errors become :class:`RecipeError`."""
    try:
        return yaml.load(text, Loader=_RecipeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RecipeError(f"not valid YAML{where}: {problem}", source=source) from None


def load_raw(path: str | Path) -> dict[str, Any]:
    """Read a recipe file into a plain mapping (not yet validated)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError("recipe file not found", source=str(path)) from None
    except IsADirectoryError:
        raise RecipeError("is a directory, expected a recipe .yaml file", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"cannot read the recipe: {exc}", source=str(path)) from None
    data = parse_yaml(text, str(path))
    if data is None:
        raise RecipeError("the recipe is empty", source=str(path))
    if not isinstance(data, dict):
        raise RecipeError("a recipe must be a mapping of sections (generator, discriminator, "
                          "dataset, strategy, train)", source=str(path))
    return data


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str], source: str = "--set") -> dict:
    """Apply ``key.path=VALUE`` overrides (values are YAML) to a copy of ``raw``."""
    data = _deep_copy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise RecipeError(f"expected KEY=VALUE (e.g. train.steps=20), got '{item}'",
                              source=source)
        parts = key.split(".")
        if any(not p for p in parts):
            raise RecipeError(f"malformed key path '{key}'", source=source)
        value = parse_yaml(text, f"{source} {key}") if text.strip() else ""
        node = data
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise RecipeError(f"cannot set '{key}': '{'.'.join(parts[:depth + 1])}' is not a "
                                  f"section", source=source)
            node = child
        node[parts[-1]] = value
    return data


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


# --- validation -------------------------------------------------------------------------

def validate(raw: Mapping[str, Any], registry: Registry, *, source: str = "<recipe>",
             default_name: str = "recipe") -> Recipe:
    """Check a raw recipe mapping against the registry and return the resolved :class:`Recipe`.

    Raises:
        RecipeError: the first problem found, with the file, the key path and what to do.
    """
    allowed = list(TOP_LEVEL) + list(COMPONENT_SECTIONS) + ["train"]
    for key in raw:
        if key not in allowed:
            raise RecipeError(f"unknown section{did_you_mean(str(key), allowed)}; "
                              f"valid sections: {', '.join(allowed)}", path=str(key), source=source)
    top = check_params(TOP_LEVEL, {k: raw[k] for k in TOP_LEVEL if k in raw}, "", source=source)
    missing = [k for k in (*COMPONENT_SECTIONS, "train") if k not in raw]
    if missing:
        raise RecipeError(f"missing section(s): {', '.join(missing)}", source=source)

    components = {kind: _validate_component(kind, raw[kind], registry, source)
                  for kind in COMPONENT_SECTIONS}
    train_raw = raw["train"]
    if not isinstance(train_raw, dict):
        raise RecipeError("expected a mapping of training settings", path="train", source=source)
    train = TrainConfig(**check_params(TRAIN_PARAMS, train_raw, "train", source=source))
    recipe = Recipe(source=source, name=top["name"] or default_name, components=components,
                    train=train, description=top["description"])
    _check_shapes(recipe)
    return recipe


def _validate_component(kind: str, section: Any, registry: Registry, source: str) -> ComponentSpec:
    if isinstance(section, str):  # `generator: frog_dcgan` is shorthand for {type: frog_dcgan}
        section = {"type": section}
    if not isinstance(section, dict):
        raise RecipeError(f"expected a mapping with a 'type' key, got {type(section).__name__}",
                          path=kind, source=source)
    if "type" not in section:
        names = ", ".join(registry.names(kind)) or "none installed"
        raise RecipeError(f"missing 'type': name the {kind} to use ({names})",
                          path=f"{kind}.type", source=source)
    name = section["type"]
    if not isinstance(name, str):
        raise RecipeError(f"expected a component name (a string), got {name!r}",
                          path=f"{kind}.type", source=source)
    reg = registry.get(kind, name, path=f"{kind}.type", source=source)
    given = {k: v for k, v in section.items() if k != "type"}
    config = check_params(reg.component.params, given, kind,
                          removed=reg.component.removed_params, source=source)
    return ComponentSpec(kind=kind, type=name, registration=reg, config=config)


def _check_shapes(recipe: Recipe) -> None:
    """The generator's images, the discriminator's input and the data must agree."""
    shapes = {}
    for kind in ("generator", "discriminator", "dataset"):
        try:
            shapes[kind] = tuple(recipe.components[kind].create().image_shape)
        except RecipeError as err:
            err.source = err.source or recipe.source
            raise
    if len(set(shapes.values())) > 1:
        listing = ", ".join(f"{k} {list(v)}" for k, v in shapes.items())
        raise RecipeError(f"image shapes disagree: {listing}; set the height, width and "
                          f"channels of each to the same values", source=recipe.source)


def load_recipe(path: str | Path, overrides: Sequence[str] = (), *,
                registry: Registry | None = None) -> Recipe:
    """Read, override and validate a recipe file.

    Args:
        path: the recipe's YAML file.
        overrides: ``key.path=VALUE`` strings, applied before validation.
        registry: where components are looked up; defaults to the installed plugins.
    """
    if registry is None:
        from gankit.plugins import default_plugins
        registry = default_plugins().registry
    raw = apply_overrides(load_raw(path), overrides)
    return validate(raw, registry, source=str(path), default_name=Path(path).stem)
