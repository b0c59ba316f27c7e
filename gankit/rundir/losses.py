"""``losses.csv``: the loss log's writer, and the reader that keeps its rows on resume."""

from __future__ import annotations

import codecs
import csv
import io
import re
from pathlib import Path
from typing import Any, Mapping, NoReturn

from gankit.errors import TrainingError
from gankit.rundir.errors import CorruptRunFileError, short
from gankit.util.atomic import move_aside, write_bytes


class LossLog:
    """``losses.csv``: one row per step, flushed as written so a crash loses nothing.

    Pass the columns known up front, including metrics that only appear later (a penalty
    logged every k steps): a step without a value leaves its cell empty. A name that is not
    yet a column (a callback's value logged on some steps only) becomes one when it first
    appears: the file is rewritten with the new column at the end, its earlier rows empty
    there, through a temporary file so that a kill keeps the old file or the new.

    On resume the rows after the checkpoint's step are dropped, since those steps run again;
    the rows up to it are kept. The file is read as UTF-8 with or without a BOM (a spreadsheet
    adds one). A final row cut short by a kill is dropped when it follows the resume step.
    Anything else that is not as gankit wrote it (a different header, a row with a
    non-numeric step or value or the wrong number of cells, bytes that are not UTF-8) stops
    the resume: the file is renamed to ``losses.csv.bak-<time>`` and CorruptRunFileError
    says what was wrong, on which line, and where the file went.

    Why stop rather than warn and go on: a resume gets here seconds after it starts, so
    stopping costs nothing, and the user then decides (repair the file and move it back, or
    resume again to start a new log) with the exact line in front of them. A warning
    would scroll past under the progress bar and leave a losses.csv that looks complete but
    silently lacks rows. Create the log before the first training step for that reason.

    On resume the header must hold every column this session writes; columns the file has
    beyond those (added in an earlier session, as above) are kept. A header that lacks one
    is one of the errors above.
    """

    def __init__(self, path: Path, columns: list[str], resume_after: int | None = None) -> None:
        """
        Args:
            path: the ``losses.csv`` to write.
            columns: the metric names, in order (``step`` comes first by itself).
            resume_after: the step of the checkpoint being resumed; None for a new run.

        Raises:
            CorruptRunFileError: (a GankitError) the old file could not be read as above.
            TrainingError: it could not be moved aside.
            OSError: it could not be written.
        """
        self.path = Path(path)
        self.columns = ["step", *columns]
        if len(set(self.columns)) != len(self.columns):
            raise ValueError(f"duplicate columns in {self.columns}")
        rows = self._rows_to_keep(resume_after) if resume_after is not None else []
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow(self.columns)
        writer.writerows(rows)
        # Rewritten through a temporary file, so a kill now cannot lose the kept rows.
        write_bytes(self.path, text.getvalue().encode("utf-8"))
        self._file = open(self.path, "a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        """Append the row of ``step``; a column missing from ``metrics`` stays empty, and a
        name that is not a column yet becomes one (see the class)."""
        known = set(self.columns)
        unknown = [k for k in metrics if k not in known]
        if unknown:
            self._add_columns(list(dict.fromkeys(unknown)))
        self._writer.writerow([step, *(f"{metrics[c]:.6g}" if c in metrics else ""
                                       for c in self.columns[1:])])
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def _add_columns(self, names: list[str]) -> None:
        """Rewrite the file with ``names`` appended to the header and empty cells below."""
        self._file.close()
        with open(self.path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))[1:]
        self.columns += names
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow(self.columns)
        pad = [""] * len(names)
        writer.writerows(row + pad for row in rows if row)
        write_bytes(self.path, text.getvalue().encode("utf-8"))
        self._file = open(self.path, "a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)

    def __enter__(self) -> LossLog:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _rows_to_keep(self, resume_after: int) -> list[list[str]]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        bom = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
        try:
            text = raw[bom:].decode("utf-8")  # as "utf-8-sig", but with true byte offsets
        except UnicodeDecodeError as exc:
            at = bom + exc.start
            line = raw.count(b"\n", 0, at) + 1
            self._refuse(f"line {line} holds bytes that are not UTF-8 (byte {at})")
        reader = csv.reader(io.StringIO(text, newline=""))
        records: list[tuple[int, list[str]]] = []
        try:
            for row in reader:
                records.append((reader.line_num, row))
        except csv.Error as exc:
            self._refuse(f"near line {reader.line_num} cannot be read as CSV ({exc})")
        if not records:
            return []
        header = records[0][1]
        if (header != self.columns and header[:1] == ["step"]
                and len(set(header)) == len(header) and set(self.columns) <= set(header)):
            self.columns = header  # columns an earlier session added when they first appeared
        if header != self.columns:
            self._refuse(f"has the columns {short(','.join(header), 120)!r} where this run "
                         f"writes {short(','.join(self.columns), 120)!r}")
        body = records[1:]
        cut_short = not text.endswith(("\n", "\r"))
        kept: list[list[str]] = []
        last_step = 0
        for i, (line, row) in enumerate(body):
            if not row:
                continue  # a blank line carries no data
            try:
                step = self._parse(row)
            except ValueError as why:
                if i == len(body) - 1 and cut_short and last_step >= resume_after:
                    continue  # a row a kill cut short, of a step that runs again
                self._refuse(f"line {line}: {why}")
            if step <= resume_after:
                kept.append(row)
            last_step = step
        return kept

    def _parse(self, row: list[str]) -> int:
        if len(row) != len(self.columns):
            raise ValueError(f"{len(row)} cells where the header has {len(self.columns)}")
        if not re.fullmatch(r"[0-9]+", row[0].strip()):
            raise ValueError(f"the step {short(row[0], 40)!r} is not a whole number")
        for name, value in zip(self.columns[1:], row[1:]):
            if value.strip():
                try:
                    float(value)
                except ValueError:
                    raise ValueError(f"{name} {short(value, 40)!r} is not a number") from None
        return int(row[0])

    def _refuse(self, reason: str) -> NoReturn:
        backup = move_aside(self.path, TrainingError)
        raise CorruptRunFileError(
            f"{self.path} {reason}, so the resume stopped rather than drop rows; the file was "
            f"moved to {backup}: repair it and move it back, or resume again to start a new "
            f"{self.path.name}")
