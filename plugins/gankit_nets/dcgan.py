"""DCGAN (Radford, Metz and Chintala, 2016) for 32x32 and 64x64 images."""

from __future__ import annotations

import functools

from gankit import Discriminator, Generator, Param
from gankit.errors import RecipeError
from gankit_nets.layers import (
    BN_EPSILON,
    batch_norm,
    bn_relu,
    class_embedding,
    label_input,
    num_classes_param,
    one_hot,
    score_head,
    skip_excitation,
    spectral_norm_if,
)

SIZES = (32, 64)

# PyTorch's and the reference TensorFlow DCGAN's batch-norm settings (PyTorch's momentum 0.1
# is Keras's 0.9); Keras's own defaults (0.99, 1e-3) lag far behind a GAN's moving statistics.


def _shape_params() -> dict[str, Param]:
    return {
        "height": Param(int, 32, choices=SIZES, doc="image height (32 or 64; equal to width)"),
        "width": Param(int, 32, choices=SIZES, doc="image width (32 or 64; equal to height)"),
        "channels": Param(int, 3, min=1, doc="image channels"),
    }


def _check_square(config: dict, kind: str) -> None:
    if config["width"] != config["height"]:
        raise RecipeError(f"expected the same as height ({config['height']}): the DCGAN makes "
                          f"square images, got {config['width']}", path=f"{kind}.width")


def _steps(size: int) -> int:
    """The number of stride-2 layers between 4x4 and ``size`` (3 for 32, 4 for 64)."""
    return size.bit_length() - 3


def _dcgan_init():
    # Radford et al.: "All weights were initialized from a zero-centered Normal distribution
    # with standard deviation 0.02". A new instance per layer, so layers draw different values.
    import keras

    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


class DCGANGenerator(Generator):
    """The DCGAN generator: a projection to 4x4, then stride-2 transposed convolutions.

    latent -> Dense(4*4*8F) -> Reshape(4, 4, 8F) -> BN -> ReLU
    -> [Conv2DTranspose(C, 4, strides 2, 'same') -> BN -> ReLU], C = 4F, 2F (, F for 64x64)
    -> Conv2DTranspose(channels, 4, strides 2, 'same', tanh)

    With ``upsample: nearest`` (or ``bilinear``) each Conv2DTranspose is a resize to twice
    the size then a Conv2D(C, 3, 'same'): the transposed convolution's uneven overlap makes
    the checkerboard pattern of early DCGAN images (Odena, Dumoulin and Olah, "Deconvolution
    and Checkerboard Artifacts", 2016), which a resize does not.

    where F is ``base_filters``: for 64x64 this is the PyTorch DCGAN example (512, 256, 128,
    64 channels; Radford et al.'s figure 1 is F = 128); 32x32 drops the 32x32 stage. Layers
    followed by batch norm have no bias (batch norm cancels it). Every kernel is initialised from
    N(0, 0.02), as in the paper; batch norm starts at gamma 1, beta 0 with momentum 0.9 and
    epsilon 1e-5. ``spectral_norm`` wraps the Dense and every transposed convolution in
    ``keras.layers.SpectralNormalization`` (batch norm stays, as in SAGAN's generator).

    With the defaults (32x32x3, latent 128, F 64): 3,679,747 parameters (3,677,955
    trainable); at 64x64: 3,808,003 (3,806,083 trainable, the PyTorch example's 3,576,704 with
    a 128- instead of 100-long latent and a bias on the output layer).

    ``skip_excitation`` adds FastGAN's skip-layer excitation (Liu et al. 2021, "Towards
    Faster and Stabilized GAN Training for High-fidelity Few-shot Image Synthesis"): the
    output of a stage gates, channel by channel, the output of the stage at four times its
    resolution (4x4 -> 16x16; at 64x64 also 8x8 -> 32x32), through
    :func:`gankit_nets.layers.skip_excitation` (layers ``sle16_*``, ``sle32_*``). It gives
    the early, coarse stages a short path to the late ones; with the defaults at 32x32 it
    adds 1,065,216 parameters (F 24: 149,856; at 64x64, 1,331,584), nearly all in the 4x4
    squeeze convolution, which runs once per image at 1x1: little computation.

    Class-conditional (``num_classes`` N > 0): the model takes ``[latent, label]``; the
    label's one-hot vector (``label_one_hot``) selects a learned class embedding as long as
    the latent (``class_embedding``, initialised N(0, 1) like the latent), which is
    concatenated with the latent (``latent_and_class``) before the projection, as in the
    conditional GAN of Mirza and Osindero (2014). The rest is unchanged; with defaults and
    N = 10 the model has 1,049,856 more parameters (the 1,280 of the embedding and the
    1,048,576 the projection takes from it).
    """

    name = "dcgan"
    params = {
        "latent_dim": Param(int, 128, min=1, doc="length of the latent vector"),
        **_shape_params(),
        "base_filters": Param(int, 64, min=1,
                              doc="the base channel count F: the 4x4 stage has 8F channels, "
                                  "each upsampling halves them"),
        "spectral_norm": Param(bool, False,
                               doc="wrap the Dense and every transposed convolution in "
                                   "spectral normalization"),
        "num_classes": num_classes_param("concatenates a learned class embedding to the "
                                         "latent"),
        "upsample": Param(str, "transpose", choices=("transpose", "nearest", "bilinear"),
                          doc="how each stage doubles the size: a 4x4 stride-2 transposed "
                              "convolution (the paper), or a nearest or bilinear resize then "
                              "a 3x3 convolution (no checkerboard pattern; 2.25x the "
                              "multiply-adds)"),
        "skip_excitation": Param(bool, False,
                                 doc="FastGAN's skip-layer excitation: the 4x4 stage gates "
                                     "the channels of the 16x16 stage (and the 8x8 stage "
                                     "those of the 32x32 one at 64x64)"),
    }

    def __init__(self, **config):
        super().__init__(**config)
        _check_square(self.config, self.kind)

    def build(self):
        import keras
        from keras import layers

        c = self.config
        sn = functools.partial(spectral_norm_if, c["spectral_norm"])
        filters = 8 * c["base_filters"]
        stages = {}  # resolution -> the stage's output, for the skip-layer excitation

        def up(x, channels, name, **kwargs):
            if c["upsample"] == "transpose":
                return sn(layers.Conv2DTranspose(channels, 4, strides=2, padding="same",
                                                 kernel_initializer=_dcgan_init(), name=name,
                                                 **kwargs))(x)
            x = layers.UpSampling2D(2, interpolation=c["upsample"], name=f"{name}_resize")(x)
            return sn(layers.Conv2D(channels, 3, padding="same", kernel_initializer=_dcgan_init(),
                                    name=name, **kwargs))(x)

        z = keras.Input(shape=(c["latent_dim"],), name="latent")
        inputs, x = z, z
        if c["num_classes"]:
            label = label_input()
            embedded = class_embedding(one_hot(label, c["num_classes"]), c["latent_dim"],
                                       "class_embedding",
                                       keras.initializers.RandomNormal(mean=0.0, stddev=1.0))
            inputs, x = [z, label], layers.Concatenate(name="latent_and_class")([z, embedded])
        x = sn(layers.Dense(4 * 4 * filters, use_bias=False, kernel_initializer=_dcgan_init(),
                            name="project"))(x)
        x = layers.Reshape((4, 4, filters), name="to_4x4")(x)
        x = stages[4] = bn_relu(x, "project")
        for i in range(1, _steps(c["height"])):
            filters //= 2
            x = bn_relu(up(x, filters, f"up{i}", use_bias=False), f"up{i}")
            size = 4 << i
            if c["skip_excitation"] and size // 4 in stages:
                x = skip_excitation(stages[size // 4], x, f"sle{size}", sn, _dcgan_init)
            stages[size] = x
        x = up(x, c["channels"], "to_image")
        # The image in float32 under a mixed precision policy, as Keras advises for a
        # model's output (under float32 the same tanh as an activation of "to_image").
        x = layers.Activation("tanh", dtype="float32", name="to_image_tanh")(x)
        return keras.Model(inputs, x, name="dcgan_generator")


class DCGANDiscriminator(Discriminator):
    """The DCGAN discriminator: stride-2 convolutions down to 4x4, then one linear score.

    image -> Conv2D(F, 4, strides 2, 'same') -> LeakyReLU
    -> [Conv2D(C, 4, strides 2, 'same') -> BN -> LeakyReLU], C = 2F, 4F (, 8F for 64x64)
    -> Flatten -> Dense(1)

    where F is ``base_filters``, mirroring :class:`DCGANGenerator`. The score is a logit
    (``output_activation = "linear"``): pair it with a loss that takes logits. With
    ``spectral_norm`` there is no batch norm and every convolution and the Dense are wrapped
    in ``keras.layers.SpectralNormalization`` (the SNGAN recipe); without it, convolutions
    followed by batch norm have no bias. Every kernel is initialised from N(0, 0.02), as in
    the paper; batch norm uses momentum 0.9 and epsilon 1e-5.

    With the defaults (32x32x3, F 64): 664,129 parameters (663,361 trainable); at 64x64:
    2,767,425 (2,765,633 trainable).

    ``multiscale`` feeds the image, average-pooled to each later convolution's input size
    (16x16 and 8x8 at 32x32; layers ``image_at<i>``), into that convolution beside the
    features (``down<i>_with_image``), as MSG-GAN's discriminator (Karnewar and Wang 2020)
    sees every scale: the coarse shape reaches the deep layers directly. It adds
    ``3 * 16 * C`` weights per such convolution of C outputs (at 32x32, F 64: 18,432;
    F 24: 6,912).

    Class-conditional (``num_classes`` N > 0): a projection discriminator (Miyato and
    Koyama 2018). The model takes ``[image, label]`` and its score is
    ``Dense(1)(h) + sum(embed(label) * h)`` over the flattened features ``h``, where
    ``embed`` is a learned class embedding (``class_embedding``: a Dense without bias on the
    label's one-hot vector, N(0, 0.02) like the other kernels, spectrally normalized with the
    rest when ``spectral_norm`` is on); layers ``projection`` (the sum) and ``score_total``.
    With defaults and N = 10, 40,960 more trainable parameters (4,096 per class; with
    ``spectral_norm``, 4,096 more power-iteration values).
    """

    name = "dcgan"
    output_activation = "linear"
    params = {
        **_shape_params(),
        "base_filters": Param(int, 64, min=1,
                              doc="the base channel count F: the first convolution has F "
                                  "channels, each later one doubles them"),
        "spectral_norm": Param(bool, False,
                               doc="wrap every convolution and the Dense in spectral "
                                   "normalization"),
        "norm": Param(str, "auto", choices=("auto", "batch", "layer", "none"),
                      doc="normalization after each convolution but the first: auto is batch "
                          "norm without spectral norm and none with it; layer norm (per "
                          "image) suits a gradient penalty, which batch norm breaks"),
        "leaky_relu_slope": Param(float, 0.2, min=0.0, max=1.0,
                                  doc="negative slope of LeakyReLU (0.2 in the paper)"),
        "num_classes": num_classes_param("makes it a projection discriminator"),
        "multiscale": Param(bool, False,
                            doc="also show every later convolution the image itself, "
                                "average-pooled to that convolution's input size (as "
                                "MSG-GAN's discriminator sees each scale)"),
    }

    def __init__(self, **config):
        super().__init__(**config)
        _check_square(self.config, self.kind)

    @property
    def normalization(self) -> str:
        """The normalization in effect: ``batch``, ``layer`` or ``none``."""
        norm = self.config["norm"]
        if norm == "auto":
            return "none" if self.config["spectral_norm"] else "batch"
        return norm

    @property
    def mixes_batch(self) -> bool:
        return self.normalization == "batch"

    def build(self):
        import keras
        from keras import layers

        c = self.config
        use_sn = c["spectral_norm"]
        sn = functools.partial(spectral_norm_if, use_sn)
        filters = c["base_filters"]
        norm = self.normalization

        image = keras.Input(shape=self.image_shape, name="image")
        x = image
        for i in range(1, _steps(c["height"]) + 1):
            normalized = i > 1 and norm != "none"
            if c["multiscale"] and i > 1:
                pooled = layers.AveragePooling2D(2 ** (i - 1), name=f"image_at{i}")(image)
                x = layers.Concatenate(name=f"down{i}_with_image")([x, pooled])
            x = sn(layers.Conv2D(filters, 4, strides=2, padding="same", use_bias=not normalized,
                                 kernel_initializer=_dcgan_init(), name=f"down{i}"))(x)
            if normalized and norm == "batch":
                x = batch_norm(x, f"down{i}")
            elif normalized:
                x = layers.LayerNormalization(axis=[1, 2, 3], epsilon=BN_EPSILON,
                                              name=f"down{i}_ln")(x)
            x = layers.LeakyReLU(c["leaky_relu_slope"], name=f"down{i}_lrelu")(x)
            filters *= 2
        h = layers.Flatten(name="flatten")(x)
        return score_head(image, h, c["num_classes"], _dcgan_init, sn, "dcgan_discriminator")
