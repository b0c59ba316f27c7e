"""``gankit run RECIPE``: train a recipe (:func:`gankit.app.train.train`)."""

from __future__ import annotations

from gankit.app.train import resume, train
from gankit.cli.common import overrides
from gankit.errors import GankitError


def add_parser(sub) -> None:
    run = sub.add_parser("run", help="train a recipe")
    run.add_argument("recipe", help="a recipe .yaml file")
    overrides(run)
    run.add_argument("--out", help="run directory (default: runs/<recipe>-<time>)")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue this run directory")
    run.add_argument("--force", action="store_true",
                     help="with --resume: continue even though the recipe changed")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=command)


def command(args) -> int:
    if args.resume:
        if args.out:
            raise GankitError("--out and --resume exclude each other: --resume continues the "
                              "run directory it names")
        return resume(args.resume, recipe=args.recipe, overrides=args.overrides,
                      force=args.force, quiet=args.quiet).exit_code
    return train(args.recipe, overrides=args.overrides, out=args.out,
                 quiet=args.quiet).exit_code
