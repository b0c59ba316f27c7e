"""``report.html``: one self-contained page showing a run: curves, sample grids, recipe, timings.

The page needs nothing but a browser: the curves are inline SVG drawn here, the grids are
embedded as ``data:`` URIs, the styles are inline, there is no script, and a
Content-Security-Policy forbids every network request. Everything read from the run
directory is HTML-escaped. No TensorFlow is imported, so a report takes well under a second.

A run directory that is partly damaged (no ``losses.csv``, an unreadable ``run.json``) still
gives a page, which says what it could not read.
"""

from __future__ import annotations

import base64
import csv
import html
import importlib.metadata
import io
import itertools
import json
import math
import os
import re
import stat
import time
import warnings
from pathlib import Path
from typing import Any, Iterable, NamedTuple

from gankit.errors import GankitError
from gankit.interfaces.metric_names import split_per_class
from gankit.recipe.strict_yaml import parse_yaml
from gankit.rundir.owned import refuse_owned_output
from gankit.rundir.run_dir import RunDir, RunDirWarning
from gankit.util import atomic
from gankit.util.machine import machine_info  # noqa: F401  (in run.json and here)
from gankit.util.safe_read import UnsafeFileError, is_png, read_json, regular_file_inside

MAX_GRIDS = 12  # evenly spaced grids shown, plus the last
MAX_POINTS = 1000  # per curve; longer series are reduced (keeping the spikes)
MAX_KEPT = 100_000  # values kept per column while reading losses.csv; more are thinned
MAX_VALUE = 1e300  # larger magnitudes cannot be drawn (their span overflows): left out
MAX_GRID_BYTES = 32 * 1024 * 1024  # a sample grid embedded in the page, at most
MAX_GRID_PIXELS = 16_000_000
MAX_TEXT_BYTES = 4 * 1024 * 1024  # recipe.yaml shown in the page, at most
MAX_TICKS = 50


class ReportWarning(RunDirWarning):
    """The report at the end of a run could not be written (the run itself is fine)."""


# --- public ----------------------------------------------------------------------------


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of ``run_dir`` as one self-contained HTML file.

    Args:
        run_dir: a run directory (it must hold ``recipe.yaml`` or ``run.json``).
        out: the HTML file to write (default: ``RUN_DIR/report.html``); written through a
            temporary file and a rename, so a reader never sees half a page.

    Returns:
        the path of the written file.

    Raises:
        GankitError: ``run_dir`` is not a run directory, or ``out`` cannot be written.
    """
    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise GankitError(f"{run.path} is not a gankit run directory (no such directory)")
    if not (run.recipe_file.is_file() or run.status_file.is_file()):
        raise GankitError(f"{run.path} is not a gankit run directory (no recipe.yaml or "
                          f"run.json)")
    if out is not None:
        refuse_owned_output(out)
        if Path(out).is_dir():
            raise GankitError(f"--out {out} is a directory; name the .html file to write")
    target = Path(out) if out is not None else run.report_file
    page = render_report(run)
    try:
        atomic.write_text(target, page)
    except OSError as exc:
        raise GankitError(f"cannot write the report {target}: {exc.strerror or exc}; "
                          f"choose another --out") from None
    return target


def write_report_after_run(run_dir: str | Path) -> Path | None:
    """Write ``RUN_DIR/report.html`` at the end of a run; for the trainer.

    A report is a by-product: if it fails, the run is still complete, so this warns (a
    ReportWarning, printed by the CLI as one line) and returns None instead of raising.
    """
    try:
        return write_report(run_dir)
    except Exception as exc:  # noqa: BLE001 - never turn a finished run into a failed one
        warnings.warn(f"the report of {run_dir} could not be written: {exc}", ReportWarning,
                      stacklevel=2)
        return None


def render_report(run: RunDir) -> str:
    """The report page of ``run`` as a string (see ``write_report``)."""
    notes: list[str] = []
    try:
        status = read_json(run.status_file, expect=dict)
    except FileNotFoundError:
        status = {}
        notes.append("run.json is missing: no status or timings are known.")
    except (OSError, UnsafeFileError) as exc:
        status = {}
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        notes.append(f"run.json could not be read ({reason}); status and timings are "
                     f"unknown.")
    recipe_text = _read_text(run.recipe_file, notes, "recipe.yaml")
    log = read_losses(run.losses_file, notes)
    fields = _recipe_fields(recipe_text)
    name = fields.get("name") or run.path.resolve().name
    parts = [
        _header(run, name, fields.get("description"), status, log),
        "".join(f'<p class="note">{_e(n)}</p>' for n in notes),
        _results_section(run, status),
        _nearest_section(run),
        _per_class_section(run, log),
        _curves_section(log),
        _grids_section(run.samples),
        _timings_section(status, log),
        _machine_section(status),
        '<section id="recipe"><h2>Recipe</h2>'
        + (f"<pre>{_e(recipe_text)}</pre>" if recipe_text else "<p>No recipe.yaml.</p>")
        + "</section>",
    ]
    made = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return (_PAGE_HEAD.format(title=_e(f"{name}: gankit report"), css=_CSS)
            + "".join(parts)
            + f'<footer>Made by <code>gankit report</code> on {_e(made)} from '
              f'<code>{_e(str(run.path.resolve()))}</code>. This file is self-contained: it '
              f'needs no network and runs no script.</footer></body></html>\n')


# --- reading ---------------------------------------------------------------------------


class LossTable(NamedTuple):
    """``losses.csv`` as read for the report: one (step, value) series per column."""

    columns: list[str]
    series: dict[str, list[tuple[int, float]]]
    rows: int


def read_losses(path: Path, notes: list[str] | None = None) -> LossTable:
    """Read ``losses.csv`` leniently: empty or non-numeric cells are no value, rows whose step
    is not a whole number are skipped, a BOM is accepted. What was skipped goes to ``notes``.

    The file is read row by row, and each column keeps at most about ``MAX_KEPT`` values
    (every second one is dropped when it has more, as often as needed), so a log of ten
    million rows takes bounded memory. Values beyond ``MAX_VALUE`` in magnitude and
    non-finite ones are left out of the curves (and counted in ``notes``)."""
    notes = notes if notes is not None else []
    handle = _open_text(path, notes, "losses.csv", missing_is_note=True)
    if handle is None:
        return LossTable([], {}, 0)
    with handle:
        reader = csv.reader(handle)
        header = next((row for row in reader if row), None)
        if header is None:
            return LossTable([], {}, 0)
        header = [h.strip() for h in header]
        step_at = header.index("step") if "step" in header else None
        if step_at is None:
            notes.append("losses.csv has no 'step' column; rows are numbered from 1 instead.")
        columns = list(dict.fromkeys(c for i, c in enumerate(header) if i != step_at and c))
        series: dict[str, dict[int, float]] = {c: {} for c in columns}
        cells = [(i, series[name]) for i, name in enumerate(header) if i != step_at and name]
        bad_steps = odd_cells = rows = 0
        thinned = False
        for row in reader:
            if not row:
                continue
            rows += 1
            try:
                step = int(row[step_at]) if step_at is not None else rows
            except (ValueError, IndexError):
                bad_steps += 1
                continue
            for i, values in cells:
                cell = row[i] if i < len(row) else ""
                if not cell:
                    continue
                try:
                    value = float(cell)
                except ValueError:
                    odd_cells += bool(cell.strip())  # an empty cell is no value, not an error
                    continue
                if math.isfinite(value) and abs(value) <= MAX_VALUE:
                    values[step] = value  # a step written twice: the later row counts
                    if len(values) > 2 * MAX_KEPT:
                        _thin(values)
                        thinned = True
                else:
                    odd_cells += 1
    if bad_steps:
        notes.append(f"losses.csv: {bad_steps} row(s) without a whole-number step were skipped.")
    if odd_cells:
        notes.append(f"losses.csv: {odd_cells} cell(s) that are not finite numbers of at most "
                     f"{MAX_VALUE:g} were left out of the curves.")
    if thinned:
        notes.append(f"losses.csv has {rows:,} rows: the curves show an evenly thinned part "
                     f"of the longest columns (about {MAX_KEPT:,} values each).")
    return LossTable(columns, {c: sorted(s.items()) for c, s in series.items()}, rows)


def _thin(values: dict[int, float]) -> None:
    """Drop every second entry of ``values`` by step order, in place."""
    for step in sorted(values)[1::2]:
        del values[step]


def _open_text(path: str | Path, notes: list[str] | None, label: str,
               missing_is_note: bool = False):
    """A text handle on a regular file (a FIFO would block the report), or None with a note."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if notes is not None and missing_is_note:
            notes.append(f"{label} is missing.")
        return None
    except OSError as exc:
        if notes is not None:
            notes.append(f"{label} could not be read: {exc.strerror or exc}.")
        return None
    if not stat.S_ISREG(info.st_mode):
        if notes is not None:
            notes.append(f"{label} is not a regular file; it was not read.")
        return None
    try:
        return open(path, encoding="utf-8-sig", errors="replace", newline="")
    except OSError as exc:
        if notes is not None:
            notes.append(f"{label} could not be read: {exc.strerror or exc}.")
        return None


def _read_text(path: str | Path, notes: list[str] | None = None, label: str = "",
               missing_is_note: bool = False) -> str:
    handle = _open_text(path, notes, label, missing_is_note)
    if handle is None:
        return ""
    try:
        with handle:
            text = handle.read(MAX_TEXT_BYTES + 1)
    except OSError as exc:
        if notes is not None:
            notes.append(f"{label} could not be read: {exc.strerror or exc}.")
        return ""
    if len(text) > MAX_TEXT_BYTES:
        text = text[:MAX_TEXT_BYTES]
        if notes is not None:
            notes.append(f"{label} is longer than {MAX_TEXT_BYTES:,} characters: its start "
                         f"is shown.")
    if "\ufffd" in text and notes is not None:
        notes.append(f"{label} holds bytes that are not UTF-8; they are shown as \ufffd.")
    return text


def _recipe_fields(text: str) -> dict[str, str]:
    """The recipe's ``name`` and ``description`` as text (whole, however YAML wrapped or
    quoted them); from the first lines alone if the recipe does not parse."""
    try:
        recipe = parse_yaml(text, "recipe.yaml") if text else None
    except (GankitError, RecursionError, MemoryError):
        recipe = None
    if isinstance(recipe, dict):
        return {key: str(recipe[key]) for key in ("name", "description")
                if isinstance(recipe.get(key), (str, int, float)) and str(recipe[key]).strip()}
    fields = {}
    for key in ("name", "description"):
        found = re.search(rf"^{key}:[ \t]*(.+?)[ \t]*$", text, re.M)
        if found:
            fields[key] = found.group(1).strip("'\"")
    return fields


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _json_files(paths: Iterable[Path]) -> list[tuple[Path, Any]]:
    """Each file's JSON (bounded in size and depth, regular files only), or a short reason
    why it could not be read, in place of the value."""
    found = []
    for path in sorted(paths)[:200]:
        try:
            found.append((path, read_json(path)))
        except (OSError, UnsafeFileError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            found.append((path, f"(could not be read: {reason})"))
    return found


# --- sections --------------------------------------------------------------------------


def _header(run: RunDir, name: str, description: str | None, status: dict,
            log: LossTable) -> str:
    state = str(status.get("status", "unknown"))
    step = _whole(status.get("step"))
    if step is None:  # no run.json: the last step logged
        step = max((s[-1][0] for s in log.series.values() if s), default=None)
    steps = _whole(status.get("steps"))
    where = f"step {step}" + (f" of {steps}" if steps is not None else "") if step is not None \
        else "step unknown"
    badge = state if state in ("completed", "running", "interrupted", "failed",
                               "stopped") else "unknown"
    error = (f'<p class="note">Error: {_e(_fmt_value(status["error"]))}</p>'
             if status.get("error") else "")
    if state == "stopped" and status.get("stop_reason"):  # a time budget (train.max_minutes)
        error += f'<p class="note">Stopped: {_e(_fmt_value(status["stop_reason"]))}</p>'
    links = [("results", "Results"), ("curves", "Curves"), ("samples", "Samples"),
             ("timings", "Timings"), ("machine", "Machine"), ("recipe", "Recipe")]
    if run.nearest_info.is_file():
        links.insert(1, ("nearest", "Nearest neighbours"))
    nav = " · ".join(f'<a href="#{a}">{t}</a>' for a, t in links)
    return (f'<header><h1>{_e(name)}</h1>'
            + (f'<p class="desc">{_e(description)}</p>' if description else "")
            + f'<p><span class="badge {badge}">{_e(state)}</span> <b>{_e(where)}</b> · '
              f'<code>{_e(str(run.path.resolve()))}</code></p>{error}<nav>{nav}</nav></header>')


def _results_section(run: RunDir, status: dict) -> str:
    blocks = []
    final = status.get("metrics")
    if isinstance(final, dict) and final:
        blocks.append(f"<div><h3>Last step ({_e(_fmt_value(status.get('step', '?')))})</h3>"
                      f"{_table(final)}</div>")
    best = run.best_dir
    if best.is_dir():
        files = sorted(p.name for p in best.iterdir())
        body = "".join(f"<h4>{_e(p.name)}</h4>" + _table(v)
                       for p, v in _json_files(best.glob("*.json")))
        blocks.append(f"<div><h3>Best checkpoint (<code>best/</code>)</h3>"
                      f"<p>Files: {_e(', '.join(files) or '(empty)')}</p>{body}</div>")
    evaluations = _json_files(run.evaluation_files())
    for path, values in evaluations:
        blocks.append(f"<div><h3>Evaluation <code>{_e(path.relative_to(run.path))}</code>"
                      f"</h3>{_table(values)}</div>")
    return ('<section id="results"><h2>Results</h2>'
            + (f'<div class=cards>{"".join(blocks)}</div>' if blocks
               else "<p>No final values yet.</p>") + "</section>")


def _nearest_section(run: RunDir) -> str:
    """``gankit evaluate --nearest K``'s panel and the quantiles of its nearest distances;
    empty when it has not been run."""
    if not run.nearest_info.is_file():
        return ""
    try:
        info = read_json(run.nearest_info, expect=dict)
    except (OSError, UnsafeFileError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        return (f'<section id="nearest"><h2>Nearest neighbours</h2><p class="note">'
                f'{_e(run.NEAREST_INFO)} could not be read ({_e(reason)}).</p></section>')
    try:
        data = base64.b64encode(_grid_bytes(run.nearest_panel, run.path)).decode("ascii")
        panel = (f'<figure class=panel><img alt="generated images and their nearest real '
                 f'images" src="data:image/png;base64,{data}"></figure>')
    except (OSError, UnsafeFileError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        panel = f'<p class="note">{_e(run.NEAREST)} is not shown ({_e(reason)}).</p>'
    head = "".join(f"<th>{h}</th>" for h in ("space", "images", "min", "5%", "median",
                                              "closer than held-out 5%"))
    body = ""
    for space in ("features", "pixels"):
        values = info.get(space) if isinstance(info.get(space), dict) else {}
        for label, key, share in (("generated", "generated", "suspiciously_close"),
                                  ("held-out real", "held_out", "held_out_below_threshold")):
            q = values.get(key) if isinstance(values.get(key), dict) else {}
            fraction = values.get(share)
            cells = [q.get("min"), q.get("p05"), q.get("median")]
            body += (f"<tr><th>{_e(space if key == 'generated' else '')}</th><th>{label}</th>"
                     + "".join(f"<td>{_e(_fmt_value(c))}</td>" for c in cells)
                     + f"<td>{_e(_percent(fraction))}</td></tr>")
    extractor = info.get("extractor") if isinstance(info.get("extractor"), dict) else {}
    about = (f"The {_e(_fmt_value(info.get('k')))} nearest of {_e(_fmt_value(info.get('n_searched')))} "
             f"reference images ({_e(_fmt_value(info.get('reference')))}) of each generated "
             f"image ({_e(_fmt_value(info.get('source')))}), by L2 distance in the features of "
             f"<code>{_e(_fmt_value(extractor.get('type')))}</code> and in pixels; the first "
             f"{_e(_fmt_value(info.get('rows')))} of {_e(_fmt_value(info.get('n_generated')))} "
             f"are shown. Held out: {_e(_fmt_value(info.get('held_out')))}. A memorising "
             f"generator has many images closer to a training image than held-out real images "
             f"come (the last column far above 5%); see docs/metrics.md.")
    return (f'<section id="nearest"><h2>Nearest neighbours (<code>{_e(run.NEAREST)}</code>, '
            f'{_e(_fmt_value(info.get("created")))})</h2><p>{about}</p>{panel}'
            f'<table><tr>{head}</tr>{body}</table></section>')


def _percent(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return f"{100 * value:.1f}%"
    return "—"


def _per_class_section(run: RunDir, log: LossTable) -> str:
    """Per-class metric values (``intra_fid/frog``) as tables of classes by value: from the
    last step that measured them in losses.csv, best/best.json and each evaluation; empty
    when there are none."""
    sources: list[tuple[str, dict]] = []
    columns = [c for c in log.columns if split_per_class(c)[1] is not None]
    if columns:
        step = max(log.series[c][-1][0] for c in columns if log.series[c]) \
            if any(log.series[c] for c in columns) else None
        if step is not None:
            wanted = columns + sorted({split_per_class(c)[0] for c in columns})
            sources.append((f"during training, step {step:,} (losses.csv)",
                            {c: dict(log.series.get(c, [])).get(step) for c in wanted}))
    best = run.best_info
    for path, data in _json_files([*([best] if best.is_file() else []),
                                   *run.evaluation_files()]):
        values = data.get("values") if isinstance(data, dict) else None
        if isinstance(values, dict):
            where = (f"best/ (step {_fmt_value(data.get('step', '?'))})"
                     if path.parent == run.best_dir
                     else f"evaluation {path.relative_to(run.path)}")
            sources.append((where, values))
    tables = [(title, _class_table(values)) for title, values in sources]
    tables = [(title, table) for title, table in tables if table]
    if not tables:
        return ""
    body = "".join(f"<div><h3>{_e(title)}</h3>{table}</div>" for title, table in tables)
    return (f'<section id="per-class"><h2>Per class</h2><p>Each class\'s value of the per-class '
            f'metrics (intra_fid: FID against the real images of that class, lower is better; '
            f'class_accuracy: the classifier\'s accuracy on generated images of that class); '
            f'the first row is the mean over the classes.</p><div class=cards>{body}</div>'
            f'</section>')


def _class_table(values: dict) -> str:
    """A table of classes (rows) by per-class value (columns), or "" if there is none."""
    cells: dict[str, dict[str, Any]] = {}
    classes: list[str] = []
    for name, value in values.items():
        base, cls = split_per_class(str(name))
        if cls is None:
            continue
        cells.setdefault(base, {})[cls] = value
        if cls not in classes:
            classes.append(cls)
    if not cells:
        return ""
    bases = list(cells)
    head = "<tr><th>class</th>" + "".join(f"<th>{_e(b)}</th>" for b in bases) + "</tr>"
    mean = "<tr><th>mean</th>" + "".join(f"<td><b>{_e(_fmt_value(values.get(b)))}</b></td>"
                                         for b in bases) + "</tr>"
    rows = "".join("<tr><th>" + _e(c) + "</th>" + "".join(
        f"<td>{_e(_fmt_value(cells[b].get(c)))}</td>" for b in bases) + "</tr>"
        for c in classes)
    return f"<table>{head}{mean}{rows}</table>"


def _curves_section(log: LossTable) -> str:
    # Per-class values (intra_fid/frog) are tabled in their own section, not drawn.
    log = log._replace(columns=[c for c in log.columns if split_per_class(c)[1] is None])
    if not log.columns:
        return '<section id="curves"><h2>Curves</h2><p>No losses.csv rows to plot.</p></section>'
    # A column with values at few steps is an occasional metric (fid, kid): shown first.
    sparse = [c for c in log.columns if 0 < len(log.series[c]) < 0.5 * log.rows]
    dense = [c for c in log.columns if c not in sparse]
    # One step axis for all charts, so they line up and a metric shows when it was measured.
    first = [s[0][0] for s in log.series.values() if s]
    steps = (min(first, default=0), max((s[-1][0] for s in log.series.values() if s), default=1))
    parts = ['<section id="curves"><h2>Curves</h2>']
    for title, names in (("Quality metrics", sparse), ("Training", dense)):
        if names:
            charts = "".join(_chart(n, log.series[n], n in sparse, log.columns.index(n),
                                    steps) for n in names)
            parts.append(f"<h3>{title}</h3><div class=charts>{charts}</div>")
    return "".join(parts) + "</section>"


def _grids_section(samples: Path) -> str:
    grids = []
    for path in samples.glob("grid_*.png") if samples.is_dir() else []:
        found = re.fullmatch(r"grid_(\d+)\.png", path.name)
        if found:
            grids.append((int(found.group(1)), path))
    grids.sort()
    if len(grids) > MAX_GRIDS + 1:
        picks = {round(i * (len(grids) - 1) / MAX_GRIDS) for i in range(MAX_GRIDS)}
        grids = [g for i, g in enumerate(grids) if i in picks or i == len(grids) - 1]
    figures = []
    for step, path in grids:
        try:
            data = base64.b64encode(_grid_bytes(path, samples.parent)).decode("ascii")
        except (OSError, UnsafeFileError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            figures.append(f"<figure><figcaption>step {step:,}: not shown "
                           f"({_e(reason)})</figcaption></figure>")
            continue
        figures.append(f'<figure><img alt="samples at step {step}" '
                       f'src="data:image/png;base64,{data}"><figcaption>step {step:,}'
                       f'</figcaption></figure>')
    body = (f'<div class=grids>{"".join(figures)}</div>' if figures
            else "<p>No sample grids (samples/grid_&lt;step&gt;.png) yet.</p>")
    return f'<section id="samples"><h2>Samples over time</h2>{body}</section>'


def _grid_bytes(path: Path, run_path: Path) -> bytes:
    """The bytes of a sample grid, if it is one: a regular PNG file inside the run directory
    (no link), of bounded size and pixel count; the page embeds nothing else.

    Raises:
        UnsafeFileError: why it is not embedded.
        OSError: if it cannot be read.
    """
    from PIL import Image

    regular_file_inside(path, run_path, max_bytes=MAX_GRID_BYTES)
    if not is_png(path):
        raise UnsafeFileError("not a PNG file")
    with open(path, "rb") as handle:
        data = handle.read(MAX_GRID_BYTES + 1)
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds on a damaged file
        raise UnsafeFileError(f"not a readable PNG: {type(exc).__name__}") from None
    if width * height > MAX_GRID_PIXELS:
        raise UnsafeFileError(f"{width}x{height} pixels, more than {MAX_GRID_PIXELS:,}")
    return data


def _whole(value: Any) -> int | None:
    """``value`` if it is a whole number (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _timings_section(status: dict, log: LossTable) -> str:
    rows: dict[str, Any] = {}
    for key in ("started", "finished", "updated"):
        if key == "updated" and "finished" in status:
            continue
        if _epoch(status.get(key)):
            rows[key] = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(status[key]))
    seconds = status.get("seconds")
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) \
            and 0 < seconds < 1e12:
        rows["training time"] = f"{_duration(seconds)} ({seconds:,.1f} s)"
        step, start = _whole(status.get("step")), _whole(status.get("start_step", 0))
        if step is not None and start is not None and step > start:
            rate = (step - start) / seconds
            rows["steps per second"] = f"{rate:.3g} ({1000 / rate:,.0f} ms per step)"
    if _epoch(status.get("started")) and _epoch(status.get("finished")):
        rows["wall clock, start to finish"] = _duration(status["finished"] - status["started"])
    rows["losses.csv rows"] = log.rows
    precision = status.get("precision")
    if isinstance(precision, dict) and isinstance(precision.get("policy"), str):
        requested = precision.get("requested")
        rows["precision"] = (f"{precision['policy']} (train.precision: {requested}; "
                             f"{precision.get('reason', '')})")
        history = precision.get("history")
        for earlier in history[:20] if isinstance(history, list) else []:
            if isinstance(earlier, dict):
                rows[f"precision before step {earlier.get('until_step')}"] = \
                    earlier.get("policy")
    return f'<section id="timings"><h2>Timings</h2>{_table(rows)}</section>'


def _epoch(value: Any) -> bool:
    """Whether ``value`` is a time stamp ``time.localtime`` takes (seconds, years 1970-9999)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) and 0 <= value < 253_402_300_000


def _machine_section(status: dict) -> str:
    machine, note = status.get("machine"), ""
    if not isinstance(machine, dict) or not machine:
        machine, note = machine_info(), " <small>(measured when the report was made)</small>"
    return f'<section id="machine"><h2>Machine{note}</h2>{_table(machine)}</section>'


def _table(values: Any) -> str:
    if not isinstance(values, dict):
        return f"<p>{_e(values)}</p>"
    rows = _flatten(values)[:300]
    return "<table>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(_fmt_value(v))}</td></tr>"
                               for k, v in rows) + "</table>"


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict) and data:
        return [kv for k, v in data.items() for kv in _flatten(v, f"{prefix}{k}.")]
    return [(prefix[:-1], data)]


def _fmt_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int) and abs(value) >= 10**30:
        return f"{float(value):.6g}" if abs(value) < 10**308 else "(a number too large)"
    if value is None:
        return "—"
    if isinstance(value, str):
        return value if len(value) <= 2000 else value[:2000] + "…"
    text = json.dumps(value)
    return text if len(text) <= 2000 else text[:2000] + "…"


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return (f"{h} h {m} min" if h else f"{m} min {s} s" if m else f"{s} s")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


# --- charts ----------------------------------------------------------------------------

_W, _H = 380, 210
_L, _R, _T, _B = 50, 12, 10, 32  # plot margins: room for the tick labels


def _chart(name: str, points: list[tuple[int, float]], sparse: bool, uid: int,
           step_range: tuple[int, int]) -> str:
    """One metric as an inline SVG line chart, with a moving average for noisy series."""
    if not points:
        return (f'<figure class=chart><figcaption><b>{_e(name)}</b></figcaption>'
                f'<p class=empty>no values yet</p></figure>')
    steps = [s for s, _ in points]
    values = [v for _, v in points]
    window = max(5, len(values) // 40)
    smooth = [] if sparse or len(values) < 20 else _moving_average(steps, values, window)
    lo, hi, clipped = _y_range(values, [v for _, v in smooth])
    first, last = step_range[0], max(step_range[1], step_range[0] + 1)
    x_ticks, y_ticks = _ticks(first, last, 5), _ticks(lo, hi, 5)
    x0, x1 = min(first, x_ticks[0]), last
    lo, hi = min(lo, y_ticks[0]), max(hi, y_ticks[-1])
    pw, ph = _W - _L - _R, _H - _T - _B

    def sx(step: float) -> float:
        return _L + (step - x0) / (x1 - x0) * pw

    def sy(value: float) -> float:
        return _T + (hi - value) / ((hi - lo) or 1.0) * ph

    def line(pts: list[tuple[int, float]], cls: str) -> str:
        coords = " ".join(f"{sx(s):.1f},{sy(v):.1f}" for s, v in pts)
        return f'<polyline class="{cls}" points="{coords}"/>'

    out = [f'<svg viewBox="0 0 {_W} {_H}" role="img" aria-label="{_e(name)} by step">',
           # clipped at the top and bottom (a cut y axis), not at the sides (end points)
           f'<defs><clipPath id="p{uid}"><rect x="{_L - 4}" y="{_T}" width="{pw + 8}" '
           f'height="{ph}"/></clipPath></defs>',
           f'<rect class="frame" x="{_L}" y="{_T}" width="{pw}" height="{ph}"/>']
    y_step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 1.0
    for t in y_ticks:
        if lo <= t <= hi:
            out.append(f'<line class="grid" x1="{_L}" x2="{_L + pw}" y1="{sy(t):.1f}" '
                       f'y2="{sy(t):.1f}"/><text class="yt" x="{_L - 5}" y="{sy(t) + 3.5:.1f}">'
                       f'{_e(_tick_label(t, y_step))}</text>')
    x_step = x_ticks[1] - x_ticks[0] if len(x_ticks) > 1 else 1.0
    for t in x_ticks:
        if x0 <= t <= x1:
            out.append(f'<line class="grid" x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{_T}" '
                       f'y2="{_T + ph}"/><text class="xt" x="{sx(t):.1f}" y="{_T + ph + 14}">'
                       f'{_e(_tick_label(t, x_step, steps=True))}</text>')
    out.append(f'<text class="xl" x="{_L + pw / 2}" y="{_H - 3}">step</text>')
    out.append(f'<g clip-path="url(#p{uid})">')
    if sparse:
        out.append(line(_reduce(points), "metric"))
        if len(points) <= 200:
            out.extend(f'<circle class="metric" cx="{sx(s):.1f}" cy="{sy(v):.1f}" r="2.6">'
                       f'<title>step {s}: {v:.6g}</title></circle>' for s, v in points)
    else:
        out.append(line(_reduce(points), "raw" if smooth else "solo"))
        if smooth:
            out.append(line(smooth, "smooth"))
    out.append("</g></svg>")
    last_step, last = points[-1]
    caption = (f"<b>{_e(name)}</b><span>last {last:.4g} at step {last_step:,} · "
               f"min {min(values):.4g} · max {max(values):.4g}</span>")
    notes = []
    if smooth:
        notes.append(f"dark line: moving average of {window} steps")
    if clipped:
        notes.append(f"y axis cut to the bulk of the values: {clipped} "
                     f"{'value lies' if clipped == 1 else 'values lie'} outside")
    if sparse:
        notes.append(f"{len(points)} measurement(s)")
    return (f'<figure class=chart><figcaption>{caption}</figcaption>{"".join(out)}'
            + (f"<small>{_e('; '.join(notes))}</small>" if notes else "") + "</figure>")


def _moving_average(steps: list[int], values: list[float],
                    window: int) -> list[tuple[int, float]]:
    """Centred moving average (the window shrinks at the ends), at most MAX_POINTS of it."""
    sums = list(itertools.accumulate(values, initial=0.0))
    half, n = window // 2, len(values)
    at = range(n) if n <= MAX_POINTS else [*(int(i * n / MAX_POINTS) for i in range(MAX_POINTS)),
                                           n - 1]
    return [(steps[i], (sums[min(n, i + half + 1)] - sums[max(0, i - half)])
             / (min(n, i + half + 1) - max(0, i - half))) for i in at]


def _y_range(values: list[float], smooth: list[float]) -> tuple[float, float, int]:
    """The y range to draw and how many values fall outside it.

    Early steps of a GAN often spike far above the rest (a gradient penalty of 30 that then
    settles at 1); a range cut to the 1st..99th percentile keeps the rest readable. It is cut
    only when the extremes lie more than the bulk's own span beyond it.
    """
    lo, hi = min(values), max(values)
    if len(values) >= 50:
        ordered = sorted(values[::max(1, len(values) // 20_000)])  # a sample is enough
        q_lo, q_hi = ordered[int(0.01 * len(ordered))], ordered[int(0.99 * len(ordered)) - 1]
        span = q_hi - q_lo
        if span > 0:
            lo = lo if lo >= q_lo - span else q_lo - 0.1 * span
            hi = hi if hi <= q_hi + span else q_hi + 0.1 * span
    if smooth:
        lo, hi = min(lo, *smooth), max(hi, *smooth)
    if hi - lo < 1e-12 * max(1.0, abs(hi)):
        lo, hi = lo - 1.0, hi + 1.0
    pad = 0.04 * (hi - lo)
    outside = sum(1 for v in values if v < lo or v > hi)
    return lo - pad, hi + pad, outside


def _ticks(lo: float, hi: float, count: int) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten) covering [lo, hi]."""
    lo, hi = float(lo), float(hi)
    raw = (hi - lo) / max(1, count - 1)
    if not (math.isfinite(raw) and raw > 0) or raw <= abs(hi) * 1e-12:
        return [lo, hi]  # no room for round values (a span below float resolution, or none)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(lo / step + 1e-9)
    ticks = []
    # Ticks by index, not by adding the step: at 1e17 adding 1 changes nothing.
    for i in range(MAX_TICKS):
        t = (first + i) * step
        if t > hi + step * 1e-9:
            if hi - ticks[-1] > 0.65 * step if ticks else False:
                ticks.append(round(t, 12))  # close to the next round value: end on it
            break
        ticks.append(round(t, 12))
    return ticks if len(ticks) > 1 else [lo, hi]


def _tick_label(value: float, step: float, steps: bool = False) -> str:
    if steps and abs(value) >= 10_000 and value % 1000 == 0:
        return f"{value / 1000:g}k"
    if value == 0:
        return "0"
    if abs(value) >= 1e6 or abs(value) < 1e-3:
        return f"{value:.2g}"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 0
    return f"{value:,.{decimals}f}"


def _reduce(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """At most MAX_POINTS points: the lowest and highest of each bucket, so spikes stay."""
    if len(points) <= MAX_POINTS:
        return points
    size = math.ceil(len(points) / (MAX_POINTS // 2))
    out = []
    for i in range(0, len(points), size):
        values = [v for _, v in points[i:i + size]]
        low = i + values.index(min(values))
        high = i + values.index(max(values))
        out.extend(points[j] for j in sorted({low, high}))
    return out


# --- page ------------------------------------------------------------------------------

_PAGE_HEAD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; \
style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>{css}</style></head><body>
"""

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
 color:#1d2330;background:#f6f7f9;max-width:1200px;margin:0 auto;padding:20px 28px}
header{border-bottom:1px solid #d9dde4;padding-bottom:10px;margin-bottom:8px}
h1{margin:0 0 2px;font-size:26px}h2{font-size:20px;margin:28px 0 8px;
 border-bottom:1px solid #e3e6eb;padding-bottom:4px}h3{font-size:16px;margin:16px 0 6px}
h4{font-size:14px;margin:10px 0 4px}.desc{margin:0 0 6px;color:#4a5262}
code,pre{font:13px/1.4 ui-monospace,"DejaVu Sans Mono",Menlo,monospace}
pre{background:#fff;border:1px solid #e0e3e8;border-radius:6px;padding:12px;overflow:auto;
 max-height:640px}
nav a{color:#24539a;text-decoration:none}nav{font-size:14px}
.badge{display:inline-block;padding:1px 9px;border-radius:10px;color:#fff;font-size:13px;
 font-weight:600;background:#7a8294}.completed{background:#2e7d46}.running{background:#2c63b5}
.interrupted{background:#b7791f}.failed{background:#b83232}.stopped{background:#2c7a7b}
.note{background:#fff6e0;border-left:4px solid #e0a42a;padding:6px 10px;margin:6px 0}
table{border-collapse:collapse;background:#fff;border:1px solid #e0e3e8;font-size:14px}
th,td{padding:4px 12px;border-bottom:1px solid #eef0f3;text-align:left;vertical-align:top}
th{font-weight:500;color:#4a5262}td{font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:10px 36px;align-items:flex-start}
.cards h3{margin-top:6px}.cards p{margin:4px 0}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:14px}
.chart{margin:0;background:#fff;border:1px solid #e0e3e8;border-radius:6px;padding:8px 8px 6px}
.chart figcaption{font-size:14px}
.chart figcaption span{display:block;color:#5b6475;font-size:12.5px}
.chart small{display:block;color:#6b7386;font-size:12px}.empty{color:#6b7386}
svg{display:block;width:100%;height:auto}
svg text{font-size:11.5px;fill:#4a5262;font-family:inherit}
svg .yt{text-anchor:end}svg .xt,svg .xl{text-anchor:middle}
svg .frame{fill:none;stroke:#c9ced8}svg .grid{stroke:#eceef2}
svg polyline{fill:none;stroke-linejoin:round}
svg .raw{stroke:#9fbbe0;stroke-width:1}svg .solo{stroke:#2b5ea7;stroke-width:1.4}
svg .smooth{stroke:#1b3f78;stroke-width:2}
svg .metric{stroke:#c2571a;stroke-width:1.8}svg circle.metric{fill:#c2571a;stroke:none}
.grids{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:14px}
.grids figure{margin:0;background:#fff;border:1px solid #e0e3e8;border-radius:6px;padding:6px}
.grids img{width:100%;height:auto;display:block;image-rendering:pixelated}
.grids figcaption{text-align:center;font-size:14px;font-weight:600;margin-top:4px}
.panel{margin:8px 0;overflow:auto}.panel img{max-width:100%;height:auto;image-rendering:pixelated}
footer{margin:30px 0 10px;color:#6b7386;font-size:13px}
"""
