"""The parts of training: losses, regularizers, augmenters, optimizers, schedules and the
strategy that combines them into one step.

A strategy receives its parts; it never builds them. The core (``gankit.training``) builds
the models and the parts from the recipe, owns gradient application (:class:`ModelUpdate`:
loss scaling, clipping, the XLA-compiled update, cross-replica reduction), the EMA of the
generator, randomness (:class:`~gankit.interfaces.context.StepContext`) and every piece of
state a checkpoint holds.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, NamedTuple, Sequence

from gankit.interfaces.component import Component

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import tensorflow as tf

    from gankit.interfaces.context import StepContext

SCORE_KINDS = ("probability", "logit")


class Loss(Component):
    """The adversarial objective: pure functions of the discriminator's scores.

    Scores arrive as float32 ``(batch, 1)``. ``expects`` says whether they must be
    probabilities (a sigmoid output) or logits / critic values (a linear output); recipe
    validation refuses a discriminator whose ``output_activation`` does not match.

    Both models minimise their loss. The discriminator's is lower when it scores real images
    higher and generated ones lower, the generator's when its images score higher (or both
    reversed, for a loss in which high scores mean "generated"); each is a mean over the
    batch, not a sum. ``gankit.testing.check_loss`` checks these conventions;
    docs/losses.md gives the built-in losses' formulas.
    """

    kind = "loss"
    generator_uses_real: ClassVar[bool] = False
    """True for a loss whose generator term compares with real images' scores (a
    relativistic loss): the strategy then scores a real batch in the generator update too
    and passes it as ``real_scores``."""

    @property
    def expects(self) -> str:
        """``"probability"`` or ``"logit"``."""
        return "logit"

    @abc.abstractmethod
    def discriminator_loss(self, real_scores: tf.Tensor, fake_scores: tf.Tensor,
                           ctx: StepContext) -> tf.Tensor:
        """The discriminator's loss (a float32 scalar, the mean over the batch).

        Args:
            real_scores, fake_scores: the discriminator's scores of real and generated images.
            ctx: this part's random stream (e.g. for label noise).
        """

    @abc.abstractmethod
    def generator_loss(self, fake_scores: tf.Tensor, ctx: StepContext,
                       real_scores: tf.Tensor | None = None) -> tf.Tensor:
        """The generator's loss (a float32 scalar) given the scores of its images (and,
        when ``generator_uses_real``, the scores of a real batch).

        The ``gan`` strategy passes ``real_scores=`` only when ``generator_uses_real`` is
        true; keep the ``real_scores=None`` argument in any case, so that every loop that
        follows this signature can call the loss.
        """


class RegularizerInputs(NamedTuple):
    """What a regularizer sees in a discriminator update (images as the discriminator saw
    them: after augmentation)."""

    discriminate: Callable[[tf.Tensor], tf.Tensor]
    """Images -> float32 scores ``(batch, 1)``, in training mode, labels already bound."""
    real_images: tf.Tensor
    fake_images: tf.Tensor
    real_scores: tf.Tensor
    fake_scores: tf.Tensor


class Regularizer(Component):
    """An extra term added to the discriminator's loss.

    Subclasses implement :meth:`penalty` and declare their weight among their params. A
    regularizer with an ``every`` parameter greater than 1 is lazy: the term is applied
    only on steps divisible by ``every``, multiplied by ``every`` (as in StyleGAN2), which
    :meth:`term` does for it.
    """

    kind = "regularizer"

    @property
    def every(self) -> int:
        """Apply the term every this many steps (1: every step)."""
        return int(self.config.get("every", 1) or 1)

    @abc.abstractmethod
    def penalty(self, inputs: RegularizerInputs, ctx: StepContext) -> tf.Tensor:
        """The weighted penalty (a float32 scalar) for one discriminator update."""

    def term(self, inputs: RegularizerInputs, ctx: StepContext) -> tf.Tensor:
        """The penalty as added to the loss on step ``ctx.step``, laziness included."""
        import tensorflow as tf

        if self.every == 1:
            return self.penalty(inputs, ctx)
        return tf.cond(tf.equal(ctx.step % self.every, 0),
                       lambda: float(self.every) * self.penalty(inputs, ctx),
                       lambda: tf.constant(0.0, tf.float32))


class Augmenter(Component):
    """A differentiable, seeded transformation of every image the discriminator sees.

    The strategy applies it in the same way to real and to generated images. It must be
    built from TensorFlow ops so gradients reach the generator through it.

    The base class is the identity: an ``Augmenter()`` leaves images as they are (the
    built-in ``none`` augmenter is this class registered under a name, and a session given
    no augmenter uses it). A subclass overrides :meth:`augment`.
    """

    kind = "augmenter"
    name = "none"

    @property
    def is_identity(self) -> bool:
        """True if it leaves images unchanged (the strategy then skips it): by default,
        whether :meth:`augment` is the base class's."""
        return type(self).augment is Augmenter.augment

    def augment(self, images: tf.Tensor, ctx: StepContext) -> tf.Tensor:
        """Return augmented images of the same shape and dtype (the base: ``images``)."""
        return images

    def state(self) -> Mapping[str, Any]:
        """Variables the augmenter keeps across steps (e.g. an adaptive probability), by
        name; created here and checkpointed with the run."""
        return {}


class Schedule(Component):
    """A learning-rate schedule, given as an optimizer's ``learning_rate``."""

    kind = "schedule"

    @abc.abstractmethod
    def create(self) -> keras.optimizers.schedules.LearningRateSchedule:
        """A new Keras schedule."""


class Optimizer(Component):
    """A Keras optimizer for one model, chosen in the recipe's ``optimizers`` section."""

    kind = "optimizer"

    @abc.abstractmethod
    def create(self) -> keras.optimizers.Optimizer:
        """A new Keras optimizer (not yet built)."""


class ModelUpdate(abc.ABC):
    """Gradient application for one model, owned by the core (see ``gankit.training``).

    A strategy computes a loss under a ``tf.GradientTape`` and hands both to
    :meth:`minimize`; the core takes the gradient with respect to exactly this model's
    trainable variables and applies it with the model's optimizer.
    """

    optimizer: keras.optimizers.Optimizer

    @abc.abstractmethod
    def minimize(self, tape: tf.GradientTape, loss: tf.Tensor) -> tf.Tensor:
        """Apply the gradient of ``loss``; return the gradient's global norm."""


class GANModels(NamedTuple):
    """What a strategy works with: the built models and the parts, handed over by the core."""

    generator: keras.Model
    discriminator: keras.Model
    loss: Loss
    regularizers: Sequence[Regularizer]
    augmenter: Augmenter
    updates: Mapping[str, ModelUpdate]
    """``"generator"`` and ``"discriminator"``."""
    latent_dim: int
    num_classes: int = 0
    discriminator_mixes_batch: bool = False
    """The discriminator normalizes over the batch (batch norm): score real and generated
    images in separate calls, as the generator's update scores generated images alone."""

    def generate(self, latents, labels=None, training: bool = True):
        """The generator's images for ``latents`` (and labels, if it is conditional)."""
        inputs = latents if labels is None or not self.num_classes else [latents, labels]
        return self.generator(inputs, training=training)

    def discriminate(self, images, labels=None, training: bool = True):
        """The discriminator's scores as float32 ``(batch, 1)`` (under mixed precision the
        model may compute in a lower precision; losses are always taken in float32)."""
        import tensorflow as tf

        inputs = images if labels is None or not self.num_classes else [images, labels]
        return tf.cast(self.discriminator(inputs, training=training), tf.float32)


class Batch(NamedTuple):
    """The real data of one step: ``batches_per_step`` batches of ``batch_size`` examples."""

    images: tf.Tensor
    """``(batches_per_step, batch_size, H, W, C)``."""
    labels: tf.Tensor | None = None
    """``(batches_per_step, batch_size)`` int32, or None."""


class StepOutputs(NamedTuple):
    """What one training step hands back to the trainer."""

    metrics: dict
    """Scalar tensors by name (``d_loss``, ``g_loss``, ...), logged every step."""
    fake_images: Any
    """Images the generator made in this step (the first is saved as a sample)."""


class Strategy(Component):
    """How the models are updated in one training step, from the parts it receives.

    A step is one generator update and ``batches_per_step`` discriminator updates, each on
    its own real batch. The core compiles :meth:`train_step` with ``tf.function``; it must
    draw all its randomness from ``ctx`` and keep all state in variables, so that a step can
    be replayed exactly after a resume.
    """

    kind = "strategy"

    @property
    def batches_per_step(self) -> int:
        """How many real batches one step consumes."""
        return 1

    def setup(self, models: GANModels) -> None:
        """Called once, after the models, optimizers and parts exist, before the first step."""

    @abc.abstractmethod
    def train_step(self, batch: Batch, models: GANModels, ctx: StepContext) -> StepOutputs:
        """Update the models once; return the step's metrics (at least one ``*loss``)."""


__all__ = ["Augmenter", "Batch", "GANModels", "Loss", "ModelUpdate", "Optimizer",
           "Regularizer", "RegularizerInputs", "SCORE_KINDS", "Schedule", "StepOutputs",
           "Strategy"]
