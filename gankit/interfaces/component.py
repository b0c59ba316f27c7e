"""The base of every registered component: declared parameters and a config round trip."""

from __future__ import annotations

import abc
from typing import Any, ClassVar, Mapping, Protocol

from gankit.params import Param, check_params


class RecipeView(Protocol):
    """What :meth:`Component.check_recipe` may read of a validated recipe (the contract's
    view of :class:`gankit.recipe.validation.Recipe`, which the config layer implements)."""

    sections: Mapping[str, Any]
    """Every resolved section by its kind (``generator``, ``loss``, ``regularizer``, ...)."""

    @property
    def train(self) -> Any:
        """The ``train`` section: ``steps``, ``batch_size``, ``seed``, ``precision``, ..."""


class Component(abc.ABC):
    """Base of every registered component.

    Class attributes:
        kind: the registry kind (``"generator"``, ``"loss"``, ...), set by the interface.
        params: the declared parameters (name -> :class:`~gankit.params.Param`).
        removed_params: legacy parameter names mapped to what to use instead; a recipe that
            uses one gets an error carrying that text.

    The constructor takes exactly the declared parameters (checked, completed with
    defaults), so any component can be built and unit-tested alone. A constructor may raise
    :class:`gankit.errors.RecipeError` for a combination of its own parameters that is
    wrong; :meth:`check_recipe` sees the whole recipe for settings that span sections.
    """

    kind: ClassVar[str]
    params: ClassVar[Mapping[str, Param]] = {}
    removed_params: ClassVar[Mapping[str, str]] = {}

    def __init__(self, **config: Any) -> None:
        self.config: dict[str, Any] = check_params(
            self.params, config, type(self).__name__, removed=self.removed_params)

    def get_config(self) -> dict[str, Any]:
        """The complete parameters, such that ``type(self).from_config(cfg)`` rebuilds it."""
        return dict(self.config)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Component:
        """Build the component from the output of :meth:`get_config`."""
        return cls(**config)

    def check_recipe(self, recipe: RecipeView, path: str) -> None:
        """Check settings that span sections of a validated recipe (no TensorFlow).

        Called by recipe validation after every section was checked on its own, so that
        ``gankit validate`` reports the mistake as one line before anything is built.

        Args:
            recipe: the whole recipe, every section resolved.
            path: this component's key path in it (``"strategy"``, ``"regularizers[1]"``).

        Raises:
            gankit.errors.RecipeError: naming the key path and what to change.
        """

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({args})"
