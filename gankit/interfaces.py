"""What each kind of component must provide.

A component is a class registered under a kind and a name. Its constructor takes the
parameters it declares in ``params`` (checked and completed with defaults), so any component
can be built and unit-tested alone::

    gen = FrogDCGANGenerator(latent_dim=16)
    model = gen.build()

This module imports neither TensorFlow nor Keras: recipe validation and ``gankit plugins``
stay fast. Components import Keras inside the methods that build models.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, NamedTuple

from gankit.params import Param, check_params

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import numpy as np
    import tensorflow as tf


class Component(abc.ABC):
    """Base of every registered component.

    Class attributes:
        kind: the registry kind (``"generator"``, ``"dataset"``, ...), set by the interface.
        params: the declared parameters (name -> :class:`~gankit.params.Param`).
        removed_params: legacy parameter names mapped to what to use instead; a recipe that
            uses one gets an error carrying that text.
    """

    kind: ClassVar[str]
    params: ClassVar[Mapping[str, Param]] = {}
    removed_params: ClassVar[Mapping[str, str]] = {}

    def __init__(self, **config: Any) -> None:
        self.config: dict[str, Any] = check_params(
            self.params, config, type(self).__name__, removed=self.removed_params)

    def get_config(self) -> dict[str, Any]:
        """The complete parameters, such that ``type(self).from_config(cfg)`` rebuilds it."""
        return dict(self.config)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Component":
        """Build the component from the output of :meth:`get_config`."""
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({args})"


class Generator(Component):
    """Maps latent vectors ``(batch, latent_dim)`` to images ``(batch, *image_shape)``."""

    kind = "generator"

    @property
    @abc.abstractmethod
    def latent_dim(self) -> int:
        """Length of the latent vector the model takes."""

    @property
    @abc.abstractmethod
    def image_shape(self) -> tuple[int, int, int]:
        """``(height, width, channels)`` of the images the model makes."""

    @abc.abstractmethod
    def build(self) -> "keras.Model":
        """Return a new, freshly initialised Keras model.

        Its input is ``(None, latent_dim)`` float32 and its output ``(None, *image_shape)``.
        Use only serialisable layers so the saved ``.keras`` file loads anywhere.
        """


class Discriminator(Component):
    """Maps images ``(batch, *image_shape)`` to one score per image ``(batch, 1)``.

    Class attributes:
        output_activation: ``"sigmoid"`` if the score is a probability of "fake" or "real"
            (as in the frog DCGAN), ``"linear"`` if it is a logit or critic value.
    """

    kind = "discriminator"
    output_activation: ClassVar[str] = "sigmoid"

    @property
    @abc.abstractmethod
    def image_shape(self) -> tuple[int, int, int]:
        """``(height, width, channels)`` of the images the model accepts."""

    @abc.abstractmethod
    def build(self) -> "keras.Model":
        """Return a new, freshly initialised Keras model ``(None, *image_shape) -> (None, 1)``."""


class Dataset(Component):
    """A set of training images held in memory.

    ``load()`` returns float32 images scaled into ``value_range``, in the dataset's own
    order; the trainer decides batching and shuffling, so that the batch at any step can be
    recomputed exactly on resume.
    """

    kind = "dataset"

    @property
    @abc.abstractmethod
    def image_shape(self) -> tuple[int, int, int]:
        """``(height, width, channels)`` of every image."""

    @property
    @abc.abstractmethod
    def value_range(self) -> tuple[float, float]:
        """The range pixel values are scaled into (e.g. ``(0.0, 1.0)``)."""

    @abc.abstractmethod
    def load(self) -> "np.ndarray":
        """Return all images as a float32 array ``(n, height, width, channels)``.

        Raises:
            gankit.errors.DatasetError: when the data is missing, unreadable or malformed.
        """


class StepOutputs(NamedTuple):
    """What one training step hands back to the trainer."""

    metrics: dict
    """Scalar tensors by name (``d_loss``, ``g_loss``, ...), logged every step."""
    fake_images: Any
    """The images the generator made for this step's discriminator update."""


class Strategy(Component):
    """How generator and discriminator are trained together: optimizers and one step.

    The trainer calls :meth:`setup` once (inside any ``tf.distribute`` scope), then for each
    step :meth:`draw_inputs` and :meth:`train_step`, both of which it may compile with
    ``tf.function``. A strategy keeps no global state: all randomness of a step is drawn in
    :meth:`draw_inputs` from the seed it is given, so a step can be replayed exactly.
    """

    kind = "strategy"

    compile_updates: bool = False
    """Set by the trainer from ``train.xla``: ``True`` asks the strategy to compile each
    optimizer update with XLA on its own (same arithmetic, fewer passes over the weights).
    A strategy that cannot do this may ignore it."""

    @abc.abstractmethod
    def setup(self, generator: "keras.Model", discriminator: "keras.Model",
              latent_dim: int) -> None:
        """Keep the models and create the optimizers (and any other training state)."""

    @property
    @abc.abstractmethod
    def optimizers(self) -> Mapping[str, "keras.optimizers.Optimizer"]:
        """The optimizers by role, for checkpoints (e.g. ``{"discriminator": ..., ...}``)."""

    @abc.abstractmethod
    def draw_inputs(self, seed: "tf.Tensor", batch_size: int) -> Mapping[str, "tf.Tensor"]:
        """Draw every random input of one step (latents, label noise) from ``seed``.

        Args:
            seed: an int32/int64 tensor of shape ``(2,)`` for ``tf.random.stateless_*``.
            batch_size: the number of real images in the step.
        """

    @abc.abstractmethod
    def train_step(self, real_images: "tf.Tensor",
                   inputs: Mapping[str, "tf.Tensor"]) -> StepOutputs:
        """Update both models once on a batch of real images; return losses and fakes."""
