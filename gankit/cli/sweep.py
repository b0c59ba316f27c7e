"""``gankit sweep BASE``: tune a recipe with timed trials (:mod:`gankit.app.sweep`)."""

from __future__ import annotations

import warnings
from pathlib import Path

from gankit.app.train import import_tensorflow_quietly, plugins, show_warning
from gankit.errors import GankitError


def add_parser(sub) -> None:
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
    sweep.set_defaults(func=command)


def command(args) -> int:
    from gankit.app.sweep import default_out, plan_sweep, read_state, report, run_sweep

    if args.table:
        state = read_state(Path(args.out) if args.out else default_out(args.base))
        if state is None:
            raise GankitError("no sweep results there yet (give the sweep's --out)")
        print(report(state))
        return 0
    plan = plan_sweep(args.base, args.trials, minutes=args.minutes, reference=args.reference,
                      train=args.train, holdout=args.holdout, out=args.out, n=args.n,
                      extractor=args.extractor, extractor_overrides=args.overrides,
                      snapshot_minutes=args.snapshot_minutes, only=args.only,
                      rerun=args.rerun, registry=plugins().registry)
    import_tensorflow_quietly()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show_warning
        return run_sweep(plan, only=args.only, rerun=args.rerun, quiet=args.quiet)
