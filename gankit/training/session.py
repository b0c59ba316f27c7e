"""A training session: the models, the parts, every piece of state and the compiled step.

This is the one code path that builds and steps a GAN. The trainer (``gankit.training.loop``)
wraps it with a run directory and callbacks; ``gankit.testing`` drives the very same object
on tiny data, so a component that passes the kit behaves the same way in a real run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from gankit.interfaces import (Augmenter, Discriminator, GANModels, Generator, Loss, Optimizer,
                               Regularizer, Strategy)


@dataclass
class Parts:
    """The components one session trains with (instances, no model built yet)."""

    generator: Generator
    discriminator: Discriminator
    loss: Loss
    strategy: Strategy
    optimizers: Mapping[str, Optimizer]
    """``"generator"`` and ``"discriminator"``."""
    regularizers: Sequence[Regularizer] = ()
    augmenter: Augmenter | None = None
    ema_decay: float | None = None
    ema_start: int = 0

    @classmethod
    def from_recipe(cls, recipe) -> "Parts":
        """The parts a validated :class:`~gankit.recipe.Recipe` names."""
        return cls(generator=recipe.create("generator"),
                   discriminator=recipe.create("discriminator"),
                   loss=recipe.create("loss"), strategy=recipe.create("strategy"),
                   optimizers=recipe.create("optimizer"),
                   regularizers=recipe.create("regularizer"),
                   augmenter=recipe.create("augmenter"),
                   ema_decay=recipe.ema.decay if recipe.ema else None,
                   ema_start=recipe.ema.start if recipe.ema else 0)


@dataclass
class SessionConfig:
    """The training settings a session needs (a subset of the recipe's ``train``)."""

    seed: int = 0
    batch_size: int = 2
    xla: str = "auto"
    deterministic: bool = True


@dataclass
class TrainingSession:
    """Builds the models and the training state, and compiles the step.

    Usage::

        session = TrainingSession(parts, SessionConfig(seed=0, batch_size=4))
        session.build()
        step = session.step_function()
        metrics, fake = step(tf.constant(0, tf.int64), batch)
    """

    parts: Parts
    config: SessionConfig = field(default_factory=SessionConfig)

    def __post_init__(self) -> None:
        self.built = False

    # -- building ----------------------------------------------------------------------

    def build(self) -> "TrainingSession":
        """Seed, build the models, the EMA copy and the optimizers; set up the strategy."""
        if self.built:
            return self
        import keras
        import tensorflow as tf

        from gankit.training.ema import GeneratorEMA
        from gankit.training.updates import CoreModelUpdate

        p, c = self.parts, self.config
        if c.deterministic:
            tf.config.experimental.enable_op_determinism()
        keras.utils.set_random_seed(c.seed)
        self.generator = p.generator.build()
        self.discriminator = p.discriminator.build()
        self.ema = None
        if p.ema_decay is not None:
            self.ema = GeneratorEMA(self.generator, p.generator.build(), p.ema_decay, p.ema_start)
        plan = xla_plan(c.xla)
        self.updates = {
            role: CoreModelUpdate(model, p.optimizers[role].create(),
                                  compile_update=plan == "updates")
            for role, model in (("discriminator", self.discriminator),
                                ("generator", self.generator))}
        self.augmenter = p.augmenter
        if self.augmenter is None:
            self.augmenter = Identity()
        self.models = GANModels(
            generator=self.generator, discriminator=self.discriminator, loss=p.loss,
            regularizers=tuple(p.regularizers), augmenter=self.augmenter, updates=self.updates,
            latent_dim=p.generator.latent_dim, num_classes=p.generator.num_classes)
        self.augmenter_state = dict(self.augmenter.state())
        p.strategy.setup(self.models)
        self.step_counter = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.built = True
        return self

    @property
    def batches_per_step(self) -> int:
        return self.parts.strategy.batches_per_step

    # -- state -------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Every piece of training state by name (what a checkpoint holds)."""
        self.build()
        state: dict[str, Any] = {
            "generator": self.generator, "discriminator": self.discriminator,
            "generator_optimizer": self.updates["generator"].optimizer,
            "discriminator_optimizer": self.updates["discriminator"].optimizer,
            "step": self.step_counter}
        if self.ema is not None:
            state["generator_ema"] = self.ema.shadow
        models = [("generator", self.generator), ("discriminator", self.discriminator)]
        if self.ema is not None:
            models.append(("generator_ema", self.ema.shadow))
        for role, model in models:
            # Keras' random-seed states (Dropout's masks) are variables that are not
            # weights, and tf.train.Checkpoint does not track them through the model: they
            # are named here so that a resumed run draws the same masks.
            weights = {id(w) for w in model.weights}
            for i, v in enumerate(v for v in model.variables if id(v) not in weights):
                state[f"{role}_seed_{i}"] = v
        for name, value in self.augmenter_state.items():
            state[f"augmenter_{name}"] = value
        return state

    def apply_recipe_hyperparameters(self) -> None:
        """Set each optimizer's fixed learning rate from the recipe again after a restore
        (a checkpoint stores the rate it was trained with; a resumed recipe may change it)."""
        for role, update in self.updates.items():
            rate = self.parts.optimizers[role].config.get("learning_rate")
            if isinstance(rate, (int, float)) and not isinstance(rate, bool):
                update.optimizer.learning_rate = rate

    def checkpoint(self):
        """A ``tf.train.Checkpoint`` of :meth:`state` (objects matched by name)."""
        import tensorflow as tf

        return tf.train.Checkpoint(**self.state())

    def variables(self) -> dict[str, list]:
        """The variables of each piece of state, for comparisons and NaN checks."""
        out = {}
        for name, obj in self.state().items():
            out[name] = list(obj.variables) if hasattr(obj, "variables") else [obj]
        return out

    # -- the step ----------------------------------------------------------------------

    def step_function(self):
        """The compiled step ``(step, Batch) -> (metrics, first generated image)``.

        What XLA compiles follows ``xla`` (see :func:`xla_plan`).
        """
        import tensorflow as tf

        from gankit.training.context import step_context

        self.build()
        strategy, models, seed = self.parts.strategy, self.models, self.config.seed
        ema, counter = self.ema, self.step_counter

        def step_fn(step, batch):
            out = strategy.train_step(batch, models, step_context(seed, step))
            if ema is not None:
                ema.update(step)
            counter.assign(tf.cast(step, tf.int64) + 1)
            return out.metrics, out.fake_images[0]

        return tf.function(step_fn, jit_compile=xla_plan(self.config.xla) == "step",
                           reduce_retracing=True)

    def sampler(self, use_ema: bool = True):
        """A compiled ``(latents[, labels]) -> images`` of the generator (the EMA copy when
        there is one and ``use_ema``), in inference mode, as float32."""
        import tensorflow as tf

        self.build()
        model = self.ema.shadow if (use_ema and self.ema is not None) else self.generator
        conditional = self.parts.generator.num_classes > 0

        def sample(latents, labels=None):
            inputs = [latents, labels] if conditional else latents
            return tf.cast(model(inputs, training=False), tf.float32)

        return tf.function(sample, reduce_retracing=True)


class Identity(Augmenter):
    """No augmentation (what a session uses when it is given no augmenter)."""

    name = "identity"

    @property
    def is_identity(self) -> bool:
        return True

    def augment(self, images, ctx):
        return images


def xla_plan(setting: str) -> str:
    """What ``train.xla`` compiles with XLA: ``"step"``, ``"updates"`` or ``"none"``.

    ``on`` compiles the whole step, ``off`` nothing. ``auto`` compiles only the optimizer
    updates and leaves the convolutions to TensorFlow's oneDNN kernels. Measured on CPU with
    the frog DCGAN at batch 2, 20 and 64: XLA's convolutions make the whole step about 30%
    slower, while one XLA computation per optimizer update, instead of RMSprop's separate
    elementwise passes, makes it about 5% faster at batch 2 and costs nothing at the larger
    batches. benchmarks/frog_dcgan_speed.py measures it again; docs/performance.md has the
    figures.
    """
    return {"on": "step", "off": "none", "auto": "updates"}[setting]
