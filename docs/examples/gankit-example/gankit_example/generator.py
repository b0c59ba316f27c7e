"""A generator that upsamples with UpSampling2D + Conv2D instead of transposed convolutions."""

from gankit import Generator, Param
from gankit.errors import RecipeError


class UpsamplingGenerator(Generator):
    """Upsampling generator: Dense, then twice UpSampling2D and a 3x3 convolution; tanh.

    latent -> Dense -> (H/4, W/4, filters)
    -> [UpSampling2D(2) -> Conv2D(3) -> BatchNormalization -> LeakyReLU] x2
    -> Conv2D(channels, 3, tanh). Upsampling then convolving avoids the checkerboard
    artefacts of strided transposed convolutions; without the batch normalisation the
    critic wins at once on the shapes dataset and the generator collapses to black.
    """

    name = "upsampling"
    params = {
        "latent_dim": Param(int, 16, min=1, doc="length of the latent vector"),
        "height": Param(int, 16, min=4, doc="image height, a multiple of 4"),
        "width": Param(int, 16, min=4, doc="image width, a multiple of 4"),
        "channels": Param(int, 1, min=1, doc="image channels"),
        "filters": Param(int, 32, min=1, doc="channels of the hidden convolutions"),
    }

    def __init__(self, **config):
        super().__init__(**config)  # checks the values against `params`, fills defaults
        for key in ("height", "width"):
            if self.config[key] % 4:
                raise RecipeError(f"expected a multiple of 4 (the model upsamples twice by 2), "
                                  f"got {self.config[key]}", path=f"generator.{key}")

    @property
    def latent_dim(self):
        return self.config["latent_dim"]

    @property
    def image_shape(self):
        return (self.config["height"], self.config["width"], self.config["channels"])

    def build(self):
        import keras
        from keras import layers

        c = self.config
        h, w = c["height"] // 4, c["width"] // 4
        latent = keras.Input(shape=(c["latent_dim"],), name="latent")
        x = layers.Dense(h * w * c["filters"])(latent)
        x = layers.LeakyReLU(0.2)(x)
        x = layers.Reshape((h, w, c["filters"]))(x)
        for _ in range(2):
            x = layers.UpSampling2D(2)(x)
            # No bias: batch normalisation subtracts the mean right after, which would cancel it.
            x = layers.Conv2D(c["filters"], 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.LeakyReLU(0.2)(x)
        image = layers.Conv2D(c["channels"], 3, padding="same", activation="tanh")(x)
        return keras.Model(latent, image, name="upsampling_generator")
