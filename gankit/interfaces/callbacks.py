"""Callbacks: the side work of the training loop (logs, samples, checkpoints, metrics)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from gankit.interfaces.component import Component

if TYPE_CHECKING:  # pragma: no cover
    from gankit.training.loop import RunContext


class Callback(Component):
    """Hooks called by the trainer around training steps, in the shape of Keras callbacks.

    The built-in side work (progress, loss log, TensorBoard, samples, grids, checkpoints,
    the NaN guard) is made of callbacks; a recipe's ``callbacks`` section adds registered
    ones. Every hook gets the :class:`~gankit.training.loop.RunContext` through
    :meth:`on_train_begin` (kept as ``self.run``): the run directory, the recipe, the
    models, a TensorBoard writer and a way to print a notice.

    ``logs`` holds the step's metrics as Python floats; a callback may add entries in
    :meth:`on_step_end` (for example a metric computed every N steps) and they are logged
    like the others.
    """

    kind = "callback"
    run: "RunContext"

    def log_columns(self) -> list[str]:
        """Names this callback may add to ``logs`` (on some steps only): the loss log gets a
        column for each from the start (empty on steps without a value)."""
        return []

    def on_train_begin(self, run: "RunContext") -> None:
        """Before the first step of this session (``run.start_step`` says where it starts)."""
        self.run = run

    def on_step_end(self, step: int, logs: dict[str, float]) -> None:
        """After step ``step`` (counted from 1) finished and its metrics were read back."""

    def on_checkpoint(self, step: int) -> None:
        """After a checkpoint of ``step`` was written."""

    def on_train_end(self, step: int, logs: Mapping[str, Any]) -> None:
        """After the last step, before the final generator is saved (not on failure)."""

    def on_close(self) -> None:
        """Always, at the end of the session (success, failure or interruption)."""
