"""The progress bar, as a callback."""

from __future__ import annotations

from gankit.training.callbacks.core import CoreCallback
from gankit.util.progress import ProgressBar


class Progress(CoreCallback):
    """The progress bar (live on a terminal, plain lines otherwise)."""

    def __init__(self, bar: ProgressBar) -> None:
        super().__init__()
        self.bar = bar

    def on_step_end(self, step: int, logs: dict[str, float]) -> None:
        losses = {k: v for k, v in logs.items() if k.endswith("loss")}
        self.bar.update(step, dict(list(losses.items())[:4]))
