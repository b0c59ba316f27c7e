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
    sample.add_argument("--walk", type=int, metavar="N",
                        help="N latent walks (spherical interpolations between random "
                             "latents; a conditional run: its classes at the same latents), "
                             "as PNG strips or, with --out walk.gif, an animated GIF")
    sample.add_argument("--steps", type=int, default=8, metavar="K",
                        help="images along each walk (default 8)")
    sample.add_argument("--truncation", type=float, metavar="T",
                        help="draw the latents from a normal distribution truncated to "
                             "[-T, T] (BigGAN's truncation trick, 0.01 to 10): plainer, more "
                             "typical images, less variety; default file "
                             "sample_seed<S>_truncation<T>.png")
    sample.set_defaults(func=command)


def command(args) -> int:
    from gankit.app.sample import draw, plan_sample

    if args.walk is not None:
        return _walk(args)
    plan = plan_sample(args.run_dir, n=args.n, seed=args.seed, checkpoint=args.checkpoint,
                       out=args.out, registry=plugins().registry, use_ema=not args.no_ema,
                       best=args.best, label=args.label, per_class=args.per_class,
                       truncation=args.truncation)
    import_tensorflow_quietly()
    with warnings.catch_warnings():  # a skipped corrupt checkpoint: one line, as in resume
        warnings.simplefilter("always")
        warnings.showwarning = show_warning
        path = draw(plan, progress=plan.n > 1024)
    print(path)
    return 0


def _walk(args) -> int:
    from pathlib import Path

    from gankit.app.sample import plan_sample
    from gankit.app.walk import check_walk, draw_walk
    from gankit.errors import GankitError

    if args.n is not None or args.per_class is not None:
        raise GankitError("--walk draws its own rows: leave out -n and --per-class")
    check_walk(args.walk, args.steps, args.out)
    suffix = "" if args.truncation is None else f"_truncation{args.truncation:g}"
    out = args.out or str(Path(args.run_dir) / "samples" / f"walk_seed{args.seed}{suffix}.png")
    plan = plan_sample(args.run_dir, n=1, seed=args.seed, checkpoint=args.checkpoint,
                       out=out, registry=plugins().registry, use_ema=not args.no_ema,
                       best=args.best, label=args.label, truncation=args.truncation)
    import_tensorflow_quietly()
    print(draw_walk(plan, args.walk, args.steps))
    return 0
