"""The trainer's built-in side work, one callback each.

They run in this order after every step: the NaN guard, the recipe's own callbacks, the
loss log, the progress bar, TensorBoard, samples, grids and checkpoints. Grids, checkpoints
and metrics need the models at their steps (:meth:`~gankit.interfaces.Callback.needs_boundary`),
so a compiled call of several steps ends there; the others use only each step's logs and
images, which a call returns for every step it ran. A recipe's
``callbacks`` section adds registered callbacks (they may add entries to ``logs``, which
the loss log and TensorBoard then record).
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from gankit._version import __version__
from gankit.errors import TrainingError
from gankit.util.images import label_rows, make_grid, save_png, to_uint8
from gankit.interfaces import Callback
from gankit.util.progress import ProgressBar


class CoreCallback(Callback):
    """A built-in callback: configured by the trainer, not by a recipe section."""

    def __init__(self) -> None:  # noqa: D107 - no recipe parameters
        self.config = {}

    def needs_boundary(self, step: int) -> bool:
        """Built-ins read only a step's logs and images unless they say otherwise (grids,
        checkpoints and metrics need the models at their steps)."""
        return False


class NaNGuard(CoreCallback):
    """Stops training at the first non-finite metric: the step's row is logged (to show
    what went wrong), nothing else is written for it. A compiled call of several steps
    stops in the graph after that step, so the steps before it are reported as usual and
    no later step runs."""

    def __init__(self, log: "LossLog") -> None:
        super().__init__()
        self.log = log

    def on_step_end(self, step: int, logs: dict[str, float]) -> None:
        bad = [k for k in sorted(logs, key=lambda k: not k.endswith("loss"))
               if not math.isfinite(logs[k])]
        if bad:
            self.log.on_step_end(step, logs)
            raise TrainingError(f"{bad[0]} became {logs[bad[0]]} at step {step}; training "
                                f"stopped and {self.run.last_good()}")


class LossLog(CoreCallback):
    """``losses.csv``: one row per step with every metric."""

    def __init__(self, extra_columns=()) -> None:
        super().__init__()
        self._log = None
        self.extra_columns = list(extra_columns)

    def on_step_end(self, step: int, logs: dict[str, float]) -> None:
        from gankit.rundir.run_dir import LossLog as Writer

        if self._log is None:
            columns = list(logs) + [c for c in self.extra_columns if c not in logs]
            self._log = Writer(self.run.run_dir.losses_file, columns,
                               resume_after=self.run.start_step if self.run.resumed else None)
        self._log.write(step, logs)

    def on_close(self) -> None:
        if self._log is not None:
            self._log.close()


class Progress(CoreCallback):
    """The progress bar (live on a terminal, plain lines otherwise)."""

    def __init__(self, bar: ProgressBar) -> None:
        super().__init__()
        self.bar = bar

    def on_step_end(self, step: int, logs: dict[str, float]) -> None:
        losses = {k: v for k, v in logs.items() if k.endswith("loss")}
        self.bar.update(step, dict(list(losses.items())[:4]))


class TensorBoard(CoreCallback):
    """Every metric as a TensorBoard scalar, every ``sample_every`` steps and at the end."""

    def on_step_end(self, step: int, logs: dict[str, float]) -> None:
        import tensorflow as tf

        if step % self.run.train.sample_every == 0 or self.run.is_final(step):
            with self.run.writer.as_default():
                for name, value in logs.items():
                    tf.summary.scalar(name, value, step=step)


class Samples(CoreCallback):
    """One generated and one real image every ``sample_every`` steps (the article's pair):
    ``samples/generated_<step>.png`` and ``samples/real_<step>.png``."""

    def on_step_end(self, step: int, logs: dict[str, float]) -> None:
        run = self.run
        if step % run.train.sample_every and not run.is_final(step):
            return
        # The generator's output is read in the data's value range, since that is what the
        # discriminator compares it with.
        fake, real = run.last_fake.numpy(), run.last_real.numpy()
        save_png(to_uint8(fake, run.value_range), run.run_dir.samples / f"generated_{step:06d}.png")
        save_png(to_uint8(real, run.value_range), run.run_dir.samples / f"real_{step:06d}.png")


MAX_GRID_CLASSES = 100
"""A conditional run's grids show at most this many classes (rows)."""


class Grids(CoreCallback):
    """A grid of a fixed batch of latents at step 0, every ``grid_every`` steps and at the
    end (from the EMA generator when there is one): ``samples/grid_<step>.png``.

    A conditional generator's grid has one row per class (the first
    :data:`MAX_GRID_CLASSES`), ``grid_size`` images each, the class names written beside the
    rows; every row uses the same latents, so a column is one latent vector drawn as each
    class."""

    def on_train_begin(self, run) -> None:
        super().on_train_begin(run)
        train = run.train
        generator = run.session.parts.generator
        classes = min(generator.num_classes, MAX_GRID_CLASSES)
        count = train.grid_size if classes else train.grid_size ** 2
        self.latents = np.random.default_rng([train.seed, 1]).standard_normal(
            (count, generator.latent_dim)).astype(np.float32)
        self.labels = self.names = None
        if classes:
            self.latents = np.tile(self.latents, (classes, 1))
            self.labels = np.repeat(np.arange(classes), train.grid_size).astype(np.int32)
            names = run.recipe.create("dataset").class_names
            self.names = (list(names)[:classes] if names is not None
                          and len(names) == generator.num_classes
                          else [str(i) for i in range(classes)])
        self.sample = run.session.sampler()
        if run.start_step == 0:
            self.write(0)

    def write(self, step: int) -> None:
        import tensorflow as tf

        run = self.run
        images = (self.sample(self.latents) if self.labels is None
                  else self.sample(self.latents, self.labels)).numpy()
        grid = make_grid(to_uint8(images, run.value_range), columns=run.train.grid_size)
        upscale = 2
        if self.names is not None:
            grid, upscale = label_rows(grid, self.names, upscale=2), 1
        save_png(grid, run.run_dir.samples / f"grid_{step:06d}.png", upscale=upscale)
        with run.writer.as_default():
            tf.summary.image("samples", grid[None], step=step)

    def needs_boundary(self, step: int) -> bool:
        return step % self.run.train.grid_every == 0 or step == self.run.train.steps

    def on_step_end(self, step: int, logs: dict[str, float]) -> None:
        if step % self.run.train.grid_every == 0 or self.run.is_final(step):
            self.write(step)


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


def builtin_callbacks(bar: ProgressBar, recipe, extra_columns=()
                      ) -> tuple[list[Callback], list[Callback]]:
    """The built-in callbacks that run before and after a recipe's own (and the metrics of
    the recipe's ``metrics`` section, right after the NaN guard)."""
    metrics: list[Callback] = []
    if recipe.metrics is not None:
        from gankit.evaluation.callback import MetricsCallback
        metrics.append(MetricsCallback(recipe))
    log = LossLog([c for cb in metrics for c in cb.log_columns()] + list(extra_columns))
    return [NaNGuard(log), *metrics], [log, Progress(bar), TensorBoard(), Samples(), Grids(),
                                       Checkpoints()]


def describe(logs: Mapping[str, float]) -> str:
    """``d_loss 0.6931 g_loss 0.7012``: the losses of a step, for a closing line."""
    return " ".join(f"{k} {v:.4f}" for k, v in logs.items() if k.endswith("loss"))
