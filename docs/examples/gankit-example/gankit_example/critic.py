"""A small convolutional critic with a linear score."""

from gankit import Discriminator, Param


class ConvCritic(Discriminator):
    """A small convolutional critic with an unbounded (linear) score.

    image -> [Conv2D(3, strides 2) -> LeakyReLU] x2 -> Flatten -> Dense(1), no activation.
    The score is unbounded (``output_activation = "linear"``), as the least-squares, hinge
    and Wasserstein losses expect. No batch normalisation: each image is scored on its own,
    as a gradient penalty needs. With ``num_classes`` > 0 it is a projection discriminator
    (Miyato & Koyama 2018): the score adds the dot product of the features with a learned
    embedding of the class.
    """

    name = "conv_critic"
    output_activation = "linear"
    params = {
        "height": Param(int, 16, min=1, doc="image height"),
        "width": Param(int, 16, min=1, doc="image width"),
        "channels": Param(int, 1, min=1, doc="image channels"),
        "filters": Param(int, 32, min=1, doc="channels of the first convolution (doubled next)"),
        "num_classes": Param(int, 0, min=0, doc="classes to condition on (0: unconditional)"),
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
        features = layers.Flatten()(x)
        score = layers.Dense(1)(features)
        if not c["num_classes"]:
            return keras.Model(image, score, name="conv_critic")
        label = keras.Input(shape=(), dtype="int32", name="label")
        embedded = layers.Embedding(c["num_classes"], features.shape[-1],
                                    name="class_embedding")(label)
        projection = layers.Dot(axes=1)([features, embedded])
        return keras.Model([image, label], layers.Add()([score, projection]), name="conv_critic")
