"""Callbacks: the side work of the training loop (logs, samples, checkpoints, metrics)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

from gankit.interfaces.component import Component


class RunFiles(Protocol):
    """What a callback may use of the run directory (:class:`gankit.rundir.run_dir.RunDir`
    implements it; docs/run-directory.md says what each file is)."""

    path: Path
    """The run directory."""
    samples: Path
    """``samples/``: the sample pairs and grids."""
    losses_file: Path
    """``losses.csv``."""
    snapshots: Path
    """``snapshots/``: generators kept at chosen times (the ``snapshot`` callback's)."""

    def save_model_atomic(self, model: Any, path: str | Path) -> Path:
        """Save a Keras model at ``path`` so that a crash leaves the old file or the new."""

    def save_generators(self, generator: Any, ema_shadow: Any,
                        folder: str | Path | None = None) -> tuple[Path, Path | None]:
        """Save a generator and (unless ``ema_shadow`` is None) its EMA copy in ``folder``
        (default: the run directory) under the run directory's names for them, each as
        :meth:`save_model_atomic` does; return their paths."""


class SessionView(Protocol):
    """What a callback may use of the training session
    (:class:`gankit.training.session.TrainingSession` implements it)."""

    generator: Any
    """The generator (a Keras model)."""
    discriminator: Any
    """The discriminator (a Keras model)."""
    ema: Any
    """The EMA of the generator (``ema.shadow`` is the averaged model), or None."""
    augmenter: Any
    """The augmenter (:class:`gankit.Augmenter`); a callback may adapt its ``state()``
    variables, which checkpoints hold."""
    step_counter: Any
    """The steps done, an int64 ``tf.Variable`` (at ``run.at_call_end`` steps: the step)."""

    def sampler(self, use_ema: bool = True) -> Callable:
        """A compiled ``sample(latents, labels=None)`` of the EMA (or trained) generator."""


class Callback(Component):
    """Hooks called by the trainer around training steps, in the shape of Keras callbacks.

    The built-in side work (progress, loss log, TensorBoard, samples, grids, checkpoints,
    the NaN guard) is made of callbacks; a recipe's ``callbacks`` section adds registered
    ones. Every hook gets the :class:`~gankit.interfaces.callbacks.RunContext` through
    :meth:`on_train_begin` (kept as ``self.run``): the run directory, the recipe, the
    models, a TensorBoard writer and a way to print a notice.

    ``logs`` holds the step's metrics as Python floats; a callback may add entries in
    :meth:`on_step_end` (for example a metric computed every N steps) and they are logged
    like the others (one number each; name the ones logged on some steps only in
    :meth:`log_columns`). It must not change the values already there, nor the models'
    weights (:func:`gankit.testing.check_callback` checks both).

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
    run: RunContext

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

    def on_train_begin(self, run: RunContext) -> None:
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


@dataclass
class RunContext:
    """What callbacks see of a run (see :class:`Callback`), made by the trainer.

    The engine's objects are typed ``Any`` here so that the contract does not import the
    engine; their documented attributes are listed with each field."""

    recipe: Any
    """The validated recipe (:class:`gankit.recipe.validation.Recipe`): ``recipe.train``,
    ``recipe.sections``, ``recipe.create(kind)``."""
    run_dir: RunFiles
    """The run directory: its ``path``, ``samples/`` and ``losses.csv``, and a safe way to
    save a model in it."""
    session: SessionView
    """The training session: the models, the EMA and the step counter."""
    store: Any
    """The checkpoint store (:class:`gankit.rundir.checkpoints.CheckpointStore`), for the
    built-in checkpoint callback; a plugin's callback has no use for it."""
    start_step: int
    resumed: bool
    value_range: tuple[float, float]
    writer: Any
    """A ``tf.summary`` writer of the run's ``tensorboard/`` folder."""
    message: Callable[[str], None]
    """Prints a one-line notice without garbling the progress bar."""
    stop_requested: bool = False
    last_checkpoint: int | None = None
    last_fake: Any = None
    """The first generated image of the latest step: one image ``(height, width, channels)``
    (a tensor), not the batch."""
    last_real: Any = None
    """The first real image of the latest step: one image, as ``last_fake``."""
    final_step: int | None = None
    """The last step of this session: ``train.steps``, or the step a time-budget stop ends
    at (known from that step's callbacks on)."""
    began: float | None = None
    """``time.perf_counter()`` when the session began (the clock of ``train.max_minutes``)."""
    at_call_end: bool = True
    """Whether the step being reported ended its compiled call: only then are the models,
    the optimizers and the EMA at that step (a callback that reads them at times it cannot
    name in advance, such as every few minutes, waits for such a step)."""

    def __post_init__(self) -> None:
        if self.final_step is None:
            self.final_step = self.recipe.train.steps

    def is_final(self, step: int) -> bool:
        """Whether ``step`` is the last of this session (write the last grid, metrics...)."""
        return step == self.final_step

    @property
    def train(self) -> Any:
        """The recipe's ``train`` section (``steps``, ``batch_size``, ``seed``, ...)."""
        return self.recipe.train

    def last_good(self) -> str:
        kept = self.store.steps()
        return (f"the last checkpoint (step {kept[-1]}) is untouched" if kept
                else "no checkpoint had been written yet")
