"""What several commands' parsers share."""

from __future__ import annotations

import argparse


def overrides(p: argparse.ArgumentParser) -> None:
    """The ``--set K=V`` option of the commands that take a recipe."""
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V",
                   help="override a recipe key, e.g. --set train.steps=20 (YAML value)")
