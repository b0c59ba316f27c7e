"""The one table of component kinds.

Every kind gankit knows is declared here once: its interface, the recipe section that
chooses it and the shape of that section. The registry, recipe validation, the generated
reference and ``gankit plugins`` are all driven by this table, so a new kind is one entry.

Section shapes:
    ``one``: a mapping ``{type: NAME, ...params}`` (or just ``NAME``) choosing one component.
    ``list``: a list of such mappings, any number of components (``regularizers``).
    ``roles``: a mapping from a fixed set of roles to one component each (``optimizers``:
        ``generator`` and ``discriminator``); a role left out takes the default.
    ``nested``: no section of its own; components of this kind appear as the value of a
        parameter of another component (a ``learning_rate`` schedule).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gankit.interfaces import (
    Augmenter,
    Callback,
    Component,
    Dataset,
    Discriminator,
    FeatureExtractor,
    Generator,
    Loss,
    Metric,
    Optimizer,
    Regularizer,
    Schedule,
    Strategy,
)
from gankit.params import REQUIRED


@dataclass(frozen=True)
class Kind:
    """One kind of component.

    Attributes:
        name: the kind (``"loss"``), used by ``Component.kind`` and the registry.
        interface: the class its components subclass.
        section: the recipe key that chooses it (None for ``nested`` kinds).
        shape: ``one``, ``list``, ``roles`` or ``nested``.
        default: the section's value when a recipe leaves it out (``REQUIRED``: it must
            be given); for ``roles``, the section given to each role left out.
        roles: the roles of a ``roles`` section, in order.
        doc: one sentence for the reference.
    """

    name: str
    interface: type[Component]
    section: str | None
    shape: str = "one"
    default: Any = REQUIRED
    roles: tuple[str, ...] = ()
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


_ADAM = {"type": "Adam", "learning_rate": 2.0e-4, "beta_1": 0.5, "beta_2": 0.999}

KINDS: tuple[Kind, ...] = (
    Kind("generator", Generator, "generator",
         doc="the model that makes images from latent vectors"),
    Kind("discriminator", Discriminator, "discriminator",
         doc="the model that scores images as real or generated"),
    Kind("dataset", Dataset, "dataset", doc="the real images (and labels)"),
    Kind("loss", Loss, "loss", default="non_saturating",
         doc="the adversarial objective of both models"),
    Kind("regularizer", Regularizer, "regularizers", shape="list", default=[],
         doc="extra terms of the discriminator's loss, any number"),
    Kind("augmenter", Augmenter, "augmenter", default="none",
         doc="a differentiable augmentation of every image the discriminator sees"),
    Kind("optimizer", Optimizer, "optimizers", shape="roles", default=_ADAM,
         roles=("generator", "discriminator"),
         doc="a Keras optimizer for each model"),
    Kind("schedule", Schedule, None, shape="nested", default=None,
         doc="a learning-rate schedule, as an optimizer's learning_rate"),
    Kind("strategy", Strategy, "strategy", default="gan",
         doc="how one training step updates the models from the parts above"),
    Kind("callback", Callback, "callbacks", shape="list", default=[],
         doc="side work run around training steps, any number"),
    Kind("feature_extractor", FeatureExtractor, None, shape="nested", default=None,
         doc="a network whose features metrics compare (metrics.extractor; gankit evaluate "
             "--extractor)"),
    Kind("metric", Metric, None, shape="nested", default=None,
         doc="a number comparing generated and real images (metrics.use; gankit evaluate "
             "--metric)"),
)
"""Every kind, in build order (a recipe's sections are resolved and printed in this order)."""

BY_SECTION: dict[str, Kind] = {k.section: k for k in KINDS if k.section}


def section_path(kind: Kind, index: int | str | None = None) -> str:
    """The key path of a component in a recipe: ``loss``, ``regularizers[1]``,
    ``optimizers.generator``."""
    if kind.shape == "list" and index is not None:
        return f"{kind.section}[{index}]"
    if kind.shape == "roles" and index is not None:
        return f"{kind.section}.{index}"
    return kind.section or kind.name
