"""The models: generators and discriminators, each a factory of one Keras model."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, ClassVar

from gankit.interfaces.component import Component

if TYPE_CHECKING:  # pragma: no cover
    import keras


class _ImageModel(Component):
    """What generators and discriminators share: the image shape and the classes."""

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(height, width, channels)`` of the images the model makes or accepts (by
        default its ``height``, ``width`` and ``channels`` parameters)."""
        c = self.config
        return (int(c["height"]), int(c["width"]), int(c["channels"]))

    @property
    def num_classes(self) -> int:
        """How many classes the model is conditioned on (its ``num_classes`` parameter);
        0 for an unconditional model."""
        return int(self.config.get("num_classes", 0) or 0)


class Generator(_ImageModel):
    """Maps latent vectors ``(batch, latent_dim)`` to images ``(batch, *image_shape)``.

    Its outputs lie in :attr:`value_range` (``(-1.0, 1.0)`` unless it says otherwise). A
    class-conditional generator (``num_classes > 0``) builds a model with two inputs,
    ``[latents, labels]``, where labels are int32 ``(batch,)`` class indices.
    """

    kind = "generator"

    @property
    def latent_dim(self) -> int:
        """Length of the latent vector the model takes (by default its ``latent_dim``
        parameter; override for a component that declares it otherwise)."""
        return int(self.config["latent_dim"])

    @property
    def value_range(self) -> tuple[float, float]:
        """``(low, high)``: the range every output value lies in, which the training data
        must be scaled into as well. By default ``(-1.0, 1.0)``, the range of a final
        ``tanh``, or the component's ``value_range`` parameter (``[low, high]``) if it
        declares one; override for a generator that ends otherwise (``(0.0, 1.0)`` for a
        final sigmoid)."""
        declared = self.config.get("value_range")
        if declared is None:
            return (-1.0, 1.0)
        low, high = declared
        return (float(low), float(high))

    @abc.abstractmethod
    def build(self) -> keras.Model:
        """Return a new, freshly initialised Keras model.

        Its input is ``(None, latent_dim)`` float32 (and, if conditional, ``(None,)`` int32
        labels) and its output ``(None, *image_shape)``, inside :attr:`value_range`. Build it
        under the Keras dtype policy in force (mixed precision sets it); use only serialisable
        layers, and declare a custom one in the plugin's ``gankit_keras_objects`` hook, so
        that the saved ``.keras`` file loads in any process.
        """


class Discriminator(_ImageModel):
    """Maps images ``(batch, *image_shape)`` to one score per image ``(batch, 1)``.

    Class attributes:
        output_activation: ``"sigmoid"`` if the score is a probability (as in the frog
            DCGAN), ``"linear"`` if it is a logit or critic value. A loss declares which it
            expects, and recipe validation refuses a pair that does not match.

    A class-conditional discriminator (``num_classes > 0``) takes ``[images, labels]``.
    """

    kind = "discriminator"
    output_activation: ClassVar[str] = "sigmoid"

    @property
    def mixes_batch(self) -> bool:
        """True if one image's score depends on the other images of the batch (batch
        normalization); a per-image gradient penalty is then not well defined."""
        return False

    @abc.abstractmethod
    def build(self) -> keras.Model:
        """Return a new, freshly initialised Keras model ``(None, *image_shape) -> (None, 1)``."""

