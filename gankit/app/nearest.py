"""``gankit evaluate SOURCE --nearest K``: the memorisation check as a command's step.

:func:`plan_nearest` checks what the arguments and the folders' counts decide, without
TensorFlow (:func:`gankit.app.evaluate.plan_evaluation` calls it); :func:`run_nearest`
computes the check (:func:`gankit.evaluation.nearest.memorisation_check`) and writes the
panel and its numbers: ``RUN_DIR/nearest.png`` and ``RUN_DIR/nearest.json`` for a run
directory, else ``--nearest-out FILE.png`` and ``FILE.json`` beside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gankit.errors import GankitError
from gankit.evaluation.nearest import (
    DEFAULT_N,
    DEFAULT_ROWS,
    MAX_K,
    MAX_ROWS,
    NearestResult,
    held_out_count,
    memorisation_check,
)
from gankit.evaluation.sources import ImageFolderSource, ImageSource
from gankit.interfaces import FeatureExtractor
from gankit.rundir.owned import refuse_owned_output
from gankit.rundir.run_dir import RunDir


@dataclass(frozen=True)
class NearestRequest:
    """``--nearest K`` and its options, as given (None: the default)."""

    k: int
    rows: int | None = None
    """``--nearest-rows``: generated images drawn in the panel (default 8)."""
    n: int | None = None
    """``--nearest-n``: generated images whose nearest distances are summarised (default 1000)."""
    holdout: str | None = None
    """``--holdout``: real images not in the reference (default: a fifth of the reference)."""
    out: str | None = None
    """``--nearest-out``: the panel's PNG (default for a run directory: RUN_DIR/nearest.png)."""


@dataclass(frozen=True)
class NearestPlan:
    """A checked ``--nearest`` request: the counts, the held-out images and the two files."""

    k: int
    rows: int
    n: int
    holdout: ImageSource | None
    png: Path
    json: Path


def plan_nearest(request: NearestRequest, source: ImageSource, reference: ImageSource,
                 holdout: ImageSource | None, reference_n: int | None) -> NearestPlan:
    """Check a ``--nearest`` request against its sources, without TensorFlow.

    Raises:
        GankitError: one line: ``K``, rows or ``n`` out of range; a folder with fewer images
            than ``n``, than ``K`` (once a fifth is held out when no holdout is given) or
            fewer than 2 held out; an output that is not a ``.png``, a run's own file, or in
            a folder that cannot be written; no output for a source that is not a run.
    """
    k = request.k
    if not 1 <= k <= MAX_K:
        raise GankitError(f"--nearest must be between 1 and {MAX_K} (the nearest real images "
                          f"shown per generated image), got {k}")
    n = request.n
    if isinstance(source, ImageFolderSource):
        have = source.available()
        if n is not None and n > have:
            raise GankitError(f"--nearest-n {n}: the source folder {source.path} holds only "
                              f"{have} image(s)")
        n = min(DEFAULT_N, have) if n is None else n
    n = DEFAULT_N if n is None else n
    if not 2 <= n <= 1_000_000:
        raise GankitError(f"--nearest-n must be between 2 and 1,000,000, got {n}")
    rows = min(DEFAULT_ROWS, n) if request.rows is None else request.rows
    if not 1 <= rows <= min(MAX_ROWS, n):
        raise GankitError(f"--nearest-rows must be between 1 and {min(MAX_ROWS, n)} (at most "
                          f"--nearest-n), got {rows}")
    if isinstance(reference, ImageFolderSource):
        total = reference.available() if reference_n is None else reference_n
        searched = total - (held_out_count(total, n, split=True) if holdout is None else 0)
        if searched < k:
            held = (f", {total - searched} of them held out (no --holdout)"
                    if holdout is None else "")
            raise GankitError(f"--nearest {k}: the --reference folder {reference.path} gives "
                              f"{total} image(s){held}, leaving {searched} to search: fewer "
                              f"than the {k} nearest; give more images or a smaller --nearest")
    if isinstance(holdout, ImageFolderSource):
        have = holdout.available()
        if have < 2:
            raise GankitError(f"--holdout folder {holdout.path} holds {have} image; the "
                              f"held-out distances need at least 2")
        holdout.check_files(held_out_count(have, n, split=False))
    png, info = _outputs(request.out, source)
    return NearestPlan(k, rows, n, holdout, png, info)


def _outputs(out: str | None, source: ImageSource) -> tuple[Path, Path]:
    if out is None:
        run_dir = getattr(source, "run_dir", None)
        if run_dir is None:
            raise GankitError("--nearest: say where the panel goes with --nearest-out FILE.png "
                              "(FILE.json beside it); a run directory keeps it as "
                              "RUN_DIR/nearest.png")
        run = RunDir(run_dir)
        png, info = run.nearest_panel, run.nearest_info
    else:
        png = Path(out)
        if png.suffix.lower() != ".png":
            raise GankitError(f"--nearest-out {out}: name a .png file (its numbers go to the "
                              f".json file of the same name)")
        info = png.with_suffix(".json")
        for path in (png, info):
            refuse_owned_output(path, "--nearest-out")
        if png.is_dir() or info.is_dir() or not png.parent.is_dir():
            raise GankitError(f"--nearest-out {out}: cannot write there; name a .png file in "
                              f"an existing folder")
    if not os.access(png.parent, os.W_OK | os.X_OK):
        raise GankitError(f"cannot write the nearest-neighbour panel in {png.parent}: no "
                          f"permission or a read-only file system; choose another place with "
                          f"--nearest-out")
    return png, info


def run_nearest(plan: NearestPlan, source: ImageSource, reference: ImageSource,
                extractor: FeatureExtractor, *, seed: int = 0, reference_n: int | None = None,
                batch_size: int = 64, cache: bool = True, progress: bool = True
                ) -> NearestResult:
    """Compute the check a :class:`NearestPlan` describes and write its panel and JSON.

    Raises:
        GankitError: see :func:`~gankit.evaluation.nearest.memorisation_check`; a file that
            cannot be written.
    """
    from gankit.util import atomic
    from gankit.util.images import save_png

    result = memorisation_check(source, reference, extractor, plan.k, holdout=plan.holdout,
                                n=plan.n, rows=plan.rows, seed=seed, reference_n=reference_n,
                                batch_size=batch_size, cache=cache, progress=progress)
    result.summary["panel"] = plan.png.name
    try:
        save_png(result.panel, plan.png)
        atomic.write_text(plan.json, result.to_json())
    except OSError as exc:
        raise GankitError(f"cannot write {plan.png.parent}: {exc.strerror or exc}; choose "
                          f"another --nearest-out") from None
    return result


def summary_lines(result: NearestResult) -> list[str]:
    """The check as a few lines for a terminal: the counts, then per space the quantiles of
    the nearest distances and the share below the held-out reals' 5th percentile."""
    s = result.summary
    lines = [f"nearest: {s['n_generated']} generated and {s['n_held_out']} held-out real "
             f"images, each to its nearest of {s['n_searched']} reference images (L2)",
             f"{'':<9}{'':<15}{'min':>9}{'5%':>9}{'median':>9}  closer than held-out 5%"]
    for space in ("features", "pixels"):
        values = s[space]
        for label, key, share in (("generated", "generated", "suspiciously_close"),
                                  ("held-out real", "held_out", "held_out_below_threshold")):
            q = values[key]
            lines.append(f"{space if key == 'generated' else '':<9}{label:<15}"
                         f"{q['min']:>9.4g}{q['p05']:>9.4g}{q['median']:>9.4g}  "
                         f"{100 * values[share]:.1f}%")
    return lines
