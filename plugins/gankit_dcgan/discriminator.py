"""The frog DCGAN discriminator, layer for layer as in the article."""

from __future__ import annotations

from gankit import Discriminator, Param
from gankit.errors import RecipeError


class FrogDCGANDiscriminator(Discriminator):
    """Chollet's CIFAR-10 frog DCGAN discriminator: four convolutions, dropout, sigmoid.

    image -> Conv2D(filters, 3) -> LeakyReLU -> [Conv2D(filters, 4, strides 2) -> LeakyReLU] x3
    -> Flatten -> Dropout(dropout) -> Dense(1, sigmoid). With the defaults: 790,913 parameters.
    Its output is the probability that an image is *fake* under the article's labels
    (fake = 1, real = 0).
    """

    name = "frog_dcgan"
    output_activation = "sigmoid"
    params = {
        "height": Param(int, 32, min=1, doc="image height"),
        "width": Param(int, 32, min=1, doc="image width"),
        "channels": Param(int, 3, min=1, doc="image channels"),
        "filters": Param(int, 128, min=1, doc="channels of every convolution"),
        "dropout": Param(float, 0.4, min=0.0, max=0.99,
                         doc="dropout rate before the final Dense layer"),
        "leaky_relu_slope": Param(float, 0.3, min=0.0, max=1.0,
                                  doc="negative slope of LeakyReLU (0.3: the Keras default "
                                      "the article uses)"),
    }

    def __init__(self, **config):
        super().__init__(**config)
        smallest = next(n for n in range(1, 1000) if _final_size(n) >= 1)
        for key in ("height", "width"):
            if _final_size(self.config[key]) < 1:
                raise RecipeError(f"expected at least {smallest} (four unpadded convolutions "
                                  f"shrink the image), got {self.config[key]}",
                                  path=f"discriminator.{key}")

    def build(self):
        import keras
        from keras import layers

        c = self.config
        slope = c["leaky_relu_slope"]
        image = keras.Input(shape=self.image_shape, name="image")
        x = layers.Conv2D(c["filters"], 3)(image)
        x = layers.LeakyReLU(slope)(x)
        for _ in range(3):
            x = layers.Conv2D(c["filters"], 4, strides=2)(x)
            x = layers.LeakyReLU(slope)(x)
        x = layers.Flatten()(x)
        x = layers.Dropout(c["dropout"])(x)
        if keras.config.dtype_policy().name == "float32":  # the article's stack, exactly
            x = layers.Dense(1, activation="sigmoid")(x)
        else:  # mixed precision: the probability in float32 (Keras' advice for an output)
            x = layers.Dense(1)(x)
            x = layers.Activation("sigmoid", dtype="float32")(x)
        return keras.Model(image, x, name="frog_dcgan_discriminator")


def _final_size(size: int) -> int:
    """Height (or width) left after the four unpadded convolutions."""
    size -= 2  # 3x3, stride 1
    for _ in range(3):
        size = (size - 4) // 2 + 1  # 4x4, stride 2
    return size
