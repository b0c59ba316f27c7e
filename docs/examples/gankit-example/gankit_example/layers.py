"""The example's own Keras layers. This module imports Keras at its top, so gankit imports
it only when a model is built (StyledGenerator.build) or loaded (the gankit_keras_objects
hook in __init__.py)."""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="gankit_example")
class LearnedConstant(layers.Layer):
    """A learned (height, width, channels) tensor, repeated for every example of the batch
    of its input (StyleGAN's learned constant)."""

    def __init__(self, shape, **kwargs):
        super().__init__(**kwargs)
        self.shape = tuple(shape)

    def build(self, input_shape):
        self.value = self.add_weight(shape=self.shape, initializer="random_normal",
                                     name="value")

    def call(self, x):
        batch = ops.shape(x)[0]
        return ops.broadcast_to(ops.cast(self.value, self.compute_dtype)[None],
                                (batch, *self.shape))

    def get_config(self):
        return {**super().get_config(), "shape": list(self.shape)}


@keras.saving.register_keras_serializable(package="gankit_example")
class AdaIN(layers.Layer):
    """Adaptive instance normalisation: each feature map normalised per image, then scaled
    by ``1 + A(style)`` and shifted by ``B(style)``, two learned affine maps of the style.

    (A zero-initialised A and B would make the style's gradient zero at the start, and the
    mapping network would never train: gankit's ``gradients`` check says so.)"""

    def __init__(self, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        feature_shape, style_shape = input_shape
        channels = feature_shape[-1]
        self.to_scale = layers.Dense(channels, name="to_scale")
        self.to_bias = layers.Dense(channels, name="to_bias")
        self.to_scale.build(style_shape)
        self.to_bias.build(style_shape)

    def call(self, inputs):
        x, style = inputs
        mean = ops.mean(x, axis=(1, 2), keepdims=True)
        variance = ops.var(x, axis=(1, 2), keepdims=True)
        x = (x - mean) / ops.sqrt(variance + self.epsilon)
        scale = 1.0 + self.to_scale(style)[:, None, None, :]
        return x * scale + self.to_bias(style)[:, None, None, :]

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}
