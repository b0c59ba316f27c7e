"""``gankit evaluate SOURCE``: score generated images (:mod:`gankit.app.evaluate`), and
with ``--nearest K`` check them for memorised training images (:mod:`gankit.app.nearest`)."""

from __future__ import annotations

import json
import sys
import warnings

from gankit.app.train import import_tensorflow_quietly, plugins, show_warning
from gankit.errors import GankitError
from gankit.evaluation.nearest import DEFAULT_N, DEFAULT_ROWS, MAX_K


def add_parser(sub) -> None:
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
    evaluate.add_argument("--truncation", type=float, metavar="T",
                          help="a generator's latents from a normal distribution truncated to "
                               "[-T, T] (BigGAN's truncation trick, 0.01 to 10; as gankit "
                               "sample --truncation)")
    evaluate.add_argument("--json", metavar="FILE",
                          help="write the result here (default for a run directory: "
                               "RUN_DIR/evaluation-<time>.json)")
    evaluate.add_argument("--batch-size", type=int, default=64, metavar="B",
                          help="images per extractor call (default 64)")
    evaluate.add_argument("--no-cache", action="store_true",
                          help="compute the reference features even if they are cached")
    evaluate.add_argument("--quiet", action="store_true", help="no progress lines")
    nearest = evaluate.add_argument_group(
        "memorisation check", "the K nearest --reference images of generated images, in the "
        "extractor's features and in pixels, against held-out real images' (docs/metrics.md)")
    nearest.add_argument("--nearest", type=int, metavar="K",
                         help=f"the K nearest real images of each shown generated image (1 to "
                              f"{MAX_K}); writes RUN_DIR/nearest.png and nearest.json")
    nearest.add_argument("--nearest-rows", type=int, metavar="R",
                         help=f"generated images shown in the panel (default {DEFAULT_ROWS})")
    nearest.add_argument("--nearest-n", type=int, metavar="N",
                         help=f"generated images whose nearest distances are summarised "
                              f"(default {DEFAULT_N}; the first R are shown)")
    nearest.add_argument("--holdout", metavar="REFERENCE",
                         help="real images the generator did not train on (a folder or a "
                              "recipe .yaml); default: a random fifth of --reference")
    nearest.add_argument("--nearest-out", metavar="FILE.png",
                         help="where the panel goes, FILE.json beside it (default for a run "
                              "directory: RUN_DIR/nearest.png)")
    evaluate.set_defaults(func=command)


def command(args) -> int:
    from gankit.app.evaluate import plan_evaluation

    if not 1 <= args.batch_size <= 4096:
        raise GankitError(f"--batch-size must be between 1 and 4096, got {args.batch_size}")
    plan = plan_evaluation(args.source, args.metrics, reference=args.reference,
                           extractor=args.extractor, overrides=args.overrides, n=args.n,
                           reference_n=args.reference_n, seed=args.seed, best=args.best,
                           value_range=args.value_range, json_path=args.json,
                           registry=plugins().registry, use_ema=not args.no_ema,
                           nearest=_nearest_request(args), truncation=args.truncation)
    import_tensorflow_quietly()

    def show(message, category, *rest, **kwargs) -> None:
        if category.__name__ == "EvaluationWarning":
            print(f"gankit: warning: {message}", file=sys.stderr)
        else:
            show_warning(message, category, *rest, **kwargs)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        if plan.metrics:
            _metrics(plan, args)
        if plan.nearest is not None:
            _nearest(plan, args)
    return 0


def _nearest_request(args):
    from gankit.app.nearest import NearestRequest

    if args.nearest is None:
        given = [flag for flag, value in (("--nearest-rows", args.nearest_rows),
                                          ("--nearest-n", args.nearest_n),
                                          ("--holdout", args.holdout),
                                          ("--nearest-out", args.nearest_out))
                 if value is not None]
        if given:
            raise GankitError(f"{given[0]} is an option of the memorisation check: give "
                              f"--nearest K too")
        return None
    return NearestRequest(args.nearest, args.nearest_rows, args.nearest_n, args.holdout,
                          args.nearest_out)


def _nearest(plan, args) -> None:
    from gankit.app.nearest import run_nearest, summary_lines

    result = run_nearest(plan.nearest, plan.source, plan.reference, plan.extractor,
                         seed=plan.seed, reference_n=plan.reference_n,
                         batch_size=args.batch_size, cache=not args.no_cache,
                         progress=not args.quiet)
    print("\n".join(summary_lines(result)))
    print(f"wrote {plan.nearest.png} and {plan.nearest.json.name}"
          + (" (shown in report.html by gankit report)"
             if getattr(plan.source, "run_dir", None) is not None
             and plan.nearest.png.parent == plan.source.run_dir else ""))


def _metrics(plan, args) -> None:
    from gankit.evaluation.features import evaluate
    from gankit.util import atomic

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
            atomic.write_text(plan.json_path, result.to_json())
        except OSError as exc:
            raise GankitError(f"cannot write {plan.json_path}: {exc.strerror or exc}; choose "
                              f"another --json") from None
        print(f"wrote {plan.json_path}")
