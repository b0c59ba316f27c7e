"""The checkpoints of a run, as a callback."""

from __future__ import annotations

import numpy as np

from gankit._version import __version__
from gankit.errors import TrainingError
from gankit.training.callbacks.core import CoreCallback


class Checkpoints(CoreCallback):
    """Every ``checkpoint_every`` steps, at the end, and when a stop was requested."""

    def needs_boundary(self, step: int) -> bool:
        return step % self.run.train.checkpoint_every == 0 or step == self.run.train.steps

    def on_step_end(self, step: int, logs: dict[str, float]) -> None:
        run = self.run
        if not (step % run.train.checkpoint_every == 0 or run.is_final(step)
                or run.stop_requested):
            return
        # A loss is computed before its update, so weights can turn non-finite one step
        # before any loss shows it; such a state must not replace the last good checkpoint.
        for group, variables in run.session.variables().items():
            if not all(np.isfinite(np.asarray(v.numpy(), dtype=np.float64)).all()
                       for v in variables if _is_float(v)):
                raise TrainingError(f"the {group} state became NaN or Inf at step {step}; "
                                    f"training stopped and {run.last_good()}")
        checkpoint = run.session.checkpoint()
        run.store.save(step, checkpoint.write, {"recipe_digest": run.recipe.digest(),
                                                "gankit_version": __version__})
        run.run_dir.write_status(step=step, status="running")
        run.last_checkpoint = step


def _is_float(variable) -> bool:
    return "float" in str(getattr(variable, "dtype", ""))
