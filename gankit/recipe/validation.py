"""Loading, overriding and validating YAML recipes.

A recipe chooses one component per section of :data:`gankit.plugin.kinds.KINDS` and sets the
training loop::

    generator:     {type: dcgan, latent_dim: 128}
    discriminator: {type: dcgan, spectral_norm: true}
    dataset:       {type: image_folder, path: frogs/}
    loss:          hinge
    regularizers:  [{type: r1, gamma: 1.0, every: 16}]
    augmenter:     {type: diffaugment, policy: [color, translation, cutout]}
    optimizers:    {generator: {type: Adam, learning_rate: 2.0e-4, beta_1: 0.0}, ...}
    ema:           {decay: 0.999}
    strategy:      {type: gan, d_steps: 1}
    train:         {steps: 1000, batch_size: 64, seed: 0, ...}

Validation is strict and needs no TensorFlow: every key is checked against what the named
component declares, every component is constructed (so its own checks run), and then each
one checks the settings that span sections. Every error names the recipe file and the key's
full path.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from gankit.errors import RecipeError, did_you_mean
from gankit.interfaces import Component, Discriminator
from gankit.params import check_params
from gankit.plugin.kinds import KINDS, Kind, section_path
from gankit.plugin.registry import ComponentSpec, Registry, resolve, using_registry
from gankit.recipe.overrides import _describe, apply_overrides, overridden_keys  # noqa: F401
from gankit.recipe.schema import (  # noqa: F401
    _RUN_NAME,
    EMA_PARAMS,
    MAX_STEPS,
    METRICS_PARAMS,
    TOP_LEVEL,
    TRAIN_PARAMS,
    UNTRACKED_TRAIN_KEYS,
    EMAConfig,
    MetricsConfig,
    TrainConfig,
)
from gankit.recipe.strict_yaml import load_raw, parse_yaml  # noqa: F401  (re-exported)


@dataclass(frozen=True)
class Recipe:
    """A validated recipe, complete with every default.

    Attributes:
        sections: by kind name: a :class:`ComponentSpec` (``one``), a list of them
            (``list``), or a mapping role -> spec (``roles``).
    """

    source: str
    name: str
    sections: dict[str, Any]
    train: TrainConfig
    ema: EMAConfig | None = None
    description: str | None = None
    registry: Registry | None = field(default=None, compare=False, repr=False)
    metrics: MetricsConfig | None = None

    @property
    def components(self) -> dict[str, ComponentSpec]:
        """The single-component sections by kind (generator, discriminator, dataset, ...)."""
        return {k: v for k, v in self.sections.items() if isinstance(v, ComponentSpec)}

    def spec(self, kind: str) -> ComponentSpec:
        """The spec of a single-component kind."""
        return self.sections[kind]

    def create(self, kind: str) -> Any:
        """Instantiate a kind's component(s): one, a list, or a mapping by role."""
        value = self.sections[kind]
        with using_registry(self.registry):
            if isinstance(value, list):
                return [s.create() for s in value]
            if isinstance(value, dict):
                return {role: s.create() for role, s in value.items()}
            return value.create()

    def to_dict(self) -> dict[str, Any]:
        """The resolved recipe as plain data (what a run directory stores)."""
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        for kind in KINDS:
            value = self.sections.get(kind.name)
            if value is None or not kind.section:
                continue
            if isinstance(value, list):
                out[kind.section] = [s.to_dict() for s in value]
            elif isinstance(value, dict):
                out[kind.section] = {role: s.to_dict() for role, s in value.items()}
            else:
                out[kind.section] = value.to_dict()
        out["ema"] = asdict(self.ema) if self.ema else None
        if self.ema and self.ema.rampup is None:  # the recipes (and digests) before rampup
            del out["ema"]["rampup"]
        if self.metrics:
            out["metrics"] = asdict(self.metrics)
        out["train"] = asdict(self.train)
        return out

    def digest(self) -> str:
        """A stable hash of the resolved recipe, stored with checkpoints (the
        :data:`UNTRACKED_TRAIN_KEYS` are left out: a run may be extended, and neither the
        steps per call nor the time budget changes what it computes)."""
        data = self.to_dict()
        data["train"] = {k: v for k, v in data["train"].items()
                         if k not in UNTRACKED_TRAIN_KEYS}
        loss = data.get("loss")
        if isinstance(loss, dict):  # keys added later, at their defaults: digests of older runs
            for key, default in _LATER_LOSS_KEYS.items():
                if loss.get(key) == default:
                    loss.pop(key)
        text = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


_LATER_LOSS_KEYS = {"label_smoothing": 0.0}
"""Loss parameters added in 0.5.0, left out of the digest at their default so that a run
made by 0.4 resumes without ``--force``."""


# --- validation -------------------------------------------------------------------------

def validate(raw: Mapping[str, Any], registry: Registry, *, source: str = "<recipe>",
             default_name: str = "recipe", base_dir: str | Path | None = None,
             cwd_keys: set[str] = frozenset()) -> Recipe:
    """Check a raw recipe mapping against the registry and return the resolved :class:`Recipe`.

    Args:
        raw: the parsed YAML (after overrides).
        registry: where components are looked up.
        source: the recipe file, for messages.
        default_name: the run name when the recipe has no ``name``.
        base_dir: relative paths in the recipe (``dataset.path``) are resolved against this
            folder (the recipe's own); None leaves them as written.
        cwd_keys: key paths set on the command line: relative paths there are resolved
            against the current directory instead.

    Raises:
        RecipeError: the first problem found, with the file, the key path and what to do.
    """
    allowed = list(TOP_LEVEL) + [k.section for k in KINDS if k.section] + ["ema", "metrics",
                                                                          "train"]
    for key in raw:
        if key not in allowed:
            raise RecipeError(f"unknown section{did_you_mean(str(key), allowed)}; "
                              f"valid sections: {', '.join(allowed)}", path=str(key), source=source)
    top = check_params(TOP_LEVEL, {k: raw[k] for k in TOP_LEVEL if k in raw}, "", source=source)
    name = top["name"] or default_name
    if not _RUN_NAME.match(name):
        raise RecipeError(f"expected a name of letters, digits, '.', '_' or '-' (at most 100, "
                          f"not starting with '.' or '-'; it names the run directory), got "
                          f"{name!r}", path="name" if top["name"] else None, source=source)
    missing = [k.section for k in KINDS if k.section and k.required and k.section not in raw]
    if missing or "train" not in raw:
        absent = missing + (["train"] if "train" not in raw else [])
        raise RecipeError(f"missing section(s): {', '.join(absent)}",
                          source=source)

    sections: dict[str, Any] = {}
    for kind in KINDS:
        if kind.section:
            value = raw.get(kind.section, {} if kind.shape == "roles" else kind.default)
            sections[kind.name] = _validate_section(kind, value, registry, source)
    sections = _resolve_paths(sections, base_dir, cwd_keys)
    train_raw = raw["train"]
    if not isinstance(train_raw, dict):
        raise RecipeError("expected a mapping of training settings", path="train", source=source)
    train_values = check_params(TRAIN_PARAMS, train_raw, "train", source=source)
    from gankit.recipe import distribute  # devices and machines: docs/scaling.md

    train_values["distribute"] = distribute.check_distribute(train_values["distribute"],
                                                             source=source)
    train = TrainConfig(**train_values)
    distribute.check_train(train, source)
    ema = None
    if raw.get("ema") is not None:
        if not isinstance(raw["ema"], dict):
            raise RecipeError("expected a mapping {decay: ..., start: ...} or null", path="ema",
                              source=source)
        ema = EMAConfig(**check_params(EMA_PARAMS, raw["ema"], "ema", source=source))
    metrics = None
    if raw.get("metrics") is not None:
        if not isinstance(raw["metrics"], dict):
            raise RecipeError("expected a mapping {use: [fid, ...], every: ..., ...} or null",
                              path="metrics", source=source)
        with using_registry(registry):
            metrics = MetricsConfig(**check_params(METRICS_PARAMS, raw["metrics"], "metrics",
                                                   source=source))
    recipe = Recipe(source=source, name=name, sections=sections, train=train, ema=ema,
                    description=top["description"], registry=registry, metrics=metrics)
    _check_whole(recipe)
    if metrics is not None:
        with using_registry(registry):
            _check_metrics(recipe)
    return recipe


def _check_metrics(recipe: Recipe) -> None:
    """At least one metric, each fits the recipe (its ``check_recipe``: a per-class metric
    needs labelled data), and ``best`` names a value one of them gives."""
    from gankit.interfaces.metric_names import value_names
    from gankit.plugin.manager import create

    metrics, source = recipe.metrics, recipe.source
    if not metrics.use:
        raise RecipeError("expected at least one metric (e.g. [fid]); leave the section out "
                          "for none", path="metrics.use", source=source)
    components = [create("metric", m, f"metrics.use[{i}]") for i, m in enumerate(metrics.use)]
    for i, metric in enumerate(components):
        try:
            metric.check_recipe(recipe, f"metrics.use[{i}]")
        except RecipeError as err:
            err.source = err.source or source
            raise
    per_class = any(m.needs_labels for m in components)
    classes = recipe.create("dataset").class_names if per_class else None
    pairs = value_names(components, classes)
    names = [name for _, name in pairs]
    seen: dict[str, int] = {}
    for metric, name in pairs:
        index = next(i for i, m in enumerate(components) if m is metric)
        if name in seen:
            first = seen[name]
            what = ("is listed twice" if metrics.use[first] == metrics.use[index] else
                    f"gives the value {name!r}, as metrics.use[{first}] does")
            raise RecipeError(f"metrics.use[{index}] {what}: each value is one column of "
                              f"losses.csv; remove one", path="metrics.use", source=source)
        seen[name] = index
    reserved = {"step", "d_loss", "g_loss"} & set(names)
    if reserved:
        raise RecipeError(f"a metric gives the value {sorted(reserved)[0]!r}, which is a "
                          f"column training writes itself", path="metrics.use", source=source)
    if metrics.best is not None and metrics.best not in names:
        raise RecipeError(f"'{metrics.best}' is not a value of the metrics"
                          f"{did_you_mean(metrics.best, names)}; they give: {', '.join(names)}",
                          path="metrics.best", source=source)


def _validate_section(kind: Kind, value: Any, registry: Registry, source: str) -> Any:
    if kind.shape == "list":
        if value is None:
            return []
        if not isinstance(value, list):
            raise RecipeError(f"expected a list of {kind.name}s ([{{type: NAME, ...}}, ...]), "
                              f"got {_describe(value)}", path=kind.section, source=source)
        return [resolve(registry, kind.name, item, section_path(kind, i), source)
                for i, item in enumerate(value)]
    if kind.shape == "roles":
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise RecipeError(f"expected a mapping of {', '.join(kind.roles)} to one {kind.name} "
                              f"each, got {_describe(value)}", path=kind.section, source=source)
        for role in value:
            if role not in kind.roles:
                raise RecipeError(f"unknown role{did_you_mean(str(role), kind.roles)}; valid: "
                                  f"{', '.join(kind.roles)}", path=f"{kind.section}.{role}",
                                  source=source)
        return {role: resolve(registry, kind.name, value.get(role, kind.default),
                              section_path(kind, role), source) for role in kind.roles}
    if value is None:
        raise RecipeError(f"expected a {kind.name} ({{type: NAME, ...}} or NAME), got null",
                          path=kind.section, source=source)
    return resolve(registry, kind.name, value, kind.section, source)


def _resolve_paths(sections: dict[str, Any], base_dir, cwd_keys: set[str]) -> dict[str, Any]:
    """Make the relative ``path`` parameters of components absolute."""
    if base_dir is None:
        return sections

    def given_here(full: str) -> bool:
        # set on the command line: that key, or a section or list above it (the keys are
        # dotted, list items by their index: ``discriminator.members.1.backbone``)
        full = re.sub(r"\[(\d+)\]", r".\1", full)
        return any(full == k or full.startswith(f"{k}.") for k in cwd_keys)

    def fix(spec: ComponentSpec) -> ComponentSpec:
        # a key given with --set is relative to the current directory, the others to the file
        # (``key`` may be nested: ``members[1].backbone``)
        return spec.with_absolute_paths(
            lambda key: Path.cwd() if given_here(f"{spec.path}.{key}") else Path(base_dir))

    out: dict[str, Any] = {}
    for name, value in sections.items():
        if isinstance(value, list):
            out[name] = [fix(s) for s in value]
        elif isinstance(value, dict):
            out[name] = {role: fix(s) for role, s in value.items()}
        else:
            out[name] = fix(value)
    return out


def _instances(recipe: Recipe) -> list[tuple[str, Component]]:
    """Every component of the recipe, constructed (its constructor's checks run), by path."""
    found: list[tuple[str, Component]] = []
    for kind in KINDS:
        value = recipe.sections.get(kind.name)
        specs = (value if isinstance(value, list) else list(value.values())
                 if isinstance(value, dict) else [value] if value is not None else [])
        for spec in specs:
            try:
                found.append((spec.path, spec.create()))
            except RecipeError as err:
                err.source = err.source or recipe.source
                if err.path and not err.path.startswith(spec.path):
                    err.path = f"{spec.path}.{err.path.split('.', 1)[-1]}"
                raise
    return found


def _check_whole(recipe: Recipe) -> None:
    """Checks that need more than one section: shapes, the loss against the discriminator's
    output, and each component's own :meth:`~gankit.interfaces.Component.check_recipe`."""
    parts = _instances(recipe)
    by_path = dict(parts)
    shapes = {p: tuple(by_path[p].image_shape) for p in ("generator", "discriminator", "dataset")}
    if len(set(shapes.values())) > 1:
        listing = ", ".join(f"{k} {list(v)}" for k, v in shapes.items())
        raise RecipeError(f"image shapes disagree: {listing}; set the height, width and "
                          f"channels of each to the same values", source=recipe.source)
    _check_classes(recipe, by_path)
    loss, disc = by_path["loss"], by_path["discriminator"]
    wants = {"probability": "sigmoid", "logit": "linear"}.get(loss.expects)
    if wants != disc.output_activation:
        has = {"sigmoid": "probabilities (a sigmoid output)",
               "linear": "logits (a linear output)"}.get(disc.output_activation,
                                                         repr(disc.output_activation))
        raise RecipeError(
            f"the loss '{recipe.spec('loss').type}' expects {loss.expects}s, but the "
            f"discriminator '{recipe.spec('discriminator').type}' outputs {has}; choose a loss "
            f"for that output (e.g. bce with from_logits: {str(loss.expects == 'probability').lower()}"
            f", or hinge/non_saturating/wasserstein for logits)", path="loss", source=recipe.source)
    for path, component in parts:
        try:
            with using_registry(recipe.registry):
                component.check_recipe(recipe, path)
        except RecipeError as err:
            err.source = err.source or recipe.source
            raise


def _check_classes(recipe: Recipe, by_path: dict[str, Component]) -> None:
    """Class-conditional models and the dataset's labels agree: the generator and the
    discriminator take as many classes (``num_classes``; 0 is unconditional), conditional
    models get a labelled dataset of exactly that many classes, and a dataset asked for
    labels (``labels: true``) gets conditional models.

    A dataset without a ``labels`` parameter is labelled when it names its classes; its
    labels are then simply not used by unconditional models. When the dataset cannot name its
    classes without data that is missing (``class_names`` raises), only the count is left
    unchecked: ``gankit run`` reports the missing data itself.
    """
    from gankit.errors import DatasetError

    def key(kind: str, name: str) -> str | None:
        spec = recipe.spec(kind)
        return f"{kind}.{name}" if name in spec.registration.component.params else None

    def fail(message: str, *paths: str | None) -> None:
        raise RecipeError(message, path=next((p for p in paths if p), None),
                          source=recipe.source)

    gen, disc, data = by_path["generator"], by_path["discriminator"], by_path["dataset"]
    classes = gen.num_classes
    g_key, d_key = key("generator", "num_classes"), key("discriminator", "num_classes")
    if classes != disc.num_classes:
        # A model without the key cannot be conditioned, unless its classes come from its
        # parts (it overrides num_classes, as an ensemble takes its members').
        def unable_phrase(kind: str, model) -> str:
            # (generators and discriminators share the default property)
            if type(model).num_classes is not Discriminator.num_classes:
                return (f"the {kind} '{recipe.spec(kind).type}' takes its classes from its "
                        f"parts (their num_classes)")
            return (f"the {kind} '{recipe.spec(kind).type}' cannot be conditioned (it has no "
                    f"num_classes)")

        unable = next((unable_phrase(kind, model) for kind, k, model in
                       (("generator", g_key, gen), ("discriminator", d_key, disc)) if not k),
                      None)
        fail(f"the generator is conditioned on {classes} classes but the discriminator on "
             f"{disc.num_classes}" + (f": {unable}" if unable else "; set generator.num_classes "
                                      "and discriminator.num_classes to the same number"),
             d_key, g_key)
    labels_key = key("dataset", "labels")
    try:
        names = data.class_names
    except (DatasetError, OSError):
        names = None  # unknown until the data exists
    else:
        names = None if names is None else tuple(names)
    asked = bool(recipe.spec("dataset").config["labels"]) if labels_key else None
    labelled = asked if asked is not None else names is not None
    dataset = f"the dataset '{recipe.spec('dataset').type}'"
    if classes and not labelled:
        fail(f"the generator and discriminator are conditioned on {classes} classes "
             f"(num_classes) but {dataset} gives no labels; "
             + ("set dataset.labels: true" if labels_key else "choose a labelled dataset")
             + ", or num_classes: 0 on both models for an unconditional GAN",
             labels_key, g_key)
    if asked and not classes:
        count = f" of {len(names)} classes" if names else ""
        fail(f"{dataset} gives labels{count} (labels: true) but the generator and "
             f"discriminator are unconditional (num_classes 0); set generator.num_classes and "
             f"discriminator.num_classes to {len(names) if names else 'the number of classes'}"
             f", or dataset.labels: false", labels_key)
    if classes and names is not None and len(names) != classes:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        fail(f"expected the number of classes of {dataset} ({len(names)}"
             f"{': ' + shown if names else ''}), got "
             f"{classes}; set generator.num_classes and discriminator.num_classes to "
             f"{len(names)}", g_key, d_key)


def load_recipe(path: str | Path, overrides: Sequence[str] = (), *,
                registry: Registry | None = None) -> Recipe:
    """Read, override and validate a recipe file.

    Args:
        path: the recipe's YAML file; relative paths inside it are relative to its folder.
        overrides: ``key.path=VALUE`` strings, applied before validation; relative paths in
            them are relative to the current directory.
        registry: where components are looked up; defaults to the installed plugins.
    """
    if registry is None:
        from gankit.plugin.manager import default_plugins
        registry = default_plugins().registry
    raw = apply_overrides(load_raw(path), overrides)
    return validate(raw, registry, source=str(path), default_name=_default_name(path),
                    base_dir=Path(path).resolve().parent, cwd_keys=overridden_keys(overrides))


def _default_name(path: str | Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(path).stem).lstrip(".-") or "recipe"
    return stem[:100]
