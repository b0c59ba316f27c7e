"""Stop at the first non-finite metric."""

from __future__ import annotations

import math

from gankit.errors import TrainingError
from gankit.training.callbacks.core import CoreCallback
from gankit.training.callbacks.loss_log import LossLog


class NaNGuard(CoreCallback):
    """Stops training at the first non-finite metric: the step's row is logged (to show
    what went wrong), nothing else is written for it. A compiled call of several steps
    stops in the graph after that step, so the steps before it are reported as usual and
    no later step runs."""

    def __init__(self, log: LossLog) -> None:
        super().__init__()
        self.log = log

    def on_step_end(self, step: int, logs: dict[str, float]) -> None:
        bad = [k for k in sorted(logs, key=lambda k: not k.endswith("loss"))
               if not math.isfinite(logs[k])]
        if bad:
            self.log.on_step_end(step, logs)
            raise TrainingError(f"{bad[0]} became {logs[bad[0]]} at step {step}; training "
                                f"stopped and {self.run.last_good()}")
