"""The ``gankit`` command line: argparse over the application API (:mod:`gankit.app`).

Each command is one module of this package, which adds its sub-parser and defines the
function it runs (``add_parser(sub)`` and ``command(args)``), as tox 4's command modules
do; :data:`COMMANDS` lists them in ``gankit --help`` order. :func:`main` turns a
:class:`~gankit.errors.GankitError` into one line on stderr and its exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from gankit._version import __version__
from gankit.errors import GankitError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

COMMANDS = ("run", "resume", "validate", "sample", "plugins", "new_plugin", "train_classifier",
            "report", "evaluate", "sweep", "export")
"""The command modules of :mod:`gankit.cli`, in ``gankit --help`` order."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors in one line: ``gankit sample: error: argument -n:
    invalid int value: 'abc' (see gankit sample --help)`` and exit code 2, as every other
    mistake gets (argparse's default prints the whole usage first). Sub-parsers are of
    this class too."""

    def error(self, message: str):  # type: ignore[override]
        message = " ".join(message.split())
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gankit", description="Train GANs from readable, composable, tested parts.")
    parser.add_argument("--version", action="version", version=f"gankit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"gankit.cli.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gankit`` command; returns the exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF C++ logs are noise to users
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except GankitError as err:
        print(f"gankit: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("gankit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`gankit plugins | head`): stop quietly, as other Unix tools
        # do, and keep Python from complaining while it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
