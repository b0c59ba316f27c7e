"""``gankit validate RECIPE``: check a recipe without training."""

from __future__ import annotations

import sys

from gankit.app.train import load, precision_preflight
from gankit.cli.common import overrides


def add_parser(sub) -> None:
    validate = sub.add_parser("validate", help="check a recipe without training")
    validate.add_argument("recipe")
    overrides(validate)
    validate.add_argument("--print", dest="show", action="store_true",
                          help="print the resolved recipe with every default")
    validate.set_defaults(func=command)


def command(args) -> int:
    recipe = load(args.recipe, args.overrides)
    if args.show:
        from gankit.recipe.strict_yaml import dump_yaml
        print(dump_yaml(recipe.to_dict()), end="")
        return 0
    parts = ", ".join(f"{k} {s.type}" for k, s in recipe.components.items())
    regularizers = recipe.sections["regularizer"]
    extra = [f"{len(regularizers)} regularizer(s)"] if regularizers else []
    if recipe.ema:
        extra.append(f"EMA {recipe.ema.decay}")
    parts += "".join(f", {e}" for e in extra)
    warning = precision_preflight(recipe.train.precision)
    print(f"{args.recipe}: OK: {parts}; {recipe.train.steps} steps of batch "
          f"{recipe.train.batch_size}")
    if warning:
        print(f"gankit: warning: {warning}", file=sys.stderr)
    return 0
