"""The frog DCGAN generator, layer for layer as in the article."""

from __future__ import annotations

from gankit import Generator, Param
from gankit.errors import RecipeError


class FrogDCGANGenerator(Generator):
    """Chollet's CIFAR-10 frog DCGAN generator: Dense, Conv2D, Conv2DTranspose x2 upsampling.

    latent -> Dense(base_filters*(H/2)*(W/2)) -> LeakyReLU -> Reshape(H/2, W/2, base_filters)
    -> Conv2D(filters, 5) -> LeakyReLU -> Conv2DTranspose(filters, 4, strides 2) -> LeakyReLU
    -> Conv2D(filters, 5) -> LeakyReLU -> Conv2D(filters, 5) -> LeakyReLU
    -> Conv2D(channels, 7, tanh). With the defaults: 6,264,579 parameters.
    """

    name = "frog_dcgan"
    params = {
        "latent_dim": Param(int, 32, min=1, doc="length of the latent vector"),
        "height": Param(int, 32, min=2, doc="image height (even: the model upsamples by 2)"),
        "width": Param(int, 32, min=2, doc="image width (even)"),
        "channels": Param(int, 3, min=1, doc="image channels"),
        "base_filters": Param(int, 128, min=1, doc="channels of the reshaped Dense output"),
        "filters": Param(int, 256, min=1, doc="channels of the convolution layers"),
        "leaky_relu_slope": Param(float, 0.3, min=0.0, max=1.0,
                                  doc="negative slope of LeakyReLU (0.3: the Keras default "
                                      "the article uses)"),
    }

    def __init__(self, **config):
        super().__init__(**config)
        for key in ("height", "width"):
            if self.config[key] % 2:
                raise RecipeError(f"expected an even number (the generator upsamples by 2), got "
                                  f"{self.config[key]}", path=f"generator.{key}")

    def build(self):
        import keras
        from keras import layers

        c = self.config
        slope = c["leaky_relu_slope"]
        h, w = c["height"] // 2, c["width"] // 2
        z = keras.Input(shape=(c["latent_dim"],), name="latent")
        x = layers.Dense(c["base_filters"] * h * w)(z)
        x = layers.LeakyReLU(slope)(x)
        x = layers.Reshape((h, w, c["base_filters"]))(x)
        x = layers.Conv2D(c["filters"], 5, padding="same")(x)
        x = layers.LeakyReLU(slope)(x)
        x = layers.Conv2DTranspose(c["filters"], 4, strides=2, padding="same")(x)
        x = layers.LeakyReLU(slope)(x)
        x = layers.Conv2D(c["filters"], 5, padding="same")(x)
        x = layers.LeakyReLU(slope)(x)
        x = layers.Conv2D(c["filters"], 5, padding="same")(x)
        x = layers.LeakyReLU(slope)(x)
        if keras.config.dtype_policy().name == "float32":  # the article's stack, exactly
            x = layers.Conv2D(c["channels"], 7, activation="tanh", padding="same")(x)
        else:  # mixed precision: the image in float32 (Keras' advice for a model's output)
            x = layers.Conv2D(c["channels"], 7, padding="same")(x)
            x = layers.Activation("tanh", dtype="float32")(x)
        return keras.Model(z, x, name="frog_dcgan_generator")
