"""A StyleGAN-like generator: a mapping network, a learned constant and AdaIN per block,
conditional on a class through an Embedding when num_classes > 0."""

from gankit import Generator, Param
from gankit.errors import RecipeError


class StyledGenerator(Generator):
    """A StyleGAN-like generator: mapping MLP, learned 4x4 constant, AdaIN in every block.

    The latent (with a learned class embedding when ``num_classes`` > 0) goes through a
    mapping MLP to a style vector; the learned constant is upsampled block by block to the
    image size, each block a 3x3 convolution whose feature maps AdaIN scales and shifts by
    the style. Its layers ``LearnedConstant`` and ``AdaIN`` are the plugin's own, declared
    in its ``gankit_keras_objects`` hook so that a saved generator loads in any process.
    """

    name = "styled"
    params = {
        "latent_dim": Param(int, 16, min=1, doc="length of the latent vector"),
        "height": Param(int, 16, min=4, doc="image height: 4 times a power of two"),
        "width": Param(int, 16, min=4, doc="image width: equal to height"),
        "channels": Param(int, 1, min=1, doc="image channels"),
        "filters": Param(int, 32, min=1, doc="channels of every block"),
        "style_dim": Param(int, 32, min=1, doc="length of the style vector"),
        "num_classes": Param(int, 0, min=0, doc="classes to condition on (0: unconditional)"),
    }

    def __init__(self, **config):
        super().__init__(**config)
        size = self.config["height"]
        if self.config["width"] != size:
            raise RecipeError(f"expected width equal to height ({size}), got "
                              f"{self.config['width']}", path="generator.width")
        if size % 4 or (size // 4) & (size // 4 - 1):
            raise RecipeError(f"expected 4 times a power of two (4, 8, 16, 32, ...), got {size}",
                              path="generator.height")

    def build(self):
        import keras
        from keras import layers

        from gankit_example.layers import AdaIN, LearnedConstant

        c = self.config
        latents = keras.Input(shape=(c["latent_dim"],), name="latent")
        inputs, z = latents, latents
        if c["num_classes"]:
            labels = keras.Input(shape=(), dtype="int32", name="label")
            embedded = layers.Embedding(c["num_classes"], c["style_dim"], name="class_embedding")
            z = layers.Concatenate()([latents, embedded(labels)])
            inputs = [latents, labels]
        style = z
        for i in range(2):  # the mapping network
            style = layers.LeakyReLU(0.2)(layers.Dense(c["style_dim"], name=f"map_{i}")(style))
        x = LearnedConstant((4, 4, c["filters"]), name="constant")(latents)
        size = 4
        while True:
            x = layers.Conv2D(c["filters"], 3, padding="same")(x)
            x = layers.LeakyReLU(0.2)(AdaIN()([x, style]))
            if size == c["height"]:
                break
            x = layers.UpSampling2D(2)(x)
            size *= 2
        image = layers.Conv2D(c["channels"], 3, padding="same", activation="tanh")(x)
        return keras.Model(inputs, image, name="styled_generator")
