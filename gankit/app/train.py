"""Training a recipe, as a Python API: what ``gankit run`` and ``gankit resume`` do.

    import gankit

    result = gankit.train("recipes/frog_dcgan.yaml", overrides=["train.steps=20"])
    result = gankit.resume(result.run_dir, overrides=["train.steps=40"])
    print(result.status, result.step, result.metrics)

:func:`train` and :func:`resume` check everything that needs no TensorFlow first (the
recipe, the data folder, the precision on this CPU, ``TF_CONFIG``), then build the models,
load the data and restore the newest checkpoint without writing anything, and only then
create or change the run directory; the HTML report is written after a run that ends by
itself. They print what ``gankit run`` prints (the start-up line, warnings, the closing
summary); ``quiet`` hides the progress bar. A user error raises a
:class:`~gankit.errors.GankitError` (one line, the CLI's exit code in ``exit_code``); Ctrl-C
or SIGTERM during training ends with a checkpoint and a result of status ``interrupted``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from gankit._version import __version__
from gankit.errors import GankitError, RecipeError


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` and :func:`resume` hand back."""

    run_dir: Path
    """The run directory."""
    status: str
    """``completed`` (all ``train.steps``), ``stopped`` (the time budget,
    ``train.max_minutes``: resumable), ``interrupted`` (Ctrl-C or SIGTERM: resumable),
    ``up to date`` (a resume with nothing left to train) or ``worker done`` (a non-chief
    worker of ``multi_worker``)."""
    step: int
    """The last step trained."""
    exit_code: int = 0
    """What ``gankit run`` exits with: 0, or 130 / 143 after Ctrl-C / SIGTERM."""
    start: int = 0
    """The step this session started after (non-zero when resumed)."""
    metrics: Mapping[str, float] = field(default_factory=dict)
    """The last step's losses and metrics."""
    seconds: float = 0.0
    """Training time of this session."""
    generator_file: Path | None = None
    ema_file: Path | None = None


def train(recipe: Any, *, overrides: Sequence[str] = (), out: str | Path | None = None,
          quiet: bool = False, callbacks: Sequence[Any] = ()) -> TrainResult:
    """Train ``recipe`` in a new run directory.

    Args:
        recipe: a recipe file (path), a recipe as a mapping (what the YAML holds), or a
            validated :class:`~gankit.recipe.validation.Recipe`.
        overrides: ``KEY=VALUE`` changes, as ``--set`` takes them (``train.steps=20``).
        out: the run directory to create (default ``runs/<recipe name>-<time>``).
        quiet: no progress bar.
        callbacks: more :class:`~gankit.Callback` objects, run after the recipe's own.

    Raises:
        GankitError: a bad recipe or override (:class:`~gankit.errors.RecipeError`), a run
            directory that exists, missing data, a failed run.
    """
    from gankit.rundir.run_dir import RunDir

    recipe = _as_recipe(recipe, overrides)
    run_dir = RunDir(out if out is not None else RunDir.default_path(recipe.name))
    return _train(recipe, run_dir, resume=False, quiet=quiet, callbacks=callbacks)


def resume(run_dir: str | Path, *, recipe: str | Path | None = None,
           overrides: Sequence[str] = (), force: bool = False, quiet: bool = False,
           callbacks: Sequence[Any] = ()) -> TrainResult:
    """Continue the run in ``run_dir`` from its newest usable checkpoint.

    Args:
        run_dir: the run directory.
        recipe: resume with this recipe file instead of the run's own ``recipe.yaml``.
        overrides: ``KEY=VALUE`` changes; only ``train.steps`` (to extend the run),
            ``train.steps_per_call``, ``train.max_minutes`` and ``train.distribute`` may
            change, unless ``force``.
        force: resume even with a changed recipe, or a ``recipe.yaml`` that is not the one
            the newest checkpoint was trained with.
        quiet: no progress bar.
        callbacks: more :class:`~gankit.Callback` objects, run after the recipe's own.

    Raises:
        GankitError: not a run directory, a changed recipe without ``force``, a run in use.
    """
    from gankit.rundir.run_dir import RunDir

    folder = RunDir(run_dir)
    resolved = resume_recipe(folder, None if recipe is None else str(recipe), overrides, force)
    return _train(resolved, folder, resume=True, quiet=quiet, callbacks=callbacks)


# --- the recipe ---------------------------------------------------------------------------

def plugins(report_errors: bool = True):
    """The installed plugins; a plugin that failed to load is named on stderr."""
    from gankit.plugin.manager import default_plugins

    loaded = default_plugins()
    if report_errors:
        for message in loaded.errors:
            print(f"gankit: error: {message}", file=sys.stderr)
    return loaded


def load(path: str | Path, overrides: Sequence[str] = ()):
    """The validated recipe of the file ``path`` with ``overrides``, against the installed
    plugins."""
    from gankit.recipe.validation import load_recipe

    return load_recipe(path, overrides, registry=plugins().registry)


def _as_recipe(recipe: Any, overrides: Sequence[str]):
    from gankit.recipe.validation import Recipe, apply_overrides, overridden_keys, validate

    if isinstance(recipe, Recipe):
        if overrides:
            raise GankitError("overrides apply to a recipe file or mapping, not to a validated "
                              "Recipe: pass its file (or recipe.to_dict()) instead")
        return recipe
    if isinstance(recipe, Mapping):
        return validate(apply_overrides(dict(recipe), overrides), plugins().registry,
                        source="<recipe>", base_dir=Path.cwd(),
                        cwd_keys=overridden_keys(overrides))
    if isinstance(recipe, (str, os.PathLike)):
        return load(recipe, overrides)
    raise GankitError(f"expected a recipe file, a mapping or a Recipe, got "
                      f"{type(recipe).__name__}")


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: data}


def _changed_keys(old: dict, new: dict) -> list[str]:
    """Keys whose values differ, except train.steps (a run may be extended),
    train.steps_per_call and train.max_minutes (they change nothing a run computes)."""
    from gankit.recipe.schema import UNTRACKED_TRAIN_KEYS

    a, b = _flatten(old), _flatten(new)
    keys = sorted(set(a) | set(b))
    free = {f"train.{k}" for k in UNTRACKED_TRAIN_KEYS}
    return [f"{k}: {a.get(k, '(absent)')!r} -> {b.get(k, '(absent)')!r}"
            for k in keys if ".".join(k.split(".")[:2]) not in free and a.get(k) != b.get(k)]


def resume_recipe(run_dir, recipe_path: str | None, overrides: Sequence[str], force: bool):
    """The recipe to resume with: the run's own (or ``recipe_path``) with ``overrides``.

    Refuses, unless ``force``: keys changed against the stored recipe (train.steps may
    grow), and a stored recipe.yaml that is not the one the newest checkpoint was trained
    with (edited by hand).
    """
    from gankit.recipe.validation import apply_overrides, load_raw, overridden_keys, validate
    from gankit.rundir.checkpoints import CheckpointStore

    run_dir.check_existing()
    registry = plugins().registry
    stored_raw = load_raw(run_dir.recipe_file)
    stored = validate(stored_raw, registry, source=str(run_dir.recipe_file))
    if recipe_path is None:
        # The stored paths are absolute; a path given with --set is relative to here.
        recipe = validate(apply_overrides(stored_raw, overrides), registry,
                          source=str(run_dir.recipe_file), base_dir=Path.cwd(),
                          cwd_keys=overridden_keys(overrides))
    else:
        recipe = load(recipe_path, overrides)
    changed = _changed_keys(stored.to_dict(), recipe.to_dict())
    if changed and not force:
        raise RecipeError("refusing to resume with a changed recipe (" + "; ".join(changed)
                          + "); pass --force to resume anyway", source=str(run_dir.path))
    digest, version = _newest_checkpoint_digest(CheckpointStore(run_dir.checkpoints))
    if digest is not None and digest != stored.digest() and not force:
        if version is not None and version != __version__:
            # A newer gankit adds keys with defaults, which changes every recipe's digest.
            raise RecipeError(f"the newest checkpoint was written by gankit {version}, whose "
                              f"recipes had other keys than gankit {__version__}'s; pass "
                              f"--force to resume with the stored recipe and today's defaults "
                              f"(CHANGELOG.md lists them)", source=str(run_dir.recipe_file))
        raise RecipeError("recipe.yaml is not the recipe the newest checkpoint was trained "
                          "with (was it edited by hand?); restore it, or pass --force to "
                          "resume with it as it is", source=str(run_dir.recipe_file))
    return recipe


def _newest_checkpoint_digest(store) -> tuple[str | None, str | None]:
    """The recipe digest and gankit version of the newest readable checkpoint."""
    for step in reversed(store.steps()):
        try:
            meta = store.load(step).meta
        except ValueError:
            continue
        return meta.get("recipe_digest"), meta.get("gankit_version")
    return None, None


# --- before TensorFlow --------------------------------------------------------------------

def precision_preflight(precision: str) -> str | None:
    """Before TensorFlow loads: refuse a precision that would crash it on this CPU (one
    line, exit 2), and return the emulated-precision warning, where the CPU alone decides
    them (a machine that may have a GPU is left to the session, which asks TensorFlow)."""
    from gankit.training.precision import check_usable, emulation_warning
    from gankit.util import machine

    if machine.gpu_may_be_present():
        return None
    check_usable(precision)  # a policy that would crash TensorFlow: one line, exit 2
    return emulation_warning(precision)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its C++ start-up chatter (CUDA probing, oneDNN notices) hidden.

    TensorFlow 2.16+ logs these through absl before any log level applies, so the only way
    to keep them off a user's terminal is to point file descriptor 2 elsewhere meanwhile.
    Set GANKIT_TF_LOGS=1 to see them.
    """
    if "tensorflow" in sys.modules or os.environ.get("GANKIT_TF_LOGS") == "1":
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` for commands: gankit's own warnings as one line each."""
    from gankit.errors import PrecisionWarning
    from gankit.rundir.checkpoints import CheckpointWarning
    from gankit.rundir.run_dir import RunDirWarning

    if issubclass(category, (CheckpointWarning, RunDirWarning, PrecisionWarning)) or \
            category.__name__ == "DatasetWarning":
        print(f"gankit: warning: {message}", file=sys.stderr)


# --- training -----------------------------------------------------------------------------

def _leading_callbacks(recipe) -> list:
    """The metrics of the recipe's ``metrics`` section, measured during training."""
    if recipe.metrics is None:
        return []
    from gankit.evaluation.callback import MetricsCallback

    return [MetricsCallback(recipe)]


def _train(recipe, run_dir, *, resume: bool, quiet: bool, callbacks: Sequence[Any] = ()
           ) -> TrainResult:
    """Train (or resume) ``recipe`` in ``run_dir``.

    Order matters for what a failure leaves behind: every check that needs no TensorFlow
    first; then the models are built, the data loaded and, on resume, the checkpoint
    restored, all without writing anything; only then is the run directory created or
    changed.
    """
    recipe.create("dataset").preflight()  # a missing data folder answers before TensorFlow loads
    precision_preflight(recipe.train.precision)  # the session warns, knowing the devices
    if recipe.metrics is not None:
        from gankit.plugin.manager import create
        from gankit.plugin.registry import using_registry

        with using_registry(recipe.registry):
            extractor = create("feature_extractor", recipe.metrics.extractor, "metrics.extractor")
        extractor.preflight()
    from gankit.training.cluster import worker_role

    role = worker_role(recipe.train.distribute)  # TF_CONFIG, checked before TensorFlow loads
    if not role.is_chief:
        return _train_worker(recipe, run_dir, resume=resume, role=role, callbacks=callbacks)
    if not resume:
        run_dir.ensure_new()  # fail before the slow part if the directory is taken
    with contextlib.ExitStack() as stack:
        if resume:
            stack.enter_context(run_dir.lock())  # before anything is read for the resume
        import_tensorflow_quietly()
        from gankit.training.loop import Interrupted, Trainer

        leading = _leading_callbacks(recipe)
        trainer = Trainer(recipe, run_dir, resume=resume, progress=not quiet,
                          callbacks=callbacks, leading_callbacks=leading)
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = show_warning
            trainer.prepare()  # builds, loads the data, restores: writes nothing
            for callback in leading:  # the metrics' reference data, before anything is written
                callback.preflight(recipe)
            trainer.session.distribution.agree_on_start(  # multi_worker
                trainer.start, trainer.session.precision.policy)
            if trainer.nothing_left and finished(run_dir):
                print(f"gankit: {run_dir.path} is at step {trainer.start}; train.steps is "
                      f"{recipe.train.steps}, so nothing is left to train (extend it with "
                      f"--set train.steps=N)", file=sys.stderr)
                return TrainResult(run_dir.path, "up to date", trainer.start,
                                   start=trainer.start)
            if not resume:
                stack.enter_context(run_dir.create_locked())
            run_dir.clean_leftovers()
            if resume:
                from gankit.rundir.run_dir import ensure_tree

                for name in ensure_tree(run_dir):
                    print(f"gankit: {run_dir.path / name} was missing; made it again",
                          file=sys.stderr)
            previous = _recipe_bytes(run_dir) if resume else None
            if recipe.train.steps > trainer.start or not resume:
                run_dir.write_recipe(recipe.to_dict())  # on resume: records an extended train.steps
            print(f"gankit: {'resuming' if resume else 'training'} {recipe.name} in "
                  f"{run_dir.path}; precision {trainer.session.precision.describe()}",
                  file=sys.stderr)
            try:
                result = trainer.run()
            except Interrupted as stop:
                print(f"gankit: {stop}", file=sys.stderr)
                return TrainResult(run_dir.path, "interrupted", stop.step, stop.exit_code,
                                   start=trainer.start)
            except BaseException:
                if previous is not None:  # a failed resume leaves the recipe it found
                    _restore_recipe(run_dir, previous, trainer.start)
                raise
            from gankit.app.report import write_report_after_run

            write_report_after_run(run_dir.path)  # a failed report warns; the run succeeded
    _summary(recipe, run_dir, result)
    return TrainResult(result.run_dir, "stopped" if result.stopped else "completed",
                       result.step, 0, result.start, dict(result.metrics), result.seconds,
                       result.generator_file, result.ema_file)


def _recipe_bytes(run_dir) -> bytes | None:
    try:
        return run_dir.recipe_file.read_bytes()
    except OSError:
        return None


def _restore_recipe(run_dir, previous: bytes, start: int) -> None:
    """Put back the recipe.yaml a resume found, if the resume failed before any checkpoint
    of its own: the newest checkpoint is still the old recipe's, and a plain ``gankit
    resume`` (what the failure's message may advise) must find that recipe."""
    from gankit.rundir.checkpoints import CheckpointStore
    from gankit.util import atomic

    steps = CheckpointStore(run_dir.checkpoints).steps()
    if steps and steps[-1] > start:
        return  # it checkpointed under the new recipe: that recipe is the run's now
    try:
        if run_dir.recipe_file.read_bytes() != previous:
            atomic.write_bytes(run_dir.recipe_file, previous)
    except OSError:
        pass


def _summary(recipe, run_dir, result) -> None:
    from gankit.training.callbacks import describe

    rate = ((result.step - result.start) / result.seconds) if result.seconds > 0 else 0.0
    if result.stopped:  # the time budget (train.max_minutes) was used up
        print(f"gankit: stopped at the time budget (train.max_minutes="
              f"{recipe.train.max_minutes:g}) after step {result.step} of {recipe.train.steps}; "
              f"a checkpoint, the generator and the report were saved. Continue with: "
              f"gankit resume {result.run_dir}", file=sys.stderr)
    print(f"{'Stopped at' if result.stopped else 'Finished'} step {result.step} in "
          f"{result.seconds:.1f} s ({rate:.2f} step/s); {describe(result.metrics)}")
    print(f"Run directory: {result.run_dir}")
    print(f"  generator:   {result.generator_file}")
    if result.ema_file:
        print(f"  EMA:         {result.ema_file}")
    print(f"  samples:     {run_dir.samples}")
    print(f"  losses:      {run_dir.losses_file}")


def _train_worker(recipe, run_dir, *, resume: bool, role, callbacks: Sequence[Any] = ()
                  ) -> TrainResult:
    """A non-chief worker of ``train.distribute: multi_worker``: trains in step with the
    chief and writes nothing in ``run_dir``, which only the chief writes. It resumes from
    the checkpoints there (so every worker must see the run directory: a shared file
    system); its own samples, logs and checkpoints go to a temporary folder, deleted at
    the end."""
    import shutil
    import tempfile

    from gankit.rundir.run_dir import RunDir

    scratch = Path(tempfile.mkdtemp(prefix=f"gankit-worker{role.index}-"))
    try:
        own = RunDir(scratch / "run").create()
        import_tensorflow_quietly()
        from gankit.training.loop import Interrupted, Trainer

        trainer = Trainer(recipe, own, resume=resume, progress=False,
                          restore_from=run_dir.checkpoints, callbacks=callbacks,
                          leading_callbacks=_leading_callbacks(recipe))
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = show_warning
            trainer.prepare()
            trainer.session.distribution.agree_on_start(trainer.start,
                                                        trainer.session.precision.policy)
            if trainer.nothing_left and finished(run_dir):
                return TrainResult(run_dir.path, "up to date", trainer.start,
                                   start=trainer.start)
            own.write_recipe(recipe.to_dict())
            print(f"gankit: worker {role.index} of {role.count} ({role.task}) "
                  f"{'resuming' if resume else 'training'} {recipe.name} at step "
                  f"{trainer.start}; the chief writes {run_dir.path}", file=sys.stderr)
            try:
                result = trainer.run()
            except Interrupted as stop:
                print(f"gankit: worker {role.index} stopped after step {stop.step}",
                      file=sys.stderr)
                return TrainResult(run_dir.path, "interrupted", stop.step, stop.exit_code,
                                   start=trainer.start)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"Worker {role.index} finished step {result.step}")
    return TrainResult(run_dir.path, "worker done", result.step, 0, result.start,
                       dict(result.metrics), result.seconds)


def finished(run_dir) -> bool:
    """The run completed: its status says so and its generator was saved."""
    from gankit.rundir.run_dir import CorruptRunFileError

    try:
        status = run_dir.read_status()
    except CorruptRunFileError:
        return False  # resuming finishes it again and writes a new run.json
    return status.get("status") == "completed" and run_dir.generator_file.is_file()
