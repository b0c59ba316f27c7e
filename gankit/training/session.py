"""A training session: the models, the parts, every piece of state and the compiled step.

This is the one code path that builds and steps a GAN. The trainer (``gankit.training.loop``)
wraps it with a run directory and callbacks; ``gankit.testing`` drives the very same object
on tiny data, so a component that passes the kit behaves the same way in a real run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from gankit.interfaces import (
    Augmenter,
    Discriminator,
    GANModels,
    Generator,
    Loss,
    Optimizer,
    Regularizer,
    Strategy,
)
from gankit.util.graph import plain_python


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
    ema_statistics: str = "copy"
    ema_rampup: float | None = None

    @classmethod
    def from_recipe(cls, recipe) -> Parts:
        """The parts a validated :class:`~gankit.recipe.validation.Recipe` names."""
        return cls(generator=recipe.create("generator"),
                   discriminator=recipe.create("discriminator"),
                   loss=recipe.create("loss"), strategy=recipe.create("strategy"),
                   optimizers=recipe.create("optimizer"),
                   regularizers=recipe.create("regularizer"),
                   augmenter=recipe.create("augmenter"),
                   ema_decay=recipe.ema.decay if recipe.ema else None,
                   ema_start=recipe.ema.start if recipe.ema else 0,
                   ema_statistics=recipe.ema.statistics if recipe.ema else "copy",
                   ema_rampup=recipe.ema.rampup if recipe.ema else None)


@dataclass
class SessionConfig:
    """The training settings a session needs (a subset of the recipe's ``train``)."""

    seed: int = 0
    batch_size: int = 2
    xla: str = "auto"
    deterministic: bool = True
    precision: str = "float32"
    """A Keras dtype policy (``gankit.training.precision.PRECISIONS``), or ``auto``: the
    fastest on the devices the session trains on (``gankit.training.precision.choose``);
    :attr:`TrainingSession.precision` holds what it resolved to."""
    distribute: dict = field(default_factory=lambda: {"type": "none"})
    """``train.distribute`` as :func:`gankit.recipe.distribute.check_distribute` gives it."""


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

    def build(self) -> TrainingSession:
        """Seed, build the models, the EMA copy and the optimizers; set up the strategy.

        Under ``train.distribute`` everything is built in the ``tf.distribute`` strategy's
        scope (``self.distribution``, see ``gankit.training.distribute``).
        """
        if self.built:
            return self
        from gankit.training import distribute

        self.distribution = distribute.create(self.config.distribute, self.config.batch_size)
        with self.distribution.scope():
            return self._build()

    def _build(self) -> TrainingSession:
        import keras
        import tensorflow as tf

        from gankit.training.ema import GeneratorEMA
        from gankit.training.precision import choose, dtype_policy, uses_loss_scaling
        from gankit.training.updates import CoreModelUpdate

        p, c = self.parts, self.config
        self.precision = choose(c.precision, self.distribution)
        if self.precision.warning:
            import warnings

            from gankit.errors import PrecisionWarning

            warnings.warn(self.precision.warning, PrecisionWarning, stacklevel=2)
        policy = self.precision.policy
        if c.deterministic:
            tf.config.experimental.enable_op_determinism()
        keras.utils.set_random_seed(c.seed)
        with dtype_policy(policy):  # the layers keep it; the global policy is restored
            self.generator = p.generator.build()
            self.discriminator = p.discriminator.build()
            self.ema = None
            if p.ema_decay is not None:
                self.ema = GeneratorEMA(self.generator, p.generator.build(), p.ema_decay,
                                        p.ema_start, p.ema_statistics, p.ema_rampup)
        plan = xla_plan(c.xla)
        if self.distribution.replicated:  # a replica's optimizer update is a merge_call:
            plan = "none"                 # XLA cannot compile it
        self.updates = {
            role: CoreModelUpdate(model, p.optimizers[role].create(),
                                  compile_update=plan == "updates",
                                  loss_scale=uses_loss_scaling(policy))
            for role, model in (("discriminator", self.discriminator),
                                ("generator", self.generator))}
        self.augmenter = p.augmenter
        if self.augmenter is None:
            self.augmenter = Augmenter()  # the interface is the identity
        self.models = GANModels(
            generator=self.generator, discriminator=self.discriminator, loss=p.loss,
            regularizers=tuple(p.regularizers), augmenter=self.augmenter, updates=self.updates,
            latent_dim=p.generator.latent_dim, num_classes=p.generator.num_classes,
            discriminator_mixes_batch=p.discriminator.mixes_batch)
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
        for role, update in self.updates.items():  # the loss scale under mixed_float16
            for name, variable in update.state().items():
                state[f"{role}_{name}"] = variable
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

    def train_step(self, step, batch):
        """One training step, uncompiled: ``(step, Batch) -> (metrics, first generated
        image)``: the strategy's step, the EMA update, the step counter.

        This is the body every compiled step function traces (:meth:`step_function` compiles
        it, :meth:`steps_function` loops the compiled step). Under ``train.distribute`` the
        strategy's step runs on every replica (``self.distribution.run``); the EMA and the
        counter are updated once, after it. The image is float32 whatever the precision.
        """
        import tensorflow as tf

        self.build()
        metrics, fake = self.distribution.run(self._replica_step, step, batch)
        if self.ema is not None:
            self.ema.update(step)
        self.step_counter.assign(tf.cast(step, tf.int64) + 1)
        return metrics, tf.cast(fake, tf.float32)

    def _replica_step(self, step, batch):
        """The strategy's step on one replica's part of the batch (on one device: all of
        it); under ``train.distribute`` its random draws are the replica's slice of one
        device's (``self.distribution.context``)."""
        out = self.parts.strategy.train_step(batch, self.models,
                                             self.distribution.context(self.config.seed, step))
        return out.metrics, out.fake_images[0]

    def step_function(self):
        """The compiled step ``(step, Batch) -> (metrics, first generated image)``.

        What XLA compiles follows ``xla`` (see :func:`xla_plan`).
        """
        import tensorflow as tf

        self.build()
        return tf.function(self.train_step, jit_compile=xla_plan(self.config.xla) == "step",
                           reduce_retracing=True)

    def steps_function(self, batch_spec=None, step=None):
        """The compiled call that runs several steps in one graph loop.

        ``(first, Batch) -> (metrics, fakes, n)``: ``first`` is the int64 step to start at;
        the batch's tensors have the steps as their leading axis (``k`` steps of
        ``(batches_per_step, batch_size, ...)``). Steps ``first .. first + k - 1`` run one
        after the other in a ``tf.while_loop`` around one compiled step (not ``k`` copies of
        it), and the loop stops after the first step whose metrics are not all finite.
        ``metrics`` holds each metric of the ``n`` steps run, stacked ``(n,)``; ``fakes`` each
        step's first generated image ``(n, H, W, C)`` (float32); ``n`` is an int32 scalar
        (``k`` unless a step went non-finite). The arithmetic of every step is the same as
        :meth:`step_function`'s: results do not depend on how steps are grouped into calls.

        Args:
            batch_spec: the ``Batch`` of ``tf.TensorSpec`` the calls take (the ``tf.data``
                pipeline's ``element_spec``), with the steps axis ``None`` so that every
                call size shares one trace; None: traced from the first call.
            step: the compiled one-step function to loop (default: :meth:`step_function`);
                a distribution strategy passes its wrapper of :meth:`train_step`.
        """
        import tensorflow as tf

        from gankit.interfaces import Batch

        self.build()
        if self.distribution.replicated:  # train.distribute: its own call, one step each
            return self.distribution.steps_function(self)
        one = step if step is not None else self.step_function()

        @plain_python
        def run_steps(first, batches):
            k = tf.shape(batches.images)[0]
            per_step = Batch(*(None if t is None else tf.TensorSpec(t.shape[1:], t.dtype)
                               for t in batches))
            concrete = one.get_concrete_function(tf.TensorSpec((), tf.int64), per_step)
            metric_specs, fake_spec = concrete.structured_outputs
            names = list(metric_specs)
            metrics = [tf.TensorArray(metric_specs[n].dtype, size=k,
                                      element_shape=metric_specs[n].shape) for n in names]
            fakes = tf.TensorArray(fake_spec.dtype, size=k, element_shape=fake_spec.shape)

            def go_on(i, finite, metrics, fakes):
                return tf.logical_and(i < k, finite)

            def body(i, finite, metrics, fakes):
                batch = Batch(*(None if t is None else t[i] for t in batches))
                values, fake = one(first + tf.cast(i, tf.int64), batch)
                checks = [tf.reduce_all(tf.math.is_finite(values[n])) for n in names
                          if values[n].dtype.is_floating]
                finite = tf.reduce_all(tf.stack(checks)) if checks else tf.constant(True)
                metrics = [ta.write(i, values[n]) for ta, n in zip(metrics, names)]
                return i + 1, finite, metrics, fakes.write(i, fake)

            n, _, metrics, fakes = tf.while_loop(
                go_on, body, (tf.constant(0), tf.constant(True), metrics, fakes))
            return {name: ta.stack() for name, ta in zip(names, metrics)}, fakes.stack(), n

        if batch_spec is None:
            return tf.function(run_steps, reduce_retracing=True)
        return tf.function(run_steps, input_signature=[tf.TensorSpec((), tf.int64), batch_spec])

    def sampler(self, use_ema: bool = True):
        """A compiled ``(latents[, labels]) -> images`` of the generator (the EMA copy when
        there is one and ``use_ema``), in inference mode, as float32."""
        import tensorflow as tf

        self.build()
        model = self.ema.shadow if (use_ema and self.ema is not None) else self.generator
        conditional = self.parts.generator.num_classes > 0

        @plain_python
        def sample(latents, labels=None):
            inputs = [latents, labels] if conditional else latents
            return tf.cast(model(inputs, training=False), tf.float32)

        return tf.function(sample, reduce_retracing=True)


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
