"""A callback that logs, every few steps, how often the discriminator takes freshly
generated images for real."""

import numpy as np

from gankit import Callback, Param


class FooledShare(Callback):
    """Every few steps, the share of freshly generated images the discriminator calls real."""

    name = "fooled_share"
    params = {
        "every": Param(int, 100, min=1, doc="measure every this many steps (and at the end)"),
        "samples": Param(int, 64, min=1, doc="generated images scored each time"),
    }

    def log_columns(self):
        return ["d_fooled"]  # logged on some steps only: its column exists from the start

    def needs_boundary(self, step):
        # It reads the models, so the compiled call must end at the steps it measures.
        return step % self.config["every"] == 0 or step == self.run.train.steps

    def on_train_begin(self, run):
        super().on_train_begin(run)
        generator = run.recipe.create("generator")
        self.latent_dim, self.num_classes = generator.latent_dim, generator.num_classes
        # A probability is "real" above 0.5, a logit or critic value above 0.
        sigmoid = run.recipe.create("discriminator").output_activation == "sigmoid"
        self.threshold = 0.5 if sigmoid else 0.0
        self.sample = run.session.sampler(use_ema=False)  # the generator being trained

    def on_step_end(self, step, logs):
        import tensorflow as tf

        if not self.needs_boundary(step):
            return
        rng = np.random.default_rng(step)  # the same latents whenever step `step` runs
        n = self.config["samples"]
        latents = tf.constant(rng.standard_normal((n, self.latent_dim), np.float32))
        session = self.run.session
        if self.num_classes:
            labels = tf.constant(rng.integers(0, self.num_classes, n, dtype=np.int32))
            scores = session.discriminator([self.sample(latents, labels), labels],
                                           training=False)
        else:
            scores = session.discriminator(self.sample(latents), training=False)
        fooled = np.asarray(scores, np.float32) > self.threshold
        logs["d_fooled"] = float(fooled.mean())  # one number: a Python float
