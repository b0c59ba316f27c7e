"""The trainer: a :class:`~gankit.training.session.TrainingSession` stepped in a run directory,
with the side work done by callbacks.

Everything random in a run derives from ``train.seed``: initial weights (Keras' global seed,
set once before the models are built), each part's draws in a step (stateless, keyed by
``[seed, step]`` folded with the part's name), the data order and dropout (seed state kept
in the models' variables). A checkpoint therefore holds all that is needed to continue
exactly.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from gankit import __version__
from gankit.checkpoints import Checkpoint, CheckpointStore
from gankit.errors import GankitError, TrainingError
from gankit.interfaces import Callback
from gankit.progress import ProgressBar
from gankit.recipe import Recipe, TrainConfig
from gankit.run_dir import RunDir
from gankit.training.session import Parts, SessionConfig, TrainingSession

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


@dataclass(frozen=True)
class TrainResult:
    """What a finished run hands back."""

    run_dir: Path
    step: int
    metrics: dict[str, float]
    seconds: float
    generator_file: Path | None
    start: int = 0
    """The step this session started after (non-zero when resumed)."""
    ema_file: Path | None = None


class Interrupted(Exception):
    """A stop was requested (Ctrl-C or SIGTERM); a checkpoint of the last finished step was
    written."""

    def __init__(self, step: int, run_dir: Path, signum: int = signal.SIGINT):
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        super().__init__(f"stopped by {name} after step {step}; a checkpoint was saved. "
                         f"Continue with: gankit resume {run_dir}")
        self.step = step
        self.exit_code = EXIT_CODES.get(signum, 130)


@dataclass
class RunContext:
    """What callbacks see of a run (see :class:`gankit.interfaces.Callback`)."""

    recipe: Recipe
    run_dir: RunDir
    session: TrainingSession
    store: CheckpointStore
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
    """The first generated image of the latest step (a tensor)."""
    last_real: Any = None
    """The first real image of the latest step (a tensor)."""
    extras: dict = field(default_factory=dict)

    @property
    def train(self) -> TrainConfig:
        return self.recipe.train

    def last_good(self) -> str:
        kept = self.store.steps()
        return (f"the last checkpoint (step {kept[-1]}) is untouched" if kept
                else "no checkpoint had been written yet")


class Trainer:
    """Runs a validated recipe in a run directory.

    Call :meth:`prepare` (builds everything, loads the data and, on resume, restores the
    newest usable checkpoint; writes nothing), then :meth:`run`.

    Args:
        recipe: the validated recipe.
        run_dir: the run directory (created by the caller before :meth:`run`).
        resume: continue from the newest usable checkpoint in ``run_dir``.
        progress: show the progress bar (on stderr).
        on_message: where one-line notices go (default: the progress bar's stream).
        callbacks: more callbacks, run after the recipe's own.
    """

    def __init__(self, recipe: Recipe, run_dir: RunDir, *, resume: bool = False,
                 progress: bool = True, on_message: Callable[[str], None] | None = None,
                 callbacks: Sequence[Callback] = ()) -> None:
        self.recipe = recipe
        self.run_dir = run_dir
        self.resume = resume
        self.progress_enabled = progress
        self._say = on_message
        self._extra_callbacks = list(callbacks)
        self._stop_signal: int | None = None
        self.session: TrainingSession | None = None
        self.start = 0

    # -- preparing (writes nothing) --------------------------------------------------------

    def prepare(self) -> "Trainer":
        """Build the session, load and check the data, restore the newest checkpoint."""
        if self.session is not None:
            return self
        from gankit.training.data import as_examples

        train = self.recipe.train
        session = TrainingSession(Parts.from_recipe(self.recipe), SessionConfig(
            seed=train.seed, batch_size=train.batch_size, xla=train.xla,
            deterministic=train.deterministic))
        dataset = self.recipe.create("dataset")
        self.examples = as_examples(dataset.load(), dataset.image_shape)
        self.value_range = tuple(dataset.value_range)
        session.build()
        self.store = CheckpointStore(self.run_dir.checkpoints, keep=train.keep_checkpoints)
        if self.resume:
            found = self.store.load_latest(restore=self._restorer(session))
            self.start = found.step if found is not None else 0
        self.session = session
        return self

    @staticmethod
    def _restorer(session: TrainingSession) -> Callable[[Checkpoint], None]:
        def restore(ckpt: Checkpoint) -> None:
            try:
                status = session.checkpoint().read(ckpt.prefix)
                status.assert_existing_objects_matched()
            except (AssertionError, ValueError) as exc:
                text = str(exc)
                if isinstance(exc, ValueError) and "incompatible" not in text:
                    raise  # a damaged file: try the previous checkpoint
                raise GankitError(
                    f"the state in {ckpt.path} does not fit the models this recipe builds "
                    f"({text.strip().splitlines()[0][:200]}); resume with the recipe the run "
                    f"was trained with") from None
            # A --force'd recipe may keep less state (another optimizer): drop the rest quietly.
            status.expect_partial()
            session.apply_recipe_hyperparameters()
        return restore

    @property
    def nothing_left(self) -> bool:
        """True if a resumed run is already at (or past) ``train.steps``."""
        return self.resume and self.start >= self.recipe.train.steps

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> TrainResult:
        """Train to ``train.steps``, writing samples, losses and checkpoints as configured.

        Raises:
            TrainingError: a non-finite loss, or a failed write (checkpoints stay intact).
            Interrupted: on Ctrl-C or SIGTERM, after saving a checkpoint.
        """
        import tensorflow as tf

        from gankit.training.callbacks import builtin_callbacks
        from gankit.training.data import step_batches

        self.prepare()
        train, session = self.recipe.train, self.session
        self.store.clean_leftovers()
        self.run_dir.clean_leftovers()
        start = self.start
        bar = ProgressBar(train.steps, start, enabled=self.progress_enabled)
        if self.resume:
            self._message(bar, f"resuming {self.run_dir.path} at step {start}" if start
                          else "no checkpoint yet; starting from step 0")
        writer = tf.summary.create_file_writer(str(self.run_dir.tensorboard))
        context = RunContext(self.recipe, self.run_dir, session, self.store, start, self.resume,
                             self.value_range, writer, lambda text: self._message(bar, text))
        own = self.recipe.create("callback") + self._extra_callbacks
        before, after = builtin_callbacks(bar, self.recipe,
                                          [c for cb in own for c in cb.log_columns()])
        callbacks = before + own + after
        checkpoints = after[-1]
        step_fn = session.step_function()
        data = step_batches(self.examples, batch_size=train.batch_size,
                            batches_per_step=session.batches_per_step, seed=train.seed,
                            shuffle=train.shuffle, start=start, stop=train.steps)
        previous = {s: signal.signal(s, self._on_signal) for s in EXIT_CODES}
        from gankit.report import machine_info

        self.run_dir.write_status(status="running", step=start, start_step=start,
                                  steps=train.steps, started=time.time(),
                                  gankit_version=__version__, pid=os.getpid(),
                                  machine=machine_info())
        t0 = time.perf_counter()
        done, logs = start, {}
        try:
            for cb in callbacks:
                cb.on_train_begin(context)
            for step, batch in data:
                metrics, first_fake = step_fn(step, batch)
                done = int(step) + 1
                logs = {k: float(v) for k, v in metrics.items()}
                context.last_fake, context.last_real = first_fake, batch.images[0, 0]
                context.stop_requested = self._stop_signal is not None
                saved = context.last_checkpoint
                for cb in callbacks:
                    cb.on_step_end(done, logs)
                if context.last_checkpoint != saved:
                    for cb in callbacks:
                        cb.on_checkpoint(done)
                if self._stop_signal is not None:
                    if context.last_checkpoint != done:  # the signal came during the callbacks
                        context.stop_requested = True
                        checkpoints.on_step_end(done, logs)
                    raise Interrupted(done, self.run_dir.path, self._stop_signal)
            for cb in callbacks:
                cb.on_train_end(done, logs)
            generator_file, ema_file = self._save_generators()
        except BaseException as exc:
            self._record_failure(exc, done)
            error = self._as_training_error(exc)
            if error is not exc:
                raise error from None
            raise
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            for cb in callbacks:
                try:
                    cb.on_close()
                except Exception:  # noqa: BLE001 - closing must not hide the real outcome
                    pass
            writer.close()
        seconds = time.perf_counter() - t0
        self.run_dir.write_status(status="completed", step=done, seconds=seconds,
                                  metrics=logs, finished=time.time())
        from gankit.report import write_report_after_run

        write_report_after_run(self.run_dir.path)  # a failed report warns; the run succeeded
        return TrainResult(self.run_dir.path, done, logs, seconds, generator_file, start,
                           ema_file)

    def _record_failure(self, exc: BaseException, step: int) -> None:
        status = ("interrupted" if isinstance(exc, (Interrupted, KeyboardInterrupt))
                  else "failed")
        try:
            self.run_dir.write_status(status=status, step=step,
                                      error=str(self._as_training_error(exc)))
        except Exception:  # noqa: BLE001 - the disk may be what failed; the error matters more
            pass

    def _as_training_error(self, exc: BaseException) -> BaseException:
        if isinstance(exc, OSError):  # a sample or the loss log could not be written
            where = exc.filename or self.run_dir.path
            kept = self.store.steps()
            good = (f"the last checkpoint (step {kept[-1]}) is untouched" if kept
                    else "no checkpoint had been written yet")
            return TrainingError(f"could not write {where}: {exc.strerror or exc}; "
                                 f"training stopped and {good}")
        return exc

    def _on_signal(self, signum, frame) -> None:
        if self._stop_signal is not None:  # a second signal: stop at once
            raise KeyboardInterrupt
        self._stop_signal = signum

    def _message(self, bar: ProgressBar, text: str) -> None:
        if self._say is not None:
            self._say(text)
        elif bar.enabled:
            bar.message(text)
        else:  # --quiet hides the progress bar, not where a resume started
            print(text, file=sys.stderr, flush=True)

    def _save_generators(self) -> tuple[Path, Path | None]:
        session = self.session
        self.run_dir.save_model_atomic(session.generator, self.run_dir.generator_file)
        ema_file = None
        if session.ema is not None:
            ema_file = self.run_dir.generator_ema_file
            self.run_dir.save_model_atomic(session.ema.shadow, ema_file)
        return self.run_dir.generator_file, ema_file
