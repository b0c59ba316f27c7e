"""``gankit sample RUN_DIR``: draw a grid from a run's generator (:mod:`gankit.app.sample`)."""

from __future__ import annotations

import warnings

from gankit.app.train import import_tensorflow_quietly, plugins, show_warning


def add_parser(sub) -> None:
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
    sample.set_defaults(func=command)


def command(args) -> int:
    from gankit.app.sample import draw, plan_sample

    plan = plan_sample(args.run_dir, n=args.n, seed=args.seed, checkpoint=args.checkpoint,
                       out=args.out, registry=plugins().registry, use_ema=not args.no_ema,
                       best=args.best, label=args.label, per_class=args.per_class)
    import_tensorflow_quietly()
    with warnings.catch_warnings():  # a skipped corrupt checkpoint: one line, as in resume
        warnings.simplefilter("always")
        warnings.showwarning = show_warning
        path = draw(plan, progress=plan.n > 1024)
    print(path)
    return 0
