"""The grids of a fixed batch of latents."""

from __future__ import annotations

import numpy as np

from gankit.training.callbacks.core import CoreCallback
from gankit.util.images import label_rows, make_grid, save_png, to_uint8

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
