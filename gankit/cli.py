"""The ``gankit`` command line: run, resume, validate, sample, plugins."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Sequence

from gankit import __version__
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
    sample.add_argument("-n", type=int, default=64, help="number of images (default 64)")
    sample.add_argument("--seed", type=int, default=0, help="latent seed (default 0)")
    sample.add_argument("--checkpoint", type=int, metavar="STEP",
                        help="use this checkpoint step (default: the newest, else generator.keras)")
    sample.add_argument("--out", help="output PNG (default: RUN_DIR/samples/sample_seed<S>.png)")

    plugins = sub.add_parser("plugins", help="list installed plugins and their components")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins.add_argument("--markdown", action="store_true",
                         help="print the recipe reference (every key) as Markdown")

    new_plugin = sub.add_parser("new-plugin", help="write a working plugin skeleton to start from")
    new_plugin.add_argument("name", help="the plugin's name, e.g. 'myplugin' (lowercase letters, "
                                         "digits, '_' or '-'); recipes write 'myplugin:NAME'")
    new_plugin.add_argument("--dir", default=".",
                            help="where to create the gankit-NAME folder (default: here)")
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


def _plugins(report_errors: bool = True):
    from gankit.plugins import default_plugins

    loaded = default_plugins()
    if report_errors:
        for message in loaded.errors:
            print(f"gankit: error: {message}", file=sys.stderr)
    return loaded


def _load(path: str, overrides: Sequence[str]):
    from gankit.recipe import load_recipe

    return load_recipe(path, overrides, registry=_plugins().registry)


def cmd_validate(args) -> int:
    recipe = _load(args.recipe, args.overrides)
    if args.show:
        import yaml
        print(yaml.safe_dump(recipe.to_dict(), sort_keys=False), end="")
        return 0
    parts = ", ".join(f"{k} {s.type} ({s.registration.distribution})"
                      for k, s in recipe.components.items())
    print(f"{args.recipe}: OK: {parts}; {recipe.train.steps} steps of batch "
          f"{recipe.train.batch_size}")
    return 0


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: data}


def _changed_keys(old: dict, new: dict) -> list[str]:
    """Keys whose values differ, except train.steps (a run may be extended)."""
    a, b = _flatten(old), _flatten(new)
    keys = sorted(set(a) | set(b))
    return [f"{k}: {a.get(k, '(absent)')!r} -> {b.get(k, '(absent)')!r}"
            for k in keys if k != "train.steps" and a.get(k) != b.get(k)]


def _resume_recipe(run_dir, recipe_path: str | None, overrides: Sequence[str], force: bool):
    from gankit.recipe import apply_overrides, load_raw, validate

    run_dir.check_existing()
    registry = _plugins().registry
    stored_raw = load_raw(run_dir.recipe_file)
    stored = validate(stored_raw, registry, source=str(run_dir.recipe_file))
    if recipe_path is None:
        recipe = validate(apply_overrides(stored_raw, overrides), registry,
                          source=str(run_dir.recipe_file))
    else:
        recipe = _load(recipe_path, overrides)
    changed = _changed_keys(stored.to_dict(), recipe.to_dict())
    if changed and not force:
        raise RecipeError("refusing to resume with a changed recipe (" + "; ".join(changed)
                          + "); pass --force to resume anyway", source=str(run_dir.path))
    return recipe


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
    _import_tensorflow_quietly()
    from gankit.trainer import Interrupted, Trainer

    trainer = Trainer(recipe, run_dir, resume=resume, progress=not quiet)
    if not resume:
        run_dir.ensure_new()  # fail before the slow part if the directory is taken
    trainer.build()  # loads the data: a missing dataset fails before anything is written
    if not resume:
        run_dir.create()
    run_dir.write_recipe(recipe.to_dict())  # on resume: records an extended train.steps
    print(f"gankit: {'resuming' if resume else 'training'} {recipe.name} in {run_dir.path}",
          file=sys.stderr)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = _show_warning
        try:
            result = trainer.run()
        except Interrupted as stop:
            print(f"gankit: {stop}", file=sys.stderr)
            return EXIT_INTERRUPTED
    losses = " ".join(f"{k} {v:.4f}" for k, v in result.metrics.items() if k.endswith("loss"))
    rate = ((result.step - result.start) / result.seconds) if result.seconds else 0.0
    print(f"Finished step {result.step} in {result.seconds:.1f} s ({rate:.2f} step/s); {losses}")
    print(f"Run directory: {result.run_dir}")
    print(f"  generator:   {result.generator_file}")
    print(f"  samples:     {run_dir.samples}")
    print(f"  losses:      {run_dir.losses_file}")
    return 0


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    from gankit.checkpoints import CheckpointWarning

    if issubclass(category, CheckpointWarning):
        print(f"gankit: warning: {message}", file=sys.stderr)


def cmd_run(args) -> int:
    from gankit.run_dir import RunDir

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
    from gankit.run_dir import RunDir

    run_dir = RunDir(args.run_dir)
    recipe = _resume_recipe(run_dir, None, args.overrides, args.force)
    return _train(recipe, run_dir, resume=True, quiet=args.quiet)


def cmd_sample(args) -> int:
    _import_tensorflow_quietly()
    from gankit.sampling import sample_grid

    with warnings.catch_warnings():  # a skipped corrupt checkpoint: one line, as in resume
        warnings.simplefilter("always")
        warnings.showwarning = _show_warning
        path = sample_grid(args.run_dir, n=args.n, seed=args.seed, checkpoint=args.checkpoint,
                           out=args.out, registry=_plugins().registry)
    print(path)
    return 0


def cmd_plugins(args) -> int:
    loaded = _plugins(report_errors=not args.json)
    registry = loaded.registry
    if args.markdown:
        from gankit.reference import render_reference
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
    from gankit.scaffold import write_plugin

    folder = write_plugin(args.name, args.dir)
    print(f"Created {folder}. Next:\n  pip install -e {folder}\n  pytest {folder}\n"
          f"  gankit run {folder / 'recipes' / 'example.yaml'} --set dataset.path=IMAGE_FOLDER")
    return 0


_COMMANDS = {"run": cmd_run, "resume": cmd_resume, "validate": cmd_validate,
             "sample": cmd_sample, "plugins": cmd_plugins, "new-plugin": cmd_new_plugin}
