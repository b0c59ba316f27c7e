"""A progress display for training: a live bar on a terminal, periodic lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Mapping, TextIO


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class ProgressBar:
    """Shows step/total, steps per second, ETA and the latest losses.

    On a terminal the line is redrawn in place at most ``refresh`` times a second; when the
    output is not a terminal (a CI log, a file) it prints one plain line every ``every``
    steps and at the end.

    Args:
        total: the last step number.
        start: the step training starts after (non-zero when resuming).
        stream: where to write; stderr by default.
        every: steps between lines when not on a terminal.
        enabled: False silences it entirely.
    """

    def __init__(self, total: int, start: int = 0, *, stream: TextIO | None = None,
                 every: int | None = None, enabled: bool = True, refresh: float = 4.0) -> None:
        self.total, self.start = total, start
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.live = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.every = every or max(1, (total - start) // 20)
        self._interval = 1.0 / refresh
        self._t0 = time.perf_counter()
        self._last_draw = 0.0
        self._recent: list[tuple[int, float]] = []

    def rate(self, step: int) -> float:
        """Steps per second over the last few seconds (over the whole run at first)."""
        now = time.perf_counter()
        self._recent.append((step, now))
        while len(self._recent) > 2 and now - self._recent[0][1] > 10.0:
            self._recent.pop(0)
        (s0, t0) = self._recent[0] if len(self._recent) > 1 else (self.start, self._t0)
        return (step - s0) / max(now - t0, 1e-9)

    def line(self, step: int, metrics: Mapping[str, float]) -> str:
        rate = self.rate(step)
        eta = (self.total - step) / rate if rate > 0 else 0.0
        width = 24
        filled = int(width * step / max(self.total, 1))
        bar = "#" * filled + "-" * (width - filled)
        losses = " ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        return (f"step {step}/{self.total} [{bar}] {rate:.2f} step/s "
                f"ETA {_duration(eta)} {losses}")

    def update(self, step: int, metrics: Mapping[str, float]) -> None:
        """Report that ``step`` has finished with these metrics."""
        if not self.enabled:
            return
        final = step >= self.total
        if self.live:
            now = time.perf_counter()
            if final or now - self._last_draw >= self._interval:
                self._last_draw = now
                self.stream.write("\r\033[K" + self.line(step, metrics))
                if final:
                    self.stream.write("\n")
                self.stream.flush()
        elif final or (step - self.start) % self.every == 0:
            self.stream.write(self.line(step, metrics) + "\n")
            self.stream.flush()

    def message(self, text: str) -> None:
        """Print a line without garbling the live bar."""
        if not self.enabled:
            return
        prefix = "\r\033[K" if self.live else ""
        self.stream.write(prefix + text + "\n")
        self.stream.flush()

    def elapsed(self) -> float:
        return time.perf_counter() - self._t0
