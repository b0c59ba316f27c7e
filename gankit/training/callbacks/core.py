"""The base of the built-in callbacks."""

from __future__ import annotations

from gankit.interfaces import Callback


class CoreCallback(Callback):
    """A built-in callback: configured by the trainer, not by a recipe section."""

    def __init__(self) -> None:  # noqa: D107 - no recipe parameters
        self.config = {}

    def needs_boundary(self, step: int) -> bool:
        """Built-ins read only a step's logs and images unless they say otherwise (grids,
        checkpoints and metrics need the models at their steps)."""
        return False
