"""``gankit resume RUN_DIR``: continue a run (:func:`gankit.app.train.resume`)."""

from __future__ import annotations

from gankit.app.train import resume
from gankit.cli.common import overrides


def add_parser(sub) -> None:
    parser = sub.add_parser("resume", help="continue a run from its newest checkpoint")
    parser.add_argument("run_dir", help="a run directory")
    overrides(parser)
    parser.add_argument("--force", action="store_true",
                        help="continue even though --set changed the recipe")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=command)


def command(args) -> int:
    return resume(args.run_dir, overrides=args.overrides, force=args.force,
                  quiet=args.quiet).exit_code
