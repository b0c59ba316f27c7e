"""``losses.csv``, as a callback."""

from __future__ import annotations

from gankit.rundir.losses import LossLog as Writer
from gankit.training.callbacks.core import CoreCallback


class LossLog(CoreCallback):
    """``losses.csv``: one row per step with every metric."""

    def __init__(self, extra_columns=()) -> None:
        super().__init__()
        self._log = None
        self.extra_columns = list(extra_columns)

    def on_step_end(self, step: int, logs: dict[str, float]) -> None:
        if self._log is None:
            columns = list(logs) + [c for c in self.extra_columns if c not in logs]
            self._log = Writer(self.run.run_dir.losses_file, columns,
                               resume_after=self.run.start_step if self.run.resumed else None)
        self._log.write(step, logs)

    def on_close(self) -> None:
        if self._log is not None:
            self._log.close()
