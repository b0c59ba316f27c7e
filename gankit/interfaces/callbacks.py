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

    **Steps per call.** The trainer runs several steps in one compiled call
    (``train.steps_per_call``) and then calls :meth:`on_step_end` for each of them in order,
    each with its own ``logs``, ``run.last_fake`` and ``run.last_real``. Only after the
    call's last step are the models (weights, optimizer state, EMA) at the step reported. A
    callback that uses the models or the training state at some step says so in
    :meth:`needs_boundary`, and calls then end at that step. The default asks for every
    step: always correct, but it turns fusing off; override it::

        def needs_boundary(self, step):
            return step % self.config["every"] == 0 or step == self.run.train.steps
    """

    kind = "callback"
    run: "RunContext"

    def log_columns(self) -> list[str]:
        """Names this callback may add to ``logs`` (on some steps only): the loss log gets a
        column for each from the start (empty on steps without a value)."""
        return []

    def needs_boundary(self, step: int) -> bool:
        """Whether a compiled call must end after step ``step`` (counted from 1) because
        this callback's :meth:`on_step_end` of that step reads or writes the models or the
        training state (a checkpoint, a grid, an evaluation).

        The trainer asks ahead of the steps, possibly from its input pipeline's thread,
        after :meth:`on_train_begin`: answer from the step and the configuration only
        (``self.run.train`` is there). The last step of a session (``train.steps``, or
        where a time budget or a signal stops it) always ends a call. Default: every step.
        """
        return True

    def on_train_begin(self, run: "RunContext") -> None:
        """Before the first step of this session (``run.start_step`` says where it starts)."""
        self.run = run

    def on_step_end(self, step: int, logs: dict[str, float]) -> None:
        """After step ``step`` (counted from 1) finished and its metrics were read back.

        ``self.run.is_final(step)`` tells whether it is the session's last step
        (``train.steps``, or the step a ``train.max_minutes`` budget stops at)."""

    def on_checkpoint(self, step: int) -> None:
        """After a checkpoint of ``step`` was written."""

    def on_train_end(self, step: int, logs: Mapping[str, Any]) -> None:
        """After the last step, before the final generator is saved (not on failure)."""

    def on_close(self) -> None:
        """Always, at the end of the session (success, failure or interruption)."""
