"""A small convolutional critic with a linear score."""

from gankit import Discriminator, Param


class ConvCritic(Discriminator):
    """A small convolutional critic with an unbounded (linear) score.

    image -> [Conv2D(3, strides 2) -> LeakyReLU] x2 -> Flatten -> Dense(1), no activation.
    The score is unbounded (``output_activation = "linear"``), as the least-squares, hinge
    and Wasserstein losses expect. No batch normalisation: each image is scored on its own,
    as a gradient penalty needs.
    """

    name = "conv_critic"
    output_activation = "linear"
    params = {
        "height": Param(int, 16, min=1, doc="image height"),
        "width": Param(int, 16, min=1, doc="image width"),
        "channels": Param(int, 1, min=1, doc="image channels"),
        "filters": Param(int, 32, min=1, doc="channels of the first convolution (doubled next)"),
    }

    @property
    def image_shape(self):
        return (self.config["height"], self.config["width"], self.config["channels"])

    def build(self):
        import keras
        from keras import layers

        c = self.config
        image = keras.Input(shape=self.image_shape, name="image")
        x = image
        for filters in (c["filters"], 2 * c["filters"]):
            x = layers.Conv2D(filters, 3, strides=2, padding="same")(x)
            x = layers.LeakyReLU(0.2)(x)
        score = layers.Dense(1)(layers.Flatten()(x))
        return keras.Model(image, score, name="conv_critic")
