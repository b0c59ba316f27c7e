"""``gankit export RUN_DIR|GENERATOR.keras --format F``: a trained generator for serving
without gankit (:mod:`gankit.app.export`)."""

from __future__ import annotations

import json

from gankit.app.export import FORMATS
from gankit.app.train import import_tensorflow_quietly, plugins


def add_parser(sub) -> None:
    export = sub.add_parser(
        "export", help="export a generator as a SavedModel, ONNX, LiteRT or Keras file",
        description="Export a run's generator (its EMA copy when it has one) or a .keras "
                    "generator: latents (and class indices) in, uint8 NHWC images out, with "
                    "a model card (model.json) beside it.")
    export.add_argument("source", help="a run directory or a .keras generator")
    export.add_argument("--format", required=True, choices=FORMATS, metavar="FORMAT",
                        help=f"one of {', '.join(FORMATS)}")
    export.add_argument("--out", help="where to write it (default: RUN_DIR/export/"
                                      "<run>-generator-<format>[.onnx|.tflite|.keras])")
    which = export.add_mutually_exclusive_group()
    which.add_argument("--best", action="store_true", help="the run's best/ generator")
    which.add_argument("--checkpoint", type=int, metavar="STEP", help="this checkpoint's")
    ema = export.add_mutually_exclusive_group()
    ema.add_argument("--ema", dest="ema", action="store_true", default=True,
                     help="the EMA copy, when the run keeps one (the default)")
    ema.add_argument("--no-ema", dest="ema", action="store_false",
                     help="the trained generator, not its EMA copy")
    export.add_argument("--value-range", type=float, nargs=2, metavar=("LOW", "HIGH"),
                        help="output range of a .keras generator (default: -1 1, tanh); a "
                             "run's comes from its dataset")
    export.set_defaults(func=command)


def command(args) -> int:
    from gankit.app.export import export, plan_export

    plan = plan_export(args.source, args.format, out=args.out, use_ema=args.ema,
                       best=args.best, checkpoint=args.checkpoint,
                       value_range=args.value_range, registry=plugins().registry)
    import_tensorflow_quietly()
    card = export(plan)
    print(f"wrote {plan.out}")
    print(f"card: {json.dumps({k: card[k] for k in ('latent_dim', 'num_classes', 'step')})}")
    return 0
