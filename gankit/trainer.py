"""The trainer: builds a recipe's components and drives its strategy, step by step.

Everything random in a run derives from ``train.seed``: initial weights (Keras' global seed,
set once before the models are built), each step's latents and label noise (stateless, keyed
by ``[seed, step]``), the data order (keyed by ``[seed, -1 - epoch]``) and dropout (seed
state stored with the model's variables). A checkpoint therefore holds all that is needed to
continue exactly: variables, optimizer slots, and the step.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from gankit import __version__
from gankit.checkpoints import CheckpointStore
from gankit.errors import DatasetError, TrainingError
from gankit.images import make_grid, save_png, to_uint8
from gankit.progress import ProgressBar
from gankit.recipe import Recipe
from gankit.run_dir import LossLog, RunDir


@dataclass(frozen=True)
class TrainResult:
    """What a finished run hands back."""

    run_dir: Path
    step: int
    metrics: dict[str, float]
    seconds: float
    generator_file: Path | None
    start: int = 0
    """The step this session started after (non-zero when resumed)."""


class Interrupted(Exception):
    """The user pressed Ctrl-C; a checkpoint of the last finished step was written."""

    def __init__(self, step: int, run_dir: Path):
        super().__init__(f"interrupted after step {step}; a checkpoint was saved. "
                         f"Continue with: gankit resume {run_dir}")
        self.step = step


class Trainer:
    """Runs a validated recipe in a run directory.

    Args:
        recipe: the validated recipe.
        run_dir: a created (or, with ``resume``, existing) run directory.
        resume: continue from the newest usable checkpoint in ``run_dir``.
        progress: show the progress bar (on stderr).
        on_message: where one-line notices go (default: the progress bar's stream).
    """

    def __init__(self, recipe: Recipe, run_dir: RunDir, *, resume: bool = False,
                 progress: bool = True, on_message: Callable[[str], None] | None = None) -> None:
        self.recipe = recipe
        self.run_dir = run_dir
        self.resume = resume
        self.progress_enabled = progress
        self._say = on_message
        self._stop_requested = False

    # -- building --------------------------------------------------------------------------

    def build(self) -> None:
        """Seed, build every component, and set up the strategy (idempotent)."""
        if getattr(self, "generator", None) is not None:
            return
        import keras
        import tensorflow as tf

        train = self.recipe.train
        if train.deterministic:
            tf.config.experimental.enable_op_determinism()
        keras.utils.set_random_seed(train.seed)
        parts = {kind: spec.create() for kind, spec in self.recipe.components.items()}
        self.components = parts
        self.images = parts["dataset"].load()
        self._check_data(self.images, parts["dataset"])
        self.value_range = tuple(parts["dataset"].value_range)
        self.generator = parts["generator"].build()
        self.discriminator = parts["discriminator"].build()
        self.strategy = parts["strategy"]
        self.strategy.setup(self.generator, self.discriminator, parts["generator"].latent_dim)

    def _check_data(self, images: np.ndarray, dataset) -> None:
        expected = tuple(dataset.image_shape)
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise DatasetError(f"the dataset returned images of shape {images.shape[1:]}, "
                               f"expected {expected}")
        if len(images) < self.recipe.train.batch_size:
            raise DatasetError(f"the dataset has {len(images)} images, fewer than "
                               f"train.batch_size={self.recipe.train.batch_size}")

    def _variable_groups(self) -> dict[str, list]:
        """Every variable needed to continue training, by checkpoint group."""
        groups = {"generator": self.generator.variables,
                  "discriminator": self.discriminator.variables}
        for role, opt in self.strategy.optimizers.items():
            groups[f"optimizer/{role}"] = opt.variables
        return groups

    def state(self) -> dict[str, list[np.ndarray]]:
        """Every variable needed to continue training, grouped for a checkpoint."""
        return {g: [np.asarray(v.numpy()) for v in vs]
                for g, vs in self._variable_groups().items()}

    def restore(self, state: dict[str, list[np.ndarray]]) -> None:
        """Assign a checkpoint's values to the variables (shapes are checked first)."""
        groups = self._variable_groups()
        for group, variables in groups.items():
            values = state.get(group)
            if values is None or len(values) != len(variables) or any(
                    tuple(v.shape) != tuple(a.shape) for v, a in zip(variables, values)):
                raise TrainingError(f"the checkpoint's {group} state does not fit the models this "
                                    f"recipe builds; was the recipe changed?")
        for group, variables in groups.items():
            for variable, value in zip(variables, state[group]):
                variable.assign(value)

    # -- data and step ---------------------------------------------------------------------

    def _dataset(self, start: int):
        """A tf.data pipeline of (step, batch) for steps ``start`` .. ``steps - 1``.

        The batch at a step is a pure function of the step, so resuming is exact: sequential
        order as in the article (a partial last batch is skipped), or a seeded permutation
        per epoch when ``train.shuffle`` is on.
        """
        import tensorflow as tf

        train = self.recipe.train
        n, bs = len(self.images), train.batch_size
        per_epoch = n // bs
        images = tf.constant(self.images)
        seed = tf.constant(train.seed, tf.int64)

        def batch(step):
            epoch, position = step // per_epoch, step % per_epoch
            if train.shuffle:
                keys = tf.random.stateless_uniform([n], tf.stack([seed, -1 - epoch]))
                order = tf.argsort(keys)
            else:
                order = tf.range(n, dtype=tf.int64)
            index = order[position * bs:(position + 1) * bs]
            return step, tf.gather(images, index)

        return (tf.data.Dataset.range(start, train.steps)
                .map(batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
                .prefetch(2))

    def step_function(self):
        """The compiled training step ``(step, real_images) -> (metrics, first_fake_image)``.

        What XLA compiles follows ``train.xla`` (see :func:`xla_plan`).
        """
        import tensorflow as tf

        train = self.recipe.train
        seed = tf.constant(train.seed, tf.int64)
        strategy = self.strategy
        plan = xla_plan(train.xla)
        strategy.compile_updates = plan == "updates"  # see Strategy.compile_updates

        def step_fn(step, real):
            inputs = strategy.draw_inputs(tf.stack([seed, step]), train.batch_size)
            out = strategy.train_step(real, inputs)
            return out.metrics, out.fake_images[0]

        return tf.function(step_fn, jit_compile=plan == "step", reduce_retracing=True)

    # -- outputs ---------------------------------------------------------------------------

    def _grid(self, step: int, latents: np.ndarray, writer) -> None:
        import tensorflow as tf

        fakes = self._generate(latents).numpy()
        grid = make_grid(to_uint8(fakes, self.value_range), columns=self.recipe.train.grid_size)
        save_png(grid, self.run_dir.samples / f"grid_{step:06d}.png", upscale=2)
        if writer is not None:
            with writer.as_default():
                tf.summary.image("samples", grid[None], step=step)

    def _checkpoint(self, store: CheckpointStore, step: int) -> None:
        state = self.state()
        # A loss is computed before its update, so weights can turn non-finite one step
        # before any loss shows it; such a state must not replace the last good checkpoint.
        bad = [g for g, values in state.items() if not all(np.isfinite(v).all() for v in values)]
        if bad:
            raise TrainingError(f"the {bad[0]} state became NaN or Inf at step {step}; "
                                f"training stopped and {_last_good(store)}")
        store.save(step, state, {"recipe_digest": self.recipe.digest(),
                                 "gankit_version": __version__})
        self.run_dir.write_status(step=step, status="running")

    def _message(self, bar: ProgressBar, text: str) -> None:
        if self._say is not None:
            self._say(text)
        elif bar.enabled:
            bar.message(text)
        else:  # --quiet hides the progress bar, not where a resume started
            print(text, file=sys.stderr, flush=True)

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> TrainResult:
        """Train to ``train.steps``, writing samples, losses and checkpoints as configured.

        Raises:
            TrainingError: a non-finite loss, or a failed write (checkpoints stay intact).
            Interrupted: on Ctrl-C, after saving a checkpoint.
        """
        import tensorflow as tf

        train = self.recipe.train
        self.build()
        store = CheckpointStore(self.run_dir.checkpoints, keep=train.keep_checkpoints)
        store.clean_leftovers()
        self.run_dir.clean_leftovers()
        start = 0
        if self.resume:
            ckpt = store.load_latest()
            if ckpt is not None:
                self.restore(ckpt.state)
                start = ckpt.step
        bar = ProgressBar(train.steps, start, enabled=self.progress_enabled)
        if self.resume:
            note = f"resuming {self.run_dir.path} at step {start}"
            if not start:
                note = "no checkpoint yet; starting from step 0"
            elif start >= train.steps:
                note += f"; train.steps is {train.steps}, so nothing is left to train"
            self._message(bar, note)
        step_fn = self.step_function()
        self._generate = tf.function(lambda z: self.generator(z, training=False))
        grid_latents = np.random.default_rng([train.seed, 1]).standard_normal(
            (train.grid_size ** 2, self.components["generator"].latent_dim)).astype(np.float32)
        writer = tf.summary.create_file_writer(str(self.run_dir.tensorboard))
        log = None
        metrics: dict[str, float] = {}
        previous = signal.signal(signal.SIGINT, self._on_sigint)
        self.run_dir.write_status(status="running", step=start, steps=train.steps,
                                  started=time.time(), gankit_version=__version__, pid=os.getpid())
        t0 = time.perf_counter()
        done = start
        try:
            if start == 0:
                self._grid(0, grid_latents, writer)
            for step, real in self._dataset(start):
                values, first_fake = step_fn(step, real)
                done = int(step) + 1
                metrics = {k: float(v) for k, v in values.items()}
                if log is None:
                    log = LossLog(self.run_dir.losses_file, list(metrics),
                                  resume_after=start if self.resume else None)
                log.write(done, metrics)
                bad = [k for k in ("d_loss", "g_loss", *metrics) if k in metrics
                       and not math.isfinite(metrics[k])]
                if bad:
                    raise TrainingError(f"{bad[0]} became {metrics[bad[0]]} at step {done}; "
                                        f"training stopped and {_last_good(store)}")
                bar.update(done, {k: metrics[k] for k in ("d_loss", "g_loss") if k in metrics})
                last_step = done == train.steps
                if done % train.sample_every == 0 or last_step:
                    self._samples(done, first_fake.numpy(), real[0].numpy(), metrics, writer)
                if done % train.grid_every == 0 or last_step:
                    self._grid(done, grid_latents, writer)
                if done % train.checkpoint_every == 0 or last_step or self._stop_requested:
                    self._checkpoint(store, done)
                if self._stop_requested:
                    raise Interrupted(done, self.run_dir.path)
            generator_file = self._save_generator()
        except BaseException as exc:
            error = exc
            if isinstance(exc, OSError):  # a sample or the loss log could not be written
                where = exc.filename or self.run_dir.path
                error = TrainingError(f"could not write {where}: {exc.strerror or exc}; "
                                      f"training stopped and {_last_good(store)}")
            status = "interrupted" if isinstance(exc, (Interrupted, KeyboardInterrupt)) else "failed"
            try:
                self.run_dir.write_status(status=status, step=done, error=str(error))
            except TrainingError:
                pass  # the disk may be what failed; the original error matters more
            if error is not exc:
                raise error from None
            raise
        finally:
            signal.signal(signal.SIGINT, previous)
            if log is not None:
                log.close()
            writer.close()
        seconds = time.perf_counter() - t0
        self.run_dir.write_status(status="completed", step=done, seconds=seconds,
                                  metrics=metrics, finished=time.time())
        return TrainResult(self.run_dir.path, done, metrics, seconds, generator_file, start)

    def _on_sigint(self, signum, frame) -> None:
        if self._stop_requested:  # a second Ctrl-C: stop at once
            raise KeyboardInterrupt
        self._stop_requested = True

    def _samples(self, step: int, fake: np.ndarray, real: np.ndarray,
                 metrics: dict[str, float], writer) -> None:
        import tensorflow as tf

        # The article's per-step pair of PNGs; the generator's output is read in the data's
        # value range, since that is what the discriminator compares it with.
        save_png(to_uint8(fake, self.value_range), self.run_dir.samples / f"generated_frog_{step:06d}.png")
        save_png(to_uint8(real, self.value_range), self.run_dir.samples / f"real_frog_{step:06d}.png")
        with writer.as_default():
            for name, value in metrics.items():
                tf.summary.scalar(name, value, step=step)

    def _save_generator(self) -> Path:
        path = self.run_dir.generator_file
        tmp = path.with_name(f".tmp{os.getpid()}-{path.name}")
        try:
            self.generator.save(tmp)
            os.replace(tmp, path)
        except OSError as exc:
            raise TrainingError(f"could not save {path}: {exc.strerror or exc}") from None
        return path


def xla_plan(setting: str) -> str:
    """What ``train.xla`` compiles with XLA: ``"step"``, ``"updates"`` or ``"none"``.

    ``on`` compiles the whole step, ``off`` nothing. ``auto`` compiles only the optimizer
    updates (of strategies that offer it) and leaves the convolutions to TensorFlow's
    oneDNN kernels. Measured on CPU with the frog DCGAN at batch 2, 20 and 64: XLA's
    convolutions make the whole step about 30% slower, while one XLA computation per
    optimizer update, instead of RMSprop's separate elementwise passes, makes it about 5%
    faster at batch 2 and costs nothing at the larger batches. benchmarks/frog_dcgan_speed.py
    measures it again; docs/performance.md has the figures.
    """
    return {"on": "step", "off": "none", "auto": "updates"}[setting]


def _last_good(store: CheckpointStore) -> str:
    kept = store.steps()
    return (f"the last checkpoint (step {kept[-1]}) is untouched" if kept
            else "no checkpoint had been written yet")
