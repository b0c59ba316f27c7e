"""``gankit train-classifier``: a small classifier as a feature network
(:mod:`gankit.evaluation.classifier`)."""

from __future__ import annotations

import sys

from gankit.app.train import import_tensorflow_quietly, plugins, precision_preflight


def add_parser(sub) -> None:
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
    classifier.set_defaults(func=command)


def command(args) -> int:
    from gankit.evaluation.classifier import (
        ClassifierConfig,
        check_output,
        describe,
        labelled_dataset,
        train_classifier,
    )
    from gankit.recipe.strict_yaml import parse_yaml

    config = ClassifierConfig(holdout=args.holdout, epochs=args.epochs,
                              batch_size=args.batch_size, seed=args.seed, width=args.width,
                              precision=args.precision)
    section = parse_yaml(args.dataset, "--dataset")
    spec, dataset = labelled_dataset(section, plugins().registry)
    out = check_output(args.out)
    warning = precision_preflight(config.precision)
    if warning:
        print(f"gankit: warning: {warning}", file=sys.stderr)
    import_tensorflow_quietly()
    result = train_classifier(dataset, out, config, description=spec.to_dict())
    print(describe(result))
    return 0
