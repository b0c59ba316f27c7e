"""``gankit report RUN_DIR``: a run's self-contained report.html (:mod:`gankit.app.report`)."""

from __future__ import annotations


def add_parser(sub) -> None:
    report = sub.add_parser("report", help="write a run's self-contained report.html "
                                           "(curves, sample grids, recipe, timings, machine)")
    report.add_argument("run_dir", help="a run directory")
    report.add_argument("--out", metavar="FILE",
                        help="the HTML file to write (default: RUN_DIR/report.html)")
    report.set_defaults(func=command)


def command(args) -> int:
    from gankit.app.report import write_report

    print(write_report(args.run_dir, args.out))
    return 0
