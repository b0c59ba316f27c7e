"""The ``gankit`` command line: run, resume, validate, sample, plugins."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Sequence

from gankit._version import __version__
from gankit.errors import GankitError, RecipeError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gankit", description="Train GANs from readable, composable, tested parts.")
    parser.add_argument("--version", action="version", version=f"gankit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def overrides(p: argparse.ArgumentParser) -> None:
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V",
                       help="override a recipe key, e.g. --set train.steps=20 (YAML value)")

    run = sub.add_parser("run", help="train a recipe")
    run.add_argument("recipe", help="a recipe .yaml file")
    overrides(run)
    run.add_argument("--out", help="run directory (default: runs/<recipe>-<time>)")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue this run directory")
    run.add_argument("--force", action="store_true",
                     help="with --resume: continue even though the recipe changed")
    run.add_argument("--quiet", action="store_true", help="no progress bar")

    resume = sub.add_parser("resume", help="continue a run from its newest checkpoint")
    resume.add_argument("run_dir", help="a run directory")
    overrides(resume)
    resume.add_argument("--force", action="store_true",
                        help="continue even though --set changed the recipe")
    resume.add_argument("--quiet", action="store_true", help="no progress bar")

    validate = sub.add_parser("validate", help="check a recipe without training")
    validate.add_argument("recipe")
    overrides(validate)
    validate.add_argument("--print", dest="show", action="store_true",
                          help="print the resolved recipe with every default")

    sample = sub.add_parser("sample", help="draw a grid of images from a run's generator")
    sample.add_argument("run_dir")
    sample.add_argument("-n", type=int, help="number of images (default 64)")
    sample.add_argument("--seed", type=int, default=0, help="latent seed (default 0)")
    sample.add_argument("--checkpoint", type=int, metavar="STEP",
                        help="use this checkpoint step (default: the newest, else generator.keras)")
    sample.add_argument("--out", help="output PNG (default: RUN_DIR/samples/sample_seed<S>.png)")
    sample.add_argument("--best", action="store_true",
                        help="use the best generator by the recipe's metrics (RUN_DIR/best/)")
    sample.add_argument("--no-ema", action="store_true",
                        help="use the trained generator, not its EMA copy (runs with ema: ...)")
    sample.add_argument("--label", metavar="CLASS",
                        help="a conditional run: draw only this class (its name or index)")
    sample.add_argument("--per-class", type=int, metavar="N",
                        help="a conditional run: one row of N images per class, the class "
                             "names beside the rows (default file: "
                             "RUN_DIR/samples/sample_per_class<N>_seed<S>.png)")

    plugins = sub.add_parser("plugins", help="list installed plugins and their components")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins.add_argument("--markdown", action="store_true",
                         help="print the recipe reference (every key) as Markdown")

    new_plugin = sub.add_parser("new-plugin", help="write a working plugin skeleton to start from")
    new_plugin.add_argument("name", help="the plugin's name, e.g. 'myplugin' (lowercase letters, "
                                         "digits, '_' or '-'); recipes write 'myplugin:NAME'")
    new_plugin.add_argument("--dir", default=".",
                            help="where to create the gankit-NAME folder (default: here)")

    classifier = sub.add_parser(
        "train-classifier", help="train a small classifier on a labelled dataset, as a "
                                 "feature network for offline metrics (keras_model)")
    classifier.add_argument("--dataset", required=True, metavar="SECTION",
                            help="the dataset as a recipe writes it (YAML), e.g. "
                                 "'{type: cifar10, path: cifar-10-python.tar.gz}'")
    classifier.add_argument("--out", required=True, metavar="FILE.keras",
                            help="the model to write; a report FILE.json goes beside it")
    classifier.add_argument("--holdout", type=float, default=0.1, metavar="FRACTION",
                            help="part of each class kept out of training to measure the "
                                 "accuracy on (default 0.1)")
    classifier.add_argument("--epochs", type=int, default=10, help="passes over the training "
                                                                   "images (default 10)")
    classifier.add_argument("--batch-size", type=int, default=256, metavar="B",
                            help="images per update (default 256)")
    classifier.add_argument("--seed", type=int, default=0,
                            help="seed of the split, the weights and the augmentation "
                                 "(default 0)")
    classifier.add_argument("--width", type=int, default=48, metavar="W",
                            help="channels of the first block; then 2W and 4W (default 48)")
    classifier.add_argument("--precision", choices=("auto", "mixed_bfloat16", "float32"),
                            default="auto",
                            help="compute in bfloat16 (faster on CPUs with AMX or AVX-512 "
                                 "BF16) or float32; auto (default) picks the faster here; "
                                 "the saved model is float32")

    report = sub.add_parser("report", help="write a run's self-contained report.html "
                                           "(curves, sample grids, recipe, timings, machine)")
    report.add_argument("run_dir", help="a run directory")
    report.add_argument("--out", metavar="FILE",
                        help="the HTML file to write (default: RUN_DIR/report.html)")

    evaluate = sub.add_parser("evaluate", help="score generated images: FID, KID, IS, "
                                               "precision/recall")
    evaluate.add_argument("source", help="a run directory, a .keras generator, or a folder of "
                                         "images")
    evaluate.add_argument("--metric", dest="metrics", action="append", default=[],
                          metavar="NAME", help="a metric to compute (repeatable): fid, kid, "
                                               "inception_score, precision_recall")
    evaluate.add_argument("--reference", metavar="REFERENCE",
                          help="the real images: a folder of images or a recipe .yaml whose "
                               "dataset to use")
    evaluate.add_argument("--extractor", default="inception_v3", metavar="NAME",
                          help="the feature network (default inception_v3; keras_model for "
                               "a .keras classifier of your own)")
    evaluate.add_argument("--set", dest="overrides", action="append", default=[],
                          metavar="K=V", help="configure the extractor or a metric, e.g. "
                                              "--set extractor.path=clf.keras (YAML value)")
    evaluate.add_argument("-n", type=int, help="generated images to score (default 5000; "
                                               "for a folder: all of its images)")
    evaluate.add_argument("--reference-n", type=int, metavar="N",
                          help="reference images to use, the first N (default: all)")
    evaluate.add_argument("--seed", type=int, default=0,
                          help="latent seed, and seed of KID's subsets (default 0)")
    evaluate.add_argument("--best", action="store_true",
                          help="use the run directory's best/ generator")
    evaluate.add_argument("--no-ema", action="store_true",
                          help="for a run directory: its trained generator, not the EMA copy")
    evaluate.add_argument("--value-range", type=float, nargs=2, metavar=("LOW", "HIGH"),
                          help="output range of a .keras generator (default: -1 1, tanh)")
    evaluate.add_argument("--json", metavar="FILE",
                          help="write the result here (default for a run directory: "
                               "RUN_DIR/evaluation-<time>.json)")
    evaluate.add_argument("--batch-size", type=int, default=64, metavar="B",
                          help="images per extractor call (default 64)")
    evaluate.add_argument("--no-cache", action="store_true",
                          help="compute the reference features even if they are cached")
    evaluate.add_argument("--quiet", action="store_true", help="no progress lines")

    sweep = sub.add_parser("sweep", help="tune a recipe: timed trials one at a time, both "
                                         "generators scored, a table and a page of grids")
    sweep.add_argument("base", help="the base recipe .yaml that the trials change")
    sweep.add_argument("--trials", required=True, metavar="TRIALS.yaml",
                       help="the trials: a mapping NAME: {what: ..., set: {KEY: VALUE}, "
                            "recipe: OTHER.yaml} (docs/sweep.md)")
    sweep.add_argument("--minutes", required=True, type=float, metavar="M",
                       help="training budget of each trial, minutes of wall-clock")
    sweep.add_argument("--reference", metavar="FOLDER",
                       help="real images the trials never train on, to score against")
    sweep.add_argument("--train", metavar="FOLDER",
                       help="train every trial on this folder of images (an image_folder "
                            "dataset with the recipe's scale)")
    sweep.add_argument("--holdout", type=float, metavar="FRACTION",
                       help="keep this share of --train's images (the last by file name) "
                            "out of training, to score against (instead of --reference)")
    sweep.add_argument("--out", metavar="DIR", help="the sweep's folder (default: "
                                                     "sweeps/<base recipe>)")
    sweep.add_argument("-n", type=int, default=2500,
                       help="generated images per score (default 2500, at most the "
                            "reference's count)")
    sweep.add_argument("--extractor", default="keras_model", metavar="NAME",
                       help="the feature network (default keras_model: a .keras classifier, "
                            "e.g. from gankit train-classifier, given with --set "
                            "extractor.path=FILE)")
    sweep.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="K=V", help="configure the extractor, e.g. --set "
                                           "extractor.path=classifier.keras")
    sweep.add_argument("--snapshot-minutes", type=float, nargs="+", default=[], metavar="M",
                       help="also score the generators of these minutes of each trial")
    sweep.add_argument("--only", action="append", default=[], metavar="NAME",
                       help="run only this trial (repeatable)")
    sweep.add_argument("--rerun", action="append", default=[], metavar="NAME",
                       help="train this trial again, discarding its result (repeatable)")
    sweep.add_argument("--table", action="store_true",
                       help="print the results so far as a Markdown table and stop")
    sweep.add_argument("--quiet", action="store_true", help="no results table at the end")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gankit`` command; returns the exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF C++ logs are noise to users
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except GankitError as err:
        print(f"gankit: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("gankit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`gankit plugins | head`): stop quietly, as other Unix tools
        # do, and keep Python from complaining while it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _plugins(report_errors: bool = True):
    from gankit.plugin.manager import default_plugins

    loaded = default_plugins()
    if report_errors:
        for message in loaded.errors:
            print(f"gankit: error: {message}", file=sys.stderr)
    return loaded


def _load(path: str, overrides: Sequence[str]):
    from gankit.recipe.validation import load_recipe

    return load_recipe(path, overrides, registry=_plugins().registry)


def cmd_validate(args) -> int:
    recipe = _load(args.recipe, args.overrides)
    if args.show:
        from gankit.recipe.strict_yaml import dump_yaml
        print(dump_yaml(recipe.to_dict()), end="")
        return 0
    parts = ", ".join(f"{k} {s.type}" for k, s in recipe.components.items())
    extra = [f"{len(recipe.sections['regularizer'])} regularizer(s)"] if recipe.sections["regularizer"] else []
    if recipe.ema:
        extra.append(f"EMA {recipe.ema.decay}")
    parts += "".join(f", {e}" for e in extra)
    warning = _precision_preflight(recipe.train.precision)
    print(f"{args.recipe}: OK: {parts}; {recipe.train.steps} steps of batch "
          f"{recipe.train.batch_size}")
    if warning:
        print(f"gankit: warning: {warning}", file=sys.stderr)
    return 0


def _precision_preflight(precision: str) -> str | None:
    """Before TensorFlow loads: refuse a precision that would crash it on this CPU (one
    line, exit 2), and return the emulated-precision warning, where the CPU alone decides
    them (a machine that may have a GPU is left to the session, which asks TensorFlow)."""
    from gankit.util import machine
    from gankit.training.precision import check_usable, emulation_warning

    if machine.gpu_may_be_present():
        return None
    check_usable(precision)  # a policy that would crash TensorFlow: one line, exit 2
    return emulation_warning(precision)


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
    from gankit.recipe.validation import UNTRACKED_TRAIN_KEYS

    a, b = _flatten(old), _flatten(new)
    keys = sorted(set(a) | set(b))
    free = {f"train.{k}" for k in UNTRACKED_TRAIN_KEYS}
    return [f"{k}: {a.get(k, '(absent)')!r} -> {b.get(k, '(absent)')!r}"
            for k in keys if ".".join(k.split(".")[:2]) not in free and a.get(k) != b.get(k)]


def _resume_recipe(run_dir, recipe_path: str | None, overrides: Sequence[str], force: bool):
    """The recipe to resume with: the run's own (or ``recipe_path``) with ``overrides``.

    Refuses, unless ``force``: keys changed against the stored recipe (train.steps may
    grow), and a stored recipe.yaml that is not the one the newest checkpoint was trained
    with (edited by hand).
    """
    from gankit.rundir.checkpoints import CheckpointStore
    from gankit.recipe.validation import apply_overrides, load_raw, overridden_keys, validate

    run_dir.check_existing()
    registry = _plugins().registry
    stored_raw = load_raw(run_dir.recipe_file)
    stored = validate(stored_raw, registry, source=str(run_dir.recipe_file))
    if recipe_path is None:
        # The stored paths are absolute; a path given with --set is relative to here.
        recipe = validate(apply_overrides(stored_raw, overrides), registry,
                          source=str(run_dir.recipe_file), base_dir=Path.cwd(),
                          cwd_keys=overridden_keys(overrides))
    else:
        recipe = _load(recipe_path, overrides)
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


def _import_tensorflow_quietly() -> None:
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


def _train(recipe, run_dir, *, resume: bool, quiet: bool) -> int:
    """Train (or resume) ``recipe`` in ``run_dir``.

    Order matters for what a failure leaves behind: every check that needs no TensorFlow
    first; then the models are built, the data loaded and, on resume, the checkpoint
    restored, all without writing anything; only then is the run directory created or
    changed.
    """
    recipe.create("dataset").preflight()  # a missing data folder answers before TensorFlow loads
    _precision_preflight(recipe.train.precision)  # the session warns, knowing the devices
    if recipe.metrics is not None:
        from gankit.plugin.registry import create, using_registry

        with using_registry(recipe.registry):
            extractor = create("feature_extractor", recipe.metrics.extractor, "metrics.extractor")
        getattr(extractor, "preflight", lambda: None)()
    from gankit.training.distribute import worker_role

    role = worker_role(recipe.train.distribute)  # TF_CONFIG, checked before TensorFlow loads
    if not role.is_chief:
        return _train_worker(recipe, run_dir, resume=resume, role=role)
    if not resume:
        run_dir.ensure_new()  # fail before the slow part if the directory is taken
    with contextlib.ExitStack() as stack:
        if resume:
            stack.enter_context(run_dir.lock())  # before anything is read for the resume
        _import_tensorflow_quietly()
        from gankit.training.loop import Interrupted, Trainer

        trainer = Trainer(recipe, run_dir, resume=resume, progress=not quiet)
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = _show_warning
            trainer.prepare()  # builds, loads the data, restores: writes nothing
            trainer.session.distribution.agree_on_start(  # multi_worker
                trainer.start, trainer.session.precision.policy)
            if trainer.nothing_left and _finished(run_dir):
                print(f"gankit: {run_dir.path} is at step {trainer.start}; train.steps is "
                      f"{recipe.train.steps}, so nothing is left to train (extend it with "
                      f"--set train.steps=N)", file=sys.stderr)
                return 0
            if not resume:
                stack.enter_context(run_dir.create_locked())
            run_dir.clean_leftovers()
            if recipe.train.steps > trainer.start or not resume:
                run_dir.write_recipe(recipe.to_dict())  # on resume: records an extended train.steps
            print(f"gankit: {'resuming' if resume else 'training'} {recipe.name} in "
                  f"{run_dir.path}; precision {trainer.session.precision.describe()}",
                  file=sys.stderr)
            try:
                result = trainer.run()
            except Interrupted as stop:
                print(f"gankit: {stop}", file=sys.stderr)
                return stop.exit_code
    rate = ((result.step - result.start) / result.seconds) if result.seconds > 0 else 0.0
    from gankit.training.callbacks import describe

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
    return 0


def _train_worker(recipe, run_dir, *, resume: bool, role) -> int:
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
        _import_tensorflow_quietly()
        from gankit.training.loop import Interrupted, Trainer

        trainer = Trainer(recipe, own, resume=resume, progress=False,
                          restore_from=run_dir.checkpoints)
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = _show_warning
            trainer.prepare()
            trainer.session.distribution.agree_on_start(trainer.start,
                                                        trainer.session.precision.policy)
            if trainer.nothing_left and _finished(run_dir):
                return 0
            own.write_recipe(recipe.to_dict())
            print(f"gankit: worker {role.index} of {role.count} ({role.task}) "
                  f"{'resuming' if resume else 'training'} {recipe.name} at step "
                  f"{trainer.start}; the chief writes {run_dir.path}", file=sys.stderr)
            try:
                result = trainer.run()
            except Interrupted as stop:
                print(f"gankit: worker {role.index} stopped after step {stop.step}",
                      file=sys.stderr)
                return stop.exit_code
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"Worker {role.index} finished step {result.step}")
    return 0


def _finished(run_dir) -> bool:
    """The run completed: its status says so and its generator was saved."""
    from gankit.rundir.run_dir import CorruptRunFileError

    try:
        status = run_dir.read_status()
    except CorruptRunFileError:
        return False  # resuming finishes it again and writes a new run.json
    return status.get("status") == "completed" and run_dir.generator_file.is_file()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    from gankit.rundir.checkpoints import CheckpointWarning
    from gankit.errors import PrecisionWarning
    from gankit.rundir.run_dir import RunDirWarning

    if issubclass(category, (CheckpointWarning, RunDirWarning, PrecisionWarning)) or \
            category.__name__ == "DatasetWarning":
        print(f"gankit: warning: {message}", file=sys.stderr)


def cmd_run(args) -> int:
    from gankit.rundir.run_dir import RunDir

    if args.resume:
        if args.out:
            raise GankitError("--out and --resume exclude each other: --resume continues the "
                              "run directory it names")
        run_dir = RunDir(args.resume)
        recipe = _resume_recipe(run_dir, args.recipe, args.overrides, args.force)
        return _train(recipe, run_dir, resume=True, quiet=args.quiet)
    recipe = _load(args.recipe, args.overrides)
    run_dir = RunDir(args.out or RunDir.default_path(recipe.name))
    return _train(recipe, run_dir, resume=False, quiet=args.quiet)


def cmd_resume(args) -> int:
    from gankit.rundir.run_dir import RunDir

    run_dir = RunDir(args.run_dir)
    recipe = _resume_recipe(run_dir, None, args.overrides, args.force)
    return _train(recipe, run_dir, resume=True, quiet=args.quiet)


def cmd_sample(args) -> int:
    from gankit.app.sample import draw, plan_sample

    plan = plan_sample(args.run_dir, n=args.n, seed=args.seed, checkpoint=args.checkpoint,
                       out=args.out, registry=_plugins().registry, use_ema=not args.no_ema,
                       best=args.best, label=args.label, per_class=args.per_class)
    _import_tensorflow_quietly()
    with warnings.catch_warnings():  # a skipped corrupt checkpoint: one line, as in resume
        warnings.simplefilter("always")
        warnings.showwarning = _show_warning
        path = draw(plan, progress=plan.n > 1024)
    print(path)
    return 0


def cmd_plugins(args) -> int:
    loaded = _plugins(report_errors=not args.json)
    registry = loaded.registry
    if args.markdown:
        from gankit.app.reference import render_reference
        print(render_reference(registry), end="")
        return 0
    if args.json:
        data = {
            "plugins": [{"name": p.name, "distribution": p.distribution, "version": p.version,
                         "entry_point": p.entry_point, "status": p.status, "error": p.error,
                         "provides": [f"{r.kind}:{r.name}" for r in p.provides]}
                        for p in loaded.plugins],
            "warnings": loaded.warnings,
            "components": {
                kind: [{"name": r.name, "qualified_name": r.qualified_name,
                        "plugin": r.plugin, "distribution": r.distribution,
                        "version": r.version, "summary": r.summary,
                        "params": {k: {"default": p.default if not p.required else None,
                                       "required": p.required, "expected": p.expected(),
                                       "doc": p.doc}
                                   for k, p in r.component.params.items()}}
                       for r in registry if r.kind == kind]
                for kind in registry.kinds},
        }
        print(json.dumps(data, indent=2, default=str))
        return 0
    for kind in registry.kinds:
        print(f"{kind}:")
        entries = [r for r in registry if r.kind == kind]
        if not entries:
            print("  (none)")
        for r in entries:
            clash = sum(e.name == r.name for e in entries) > 1
            note = "  [name clash: recipes must write the qualified name]" if clash else ""
            print(f"  {r.name:<16} {r.qualified_name:<24} {r.distribution} {r.version}  "
                  f"{r.summary}{note}")
    print("plugins:")
    for p in loaded.plugins:
        detail = f" ({p.error})" if p.error else ""
        provides = ", ".join(f"{r.kind} {r.name}" for r in p.provides)
        print(f"  {p.name:<16} {p.distribution} {p.version}  {p.status}{detail}"
              + (f": {provides}" if provides else ""))
    for message in loaded.warnings:
        print(f"gankit: warning: {message}", file=sys.stderr)
    return 0


def cmd_new_plugin(args) -> int:
    from gankit.plugin.scaffold import write_plugin

    folder = write_plugin(args.name, args.dir)
    print(f"Created {folder}. Next:\n  pip install -e {folder}\n  pytest {folder}\n"
          f"  gankit run {folder / 'recipes' / 'example.yaml'} --set dataset.path=IMAGE_FOLDER")
    return 0


def cmd_report(args) -> int:
    from gankit.app.report import write_report

    print(write_report(args.run_dir, args.out))
    return 0


def cmd_evaluate(args) -> int:
    from gankit.evaluation.features import evaluate, plan_evaluation
    from gankit.rundir.run_dir import write_text_atomic

    if not 1 <= args.batch_size <= 4096:
        raise GankitError(f"--batch-size must be between 1 and 4096, got {args.batch_size}")
    plan = plan_evaluation(args.source, args.metrics, reference=args.reference,
                           extractor=args.extractor, overrides=args.overrides, n=args.n,
                           reference_n=args.reference_n, seed=args.seed, best=args.best,
                           value_range=args.value_range, json_path=args.json,
                           registry=_plugins().registry, use_ema=not args.no_ema)
    _import_tensorflow_quietly()

    def show(message, category, *rest, **kwargs) -> None:
        if category.__name__ == "EvaluationWarning":
            print(f"gankit: warning: {message}", file=sys.stderr)
        else:
            _show_warning(message, category, *rest, **kwargs)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        result = evaluate(plan.source, plan.reference, plan.extractor, plan.metrics, plan.n,
                          plan.seed, reference_n=plan.reference_n, batch_size=args.batch_size,
                          cache=not args.no_cache, progress=not args.quiet)
    for name, value in result.values.items():
        print(f"{name:<20} {value:.6g}")
    protocol = result.protocol
    real = (f", {result.n_real} real ({protocol['reference']}"
            f"{'; cached features' if result.reference_cached else ''})" if result.n_real else "")
    print(f"images: {result.n_fake} generated ({protocol['source']}){real}")
    print(f"extractor: {json.dumps(protocol['extractor'], default=str)}")
    if plan.json_path is not None:
        try:
            write_text_atomic(plan.json_path, result.to_json())
        except OSError as exc:
            raise GankitError(f"cannot write {plan.json_path}: {exc.strerror or exc}; choose "
                              f"another --json") from None
        print(f"wrote {plan.json_path}")
    return 0


def cmd_train_classifier(args) -> int:
    from gankit.evaluation.classifier import (ClassifierConfig, check_output, describe, labelled_dataset,
                                   train_classifier)
    from gankit.recipe.strict_yaml import parse_yaml

    config = ClassifierConfig(holdout=args.holdout, epochs=args.epochs,
                              batch_size=args.batch_size, seed=args.seed, width=args.width,
                              precision=args.precision)
    section = parse_yaml(args.dataset, "--dataset")
    spec, dataset = labelled_dataset(section, _plugins().registry)
    out = check_output(args.out)
    warning = _precision_preflight(config.precision)
    if warning:
        print(f"gankit: warning: {warning}", file=sys.stderr)
    _import_tensorflow_quietly()
    result = train_classifier(dataset, out, config, description=spec.to_dict())
    print(describe(result))
    return 0


_COMMANDS = {"run": cmd_run, "resume": cmd_resume, "validate": cmd_validate,
             "sample": cmd_sample, "plugins": cmd_plugins, "new-plugin": cmd_new_plugin}
_COMMANDS["report"] = cmd_report
_COMMANDS["evaluate"] = cmd_evaluate
_COMMANDS["train-classifier"] = cmd_train_classifier


def cmd_sweep(args) -> int:
    from gankit.app.sweep import default_out, plan_sweep, read_state, run_sweep, table

    if args.table:
        state = read_state(Path(args.out) if args.out else default_out(args.base))
        if state is None:
            raise GankitError("no sweep results there yet (give the sweep's --out)")
        print(table(state))
        return 0
    plan = plan_sweep(args.base, args.trials, minutes=args.minutes, reference=args.reference,
                      train=args.train, holdout=args.holdout, out=args.out, n=args.n,
                      extractor=args.extractor, extractor_overrides=args.overrides,
                      snapshot_minutes=args.snapshot_minutes, only=args.only,
                      rerun=args.rerun, registry=_plugins().registry)
    _import_tensorflow_quietly()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = _show_warning
        return run_sweep(plan, only=args.only, rerun=args.rerun, quiet=args.quiet)


_COMMANDS["sweep"] = cmd_sweep
