"""The ``gankit`` command: argparse over the application API (:mod:`gankit.app`)."""

from gankit.cli.main import main

__all__ = ["main"]
