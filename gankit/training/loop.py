"""The trainer: a :class:`~gankit.training.session.TrainingSession` stepped in a run directory,
with the side work done by callbacks.

Separation of concerns (as Keras' ``keras/src/trainers/epoch_iterator.py`` states its own):

- :class:`CallPlan` owns how many steps each compiled call runs (``train.steps_per_call``,
  Keras' ``steps_per_execution``): it ends a call where a callback needs the models
  (checkpoints, grids, metrics), at the last step and near a time budget's end, and sizes
  ``auto`` calls from their measured time. It runs nothing.
- The data pipeline (:func:`gankit.training.data.step_batches`, through the session's
  distribution) owns which examples each step reads: a pure function of the step, the seed
  and ``batch_size`` / ``shuffle``, grouped into the calls the plan asks for, so a resume
  reads exactly what an uninterrupted run would.
- :class:`Trainer` owns the session around them: building and restoring the models
  (:meth:`Trainer.prepare`), running the calls, handing every step to the callbacks
  (:class:`~gankit.training.callbacks.CallbackList`: losses, progress, samples, grids,
  checkpoints, a recipe's own), signals and a time budget, ``run.json``'s status, and
  saving the final generators. What a callback writes is the callback's business.

Everything random in a run derives from ``train.seed``: initial weights (Keras' global seed,
set once before the models are built), each part's draws in a step (stateless, keyed by
``[seed, step]`` folded with the part's name), the data order and dropout (seed state kept
in the models' variables). A checkpoint therefore holds all that is needed to continue
exactly.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from gankit._version import __version__
from gankit.errors import GankitError, TrainingError
from gankit.interfaces import Callback
from gankit.interfaces.callbacks import RunContext
from gankit.recipe.validation import Recipe
from gankit.rundir.checkpoints import Checkpoint, CheckpointStore
from gankit.rundir.run_dir import RunDir
from gankit.training.callbacks import CallbackList, Checkpoints, builtin_callbacks
from gankit.training.session import Parts, SessionConfig, TrainingSession
from gankit.util.machine import machine_info
from gankit.util.progress import ProgressBar

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
    stopped: str | None = None
    """Why the session ended before ``train.steps`` (``"time budget"``), or None."""


@dataclass
class _Progress:
    """How far a session of :meth:`Trainer.run` got, kept up to date step by step (read
    however the session ends)."""

    done: int
    """The last step finished."""
    logs: dict[str, float] = field(default_factory=dict)
    """Its metrics."""
    stopped: str | None = None
    """Why the session ends before ``train.steps`` (``"time budget"``), or None."""
    used: float = 0.0
    """Seconds since the session began, at the end of the latest compiled call."""


class Interrupted(Exception):
    """A stop was requested (Ctrl-C or SIGTERM); a checkpoint of the last finished step was
    written."""

    def __init__(self, step: int, run_dir: Path, signum: int = signal.SIGINT):
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        super().__init__(f"stopped by {name} after step {step}; a checkpoint was saved. "
                         f"Continue with: gankit resume {run_dir}")
        self.step = step
        self.exit_code = EXIT_CODES.get(signum, 130)


class CallPlan:
    """How many steps each compiled call runs (``train.steps_per_call``).

    A call ends at every step where a callback asks for a boundary
    (:meth:`gankit.interfaces.Callback.needs_boundary`: checkpoints, grids, metrics, the
    last step), after ``steps_per_call`` steps, and, with a time budget, after about the
    steps the remaining budget holds. ``auto`` sizes calls from their measured time: one
    step per call until a step time is known (the first call compiles), then up to
    :attr:`AUTO_MAX` steps while a call stays under :attr:`AUTO_SECONDS`, so Ctrl-C, the
    progress bar and a time budget stay responsive (docs/performance.md has the
    measurements). The results do not depend on the plan: every call runs the same step.

    :meth:`calls` is pulled by the input pipeline ahead of the steps (from its own thread);
    :meth:`record` feeds it the time of each call.
    """

    AUTO_MAX = 64
    AUTO_SECONDS = 1.0
    CALL_BYTES = 2 ** 30
    """A call's batches (one ``tf.data`` element) are kept under this size."""

    def __init__(self, start: int, stop: int, steps_per_call: int | str,
                 boundary: Callable[[int], bool], deadline: float | None = None,
                 step_bytes: int = 0) -> None:
        self.start, self.stop = start, stop
        self.auto = steps_per_call == "auto"
        self.limit = 1 if self.auto else int(steps_per_call)
        self.most: int | None = None
        self.set_step_bytes(step_bytes)
        self.boundary = boundary
        self.deadline = deadline
        self.step_seconds: float | None = None
        self._times: list[float] = []
        self._calls = 0
        self.error: BaseException | None = None

    def set_step_bytes(self, step_bytes: int) -> None:
        """Cap calls so that their batches stay under :attr:`CALL_BYTES` (0: no cap)."""
        self.most = max(1, self.CALL_BYTES // step_bytes) if step_bytes > 0 else None

    def record(self, steps: int, seconds: float) -> None:
        """A call of ``steps`` steps took ``seconds`` (dispatch to metrics read back)."""
        self._calls += 1
        if self._calls == 1 or steps < 1:  # the first call traces and compiles
            return
        self._times = (self._times + [seconds / steps])[-8:]
        self.step_seconds = sorted(self._times)[len(self._times) // 2]
        if self.auto:
            self.limit = max(1, min(self.AUTO_MAX, int(self.AUTO_SECONDS / self.step_seconds)))

    def size(self, first: int) -> int:
        """The steps of the call that starts after step ``first``."""
        limit = self.limit if self.most is None else min(self.limit, self.most)
        if self.deadline is not None and self.step_seconds:
            left = self.deadline - time.perf_counter()
            limit = min(limit, max(1, math.ceil(left / self.step_seconds)))
        k = 1
        while k < limit and first + k < self.stop and not self.boundary(first + k):
            k += 1
        return k

    def calls(self):
        """``(first, k)`` for each call from ``start`` to ``stop`` (a generator)."""
        first = self.start
        while first < self.stop:
            try:
                k = self.size(first)
            except BaseException as exc:  # noqa: BLE001 - raised again in the trainer's thread
                self.error = exc
                return
            yield first, k
            first += k

    def check(self, done: int, stopped: str | None) -> None:
        """After the last call: raise what planning raised, or if steps are missing."""
        if self.error is not None:
            raise self.error
        if done < self.stop and not stopped:
            raise TrainingError(f"training ended at step {done} of {self.stop} without a "
                                f"reason; the last checkpoint is untouched")


def _step_bytes(batch_spec) -> int:
    """Bytes of one step's batch in a call's ``Batch`` spec (0 if unknown)."""
    total = 0
    for spec in batch_spec:
        shape = getattr(spec, "shape", None)
        if shape is None or not hasattr(spec, "dtype") or not shape[1:].is_fully_defined():
            continue
        total += shape[1:].num_elements() * spec.dtype.size
    return total


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
        leading_callbacks: callbacks run first, right after the NaN guard, whose log columns
            come first in ``losses.csv``: the metrics of a recipe's ``metrics`` section
            (:class:`gankit.evaluation.callback.MetricsCallback`, which
            :func:`gankit.app.train.train` passes; the engine does not build it).
        restore_from: the checkpoints folder to resume from instead of ``run_dir``'s (a
            non-chief worker of ``train.distribute: multi_worker`` writes into a scratch
            ``run_dir`` and resumes from the chief's run directory).
    """

    def __init__(self, recipe: Recipe, run_dir: RunDir, *, resume: bool = False,
                 progress: bool = True, on_message: Callable[[str], None] | None = None,
                 callbacks: Sequence[Callback] = (), restore_from: Path | None = None,
                 leading_callbacks: Sequence[Callback] = ()) -> None:
        self.recipe = recipe
        self.run_dir = run_dir
        self.resume = resume
        self.progress_enabled = progress
        self._say = on_message
        self._extra_callbacks = list(callbacks)
        self._leading_callbacks = list(leading_callbacks)
        self._restore_from = restore_from
        self._stop_signal: int | None = None
        self.session: TrainingSession | None = None
        self.start = 0

    # -- preparing (writes nothing) --------------------------------------------------------

    def prepare(self) -> Trainer:
        """Build the session, load and check the data, restore the newest checkpoint."""
        if self.session is not None:
            return self
        from gankit.interfaces.data import dataset_source

        train = self.recipe.train
        session = TrainingSession(Parts.from_recipe(self.recipe), SessionConfig(
            seed=train.seed, batch_size=train.batch_size, xla=train.xla,
            deterministic=train.deterministic, precision=train.precision,
            distribute=train.distribute))
        dataset = self.recipe.create("dataset")
        self.examples = dataset_source(dataset)  # a DataSource: read as steps need it
        self.value_range = tuple(dataset.value_range)
        session.build()
        self.store = CheckpointStore(self.run_dir.checkpoints, keep=train.keep_checkpoints)
        if self.resume:
            source = (self.store if self._restore_from is None
                      else CheckpointStore(self._restore_from, keep=train.keep_checkpoints))
            found = source.load_latest(restore=self._restorer(session))
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

        Steps run ``train.steps_per_call`` at a time in one compiled call (see
        :class:`CallPlan`); callbacks still see every step. With ``train.max_minutes``, the
        run stops at the end of the first call that ends after the budget (counted from
        here, compilation included): that step is treated as the last one (grid, metrics,
        checkpoint), the generator is saved and ``TrainResult.stopped`` says why.

        Raises:
            TrainingError: a non-finite loss, or a failed write (checkpoints stay intact).
            Interrupted: on Ctrl-C or SIGTERM, after saving a checkpoint.
        """
        began = time.perf_counter()
        import tensorflow as tf

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
                             self.value_range, writer, lambda text: self._message(bar, text),
                             began=began)
        callbacks = self._callbacks(bar)
        budget = None if train.max_minutes is None else train.max_minutes * 60.0
        plan = CallPlan(start, train.steps,
                        session.distribution.steps_per_call or train.steps_per_call,
                        boundary=callbacks.needs_boundary,
                        deadline=None if budget is None else began + budget)
        data = session.distribution.batches(  # step_batches, per replica under tf.distribute
            self.examples, batch_size=train.batch_size,
            batches_per_step=session.batches_per_step, seed=train.seed,
            shuffle=train.shuffle, start=start, stop=train.steps, calls=plan.calls)
        plan.set_step_bytes(_step_bytes(data.element_spec[1]))
        steps_fn = session.steps_function(data.element_spec[1])
        previous = {s: signal.signal(s, self._on_signal) for s in EXIT_CODES}
        precision = self._precision_record(bar)
        self.run_dir.write_status(status="running", step=start, start_step=start,
                                  steps=train.steps, started=time.time(),
                                  gankit_version=__version__, pid=os.getpid(),
                                  machine=machine_info(), class_names=self._class_names(),
                                  precision=precision)
        t0 = time.perf_counter()
        progress = _Progress(done=start)
        try:
            callbacks.on_train_begin(context)
            self._run_calls(data, steps_fn, plan, callbacks, context, progress, began, budget)
            plan.check(progress.done, progress.stopped)
            callbacks.on_train_end(progress.done, progress.logs)
            generator_file, ema_file = self.run_dir.save_generators(
                session.generator, session.ema.shadow if session.ema is not None else None)
        except BaseException as exc:
            self._record_failure(exc, progress.done)
            error = self._as_training_error(exc)
            if error is not exc:
                raise error from None
            raise
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            callbacks.on_close()
            writer.close()
        seconds = time.perf_counter() - t0
        done, logs, stopped = progress.done, progress.logs, progress.stopped
        self._write_end_status(progress, seconds, budget)
        return TrainResult(self.run_dir.path, done, logs, seconds, generator_file, start,
                           ema_file, stopped)

    def _callbacks(self, bar: ProgressBar) -> CallbackList:
        """The session's callbacks in the order they run: the built-ins that go first (the
        NaN guard, a ``metrics`` section's), the recipe's own and the trainer's
        ``callbacks``, then the other built-ins (loss log, progress, TensorBoard, samples,
        grids, checkpoints)."""
        own = self.recipe.create("callback") + self._extra_callbacks
        before, after = builtin_callbacks(bar, self._leading_callbacks,
                                          [c for cb in own for c in cb.log_columns()])
        return CallbackList(before + own + after)

    def _run_calls(self, data, steps_fn, plan: CallPlan, callbacks: CallbackList,
                   context: RunContext, progress: _Progress, began: float,
                   budget: float | None) -> None:
        """Run the compiled calls of ``data`` and hand each of their steps to the callbacks,
        until the last step or a time-budget stop (``progress`` says how far it got).

        Raises:
            TrainingError: a metric became non-finite.
            Interrupted: a stop was requested; a checkpoint of the last step was written.
        """
        train, session = self.recipe.train, self.session
        for steps, batches in data:
            # One compiled call runs k steps; the metrics come back once, stacked.
            first, k = int(steps[0]), int(steps.shape[0])
            called = time.perf_counter()
            metrics, fakes, n = steps_fn(steps[0], batches)
            values = {name: v.numpy() for name, v in metrics.items()}
            n = int(n)
            plan.record(n, time.perf_counter() - called)
            for j in range(n):
                progress.done = done = first + j + 1
                progress.logs = logs = {name: float(v[j]) for name, v in values.items()}
                context.last_fake = fakes[j]
                context.last_real = session.distribution.local(batches.images)[j, 0, 0]
                context.at_call_end = j == n - 1
                if j == n - 1:  # the models are at this step: a stop may checkpoint it
                    context.stop_requested = self._stop_signal is not None
                    progress.used = used = time.perf_counter() - began
                    if budget is not None and done < train.steps and used >= budget:
                        progress.stopped, context.final_step = "time budget", done
                callbacks.on_step_end(done, logs)  # and on_checkpoint, if one was written
            done = progress.done
            if n < k:  # the loop stopped at a non-finite metric: the NaN guard says so
                raise TrainingError(f"a metric became NaN or Inf at step {done}; training "
                                    f"stopped and {context.last_good()}")
            if self._stop_signal is not None:
                if context.last_checkpoint != done:  # the signal came during the callbacks
                    context.stop_requested = True
                    callbacks.find(Checkpoints).on_step_end(done, progress.logs)
                raise Interrupted(done, self.run_dir.path, self._stop_signal)
            if progress.stopped:
                break

    def _write_end_status(self, progress: _Progress, seconds: float,
                          budget: float | None) -> None:
        """``run.json`` at the end of a session: completed, or stopped by the time budget."""
        train = self.recipe.train
        if progress.stopped:
            self.run_dir.write_status(
                status="stopped", step=progress.done, seconds=seconds, metrics=progress.logs,
                finished=time.time(),
                stop_reason=f"time budget: train.max_minutes={train.max_minutes:g} used up "
                            f"at step {progress.done} of {train.steps}",
                budget_seconds=budget, budget_used_seconds=round(progress.used, 3))
        else:
            self.run_dir.write_status(status="completed", step=progress.done, seconds=seconds,
                                      metrics=progress.logs, finished=time.time())

    def _precision_record(self, bar: ProgressBar) -> dict:
        """run.json's ``precision``: what ``train.precision`` resolved to and why; on resume,
        also what the run trained with before, with a notice when it differs (a resume on
        another machine may choose differently under ``auto``)."""
        record = self.session.precision.as_dict()
        if not self.resume:
            return record
        try:
            before = self.run_dir.read_status().get("precision")
        except GankitError:
            before = None
        history = []
        if isinstance(before, dict):
            earlier = before.get("history")
            history = [h for h in (earlier if isinstance(earlier, list) else [])
                       if isinstance(h, dict)][-20:]
            old = before.get("policy")
            if isinstance(old, str) and old != record["policy"]:
                history.append({"policy": old, "until_step": self.start})
                self._message(bar, f"train.precision {record['requested']} chose "
                                   f"{record['policy']} on this machine ({record['reason']}); "
                                   f"the run's steps before {self.start} computed in {old}, so "
                                   f"it will not be bit-identical to a run that never stopped")
        if history:
            record["history"] = history
        return record

    def _class_names(self) -> list[str] | None:
        """The dataset's class names, kept in run.json for later commands (gankit sample
        --label); None for an unlabelled dataset."""
        names = self.recipe.create("dataset").class_names
        return list(names) if names is not None else None

    def _record_failure(self, exc: BaseException, step: int) -> None:
        status = ("interrupted" if isinstance(exc, (Interrupted, KeyboardInterrupt))
                  else "failed")
        try:
            self.run_dir.write_status(status=status, step=step,
                                      error=str(self._as_training_error(exc)))
        except Exception:  # noqa: BLE001 - the disk may be what failed; the error matters more
            pass

    def _as_training_error(self, exc: BaseException) -> BaseException:
        from gankit.interfaces.data import dataset_error

        unreadable = dataset_error(exc)  # an example the data pipeline could not read
        if unreadable is not None:
            return unreadable
        lost = (self.session.distribution.lost_worker(exc)  # multi_worker: a peer is gone
                if self.session is not None else None)
        if lost is not None:
            chief = self._restore_from.parent if self._restore_from else self.run_dir.path
            kept = CheckpointStore(RunDir(chief).checkpoints).steps()
            good = (f"the last checkpoint (step {kept[-1]}) is untouched" if kept
                    else "no checkpoint had been written yet")
            return TrainingError(f"another worker stopped or cannot be reached ({lost}); "
                                 f"training stopped and {good}. Restart every worker with: "
                                 f"gankit resume {chief}")
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
