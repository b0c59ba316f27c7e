"""The SNGAN ResNet for 32x32 images (Miyato et al. 2018, appendix B.4; as in Mimicry)."""

from __future__ import annotations

import functools

from gankit import Discriminator, Generator, Param
from gankit_nets.layers import (
    conditional_bn_relu,
    label_input,
    num_classes_param,
    one_hot,
    score_head,
    spectral_norm_if,
)

SIZE = 32

# PyTorch's batch-norm settings, as in the SNGAN and Mimicry implementations (PyTorch's
# momentum 0.1 is Keras's 0.9).


def _shape_params() -> dict[str, Param]:
    return {
        "height": Param(int, SIZE, choices=(SIZE,), doc="image height (the model is for 32x32)"),
        "width": Param(int, SIZE, choices=(SIZE,), doc="image width (the model is for 32x32)"),
        "channels": Param(int, 3, min=1, doc="image channels"),
    }


def _residual_init():
    # Glorot uniform with gain sqrt(2) on the residual path, plain Glorot uniform elsewhere,
    # as in the SNGAN and Mimicry code. A new instance per layer, so layers differ.
    import keras

    return keras.initializers.VarianceScaling(2.0, mode="fan_avg", distribution="uniform")


def _glorot():
    import keras

    return keras.initializers.GlorotUniform()


class ResNetGenerator(Generator):
    """The SNGAN CIFAR ResNet generator: three residual up-blocks from 4x4 to 32x32.

    latent -> Dense(4*4*F) -> Reshape(4, 4, F) -> 3 x up-block(F) -> BN -> ReLU
    -> Conv2D(channels, 3, tanh)

    up-block: BN -> ReLU -> UpSampling2D(nearest) -> Conv2D(F, 3) -> BN -> ReLU -> Conv2D(F, 3),
    plus the shortcut UpSampling2D -> Conv2D(F, 1).

    F is ``filters`` (256 in the paper). Kernels on the residual path are initialised Glorot
    uniform with gain sqrt(2), the others plain Glorot uniform, biases zero (as in the SNGAN
    code). The convolution right before batch norm has no bias (batch norm cancels it), so
    with the defaults the model has 768 fewer parameters than the 4,276,739 trainable ones of
    the reference: 4,279,555 parameters, 4,275,971 trainable. ``spectral_norm`` wraps the
    Dense and every convolution in ``keras.layers.SpectralNormalization``.

    Class-conditional (``num_classes`` N > 0), as the conditional SNGAN of Miyato and Koyama
    (2018): the model takes ``[latent, label]`` and every batch normalization (the two of
    each up-block and the last one) is a conditional batch normalization: no scale and
    offset of its own, but a per-class gain (initialised to 1) and bias (initialised to 0),
    learned class embeddings of the channel count (see
    :func:`gankit_nets.layers.conditional_batch_norm`; left out of spectral normalization).
    With defaults and N = 10: 7 x 2 x 10 x 256 = 35,840 more parameters, less the 3,584
    scales and offsets of the plain batch normalizations.
    """

    name = "resnet"
    params = {
        "latent_dim": Param(int, 128, min=1, doc="length of the latent vector"),
        **_shape_params(),
        "filters": Param(int, 256, min=1, doc="channels of every residual block"),
        "spectral_norm": Param(bool, False,
                               doc="wrap the Dense and every convolution in spectral "
                                   "normalization"),
        "num_classes": num_classes_param("makes every batch normalization conditional (a "
                                         "gain and bias per class)"),
    }

    def build(self):
        import keras
        from keras import layers

        c = self.config
        sn = functools.partial(spectral_norm_if, c["spectral_norm"])
        filters = c["filters"]
        inputs = z = keras.Input(shape=(c["latent_dim"],), name="latent")
        onehot = None
        if c["num_classes"]:
            label = label_input()
            inputs, onehot = [z, label], one_hot(label, c["num_classes"])

        def bn_relu(x, name):
            return conditional_bn_relu(x, onehot, name)

        def up_block(x, name):
            h = bn_relu(x, f"{name}_1")
            h = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_up")(h)
            h = sn(layers.Conv2D(filters, 3, padding="same", use_bias=False,
                                 kernel_initializer=_residual_init(), name=f"{name}_conv1"))(h)
            h = bn_relu(h, f"{name}_2")
            h = sn(layers.Conv2D(filters, 3, padding="same", kernel_initializer=_residual_init(),
                                 name=f"{name}_conv2"))(h)
            s = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_shortcut_up")(x)
            s = sn(layers.Conv2D(filters, 1, kernel_initializer=_glorot(),
                                 name=f"{name}_shortcut_conv"))(s)
            return layers.Add(name=f"{name}_add")([h, s])

        x = sn(layers.Dense(4 * 4 * filters, kernel_initializer=_glorot(), name="project"))(z)
        x = layers.Reshape((4, 4, filters), name="to_4x4")(x)
        for i in range(1, 4):
            x = up_block(x, f"block{i}")
        x = bn_relu(x, "out")
        x = sn(layers.Conv2D(c["channels"], 3, padding="same", kernel_initializer=_glorot(),
                             name="to_image"))(x)
        # The image in float32 under a mixed precision policy, as Keras advises for a
        # model's output (under float32 the same tanh as an activation of "to_image").
        x = layers.Activation("tanh", dtype="float32", name="to_image_tanh")(x)
        return keras.Model(inputs, x, name="resnet_generator")


class ResNetDiscriminator(Discriminator):
    """The SNGAN CIFAR ResNet discriminator: four residual blocks, a global sum, a logit.

    image -> optimized block -> down block -> 2 x plain block -> ReLU -> global sum -> Dense(1)

    - optimized block: Conv2D(F, 3) -> ReLU -> Conv2D(F, 3) -> AveragePooling2D(2), plus the
      shortcut AveragePooling2D(2) -> Conv2D(F, 1).
    - down block: ReLU -> Conv2D(F, 3) -> ReLU -> Conv2D(F, 3) -> AveragePooling2D(2), plus the
      shortcut Conv2D(F, 1) -> AveragePooling2D(2).
    - plain block: ReLU -> Conv2D(F, 3) -> ReLU -> Conv2D(F, 3), plus the identity.

    F is ``filters`` (128 in the paper). The global sum over the 8x8 map is
    GlobalAveragePooling2D times 64 (``Rescaling``): exact, since 64 is a power of two, and
    made of standard layers only. The score is a logit (``output_activation = "linear"``).
    ``spectral_norm`` (on by default, as in SNGAN) wraps every convolution and the Dense in
    ``keras.layers.SpectralNormalization``. Initialisation as in :class:`ResNetGenerator`.

    With the defaults: 1,053,825 trainable parameters, as the reference, plus 1,281
    non-trainable power-iteration vectors of the spectral normalization: 1,055,106 in all.

    Class-conditional (``num_classes`` N > 0): a projection discriminator (Miyato and
    Koyama 2018), as in their conditional SNGAN. The model takes ``[image, label]`` and its
    score is ``Dense(1)(h) + sum(embed(label) * h)`` over the globally summed features ``h``,
    where ``embed`` is a learned class embedding (``class_embedding``: a Dense without bias
    on the label's one-hot vector, Glorot uniform, spectrally normalized with the rest when
    ``spectral_norm`` is on); layers ``projection`` (the sum) and ``score_total``. With
    defaults and N = 10: 1,280 more trainable parameters (F per class), and 128
    power-iteration values.
    """

    name = "resnet"
    output_activation = "linear"
    params = {
        **_shape_params(),
        "filters": Param(int, 128, min=1, doc="channels of every residual block"),
        "spectral_norm": Param(bool, True,
                               doc="wrap every convolution and the Dense in spectral "
                                   "normalization"),
        "num_classes": num_classes_param("makes it a projection discriminator"),
    }

    def build(self):
        import keras
        from keras import layers

        c = self.config
        sn = functools.partial(spectral_norm_if, c["spectral_norm"])
        filters = c["filters"]

        def conv(x, size, name, init=_residual_init):
            return sn(layers.Conv2D(filters, size, padding="same", kernel_initializer=init(),
                                    name=name))(x)

        def pool(x, name):
            return layers.AveragePooling2D(2, name=name)(x)

        def block(x, name, down):
            h = layers.ReLU(name=f"{name}_relu1")(x)
            h = conv(h, 3, f"{name}_conv1")
            h = layers.ReLU(name=f"{name}_relu2")(h)
            h = conv(h, 3, f"{name}_conv2")
            s = x
            if down:
                h = pool(h, f"{name}_pool")
                s = pool(conv(x, 1, f"{name}_shortcut_conv", _glorot), f"{name}_shortcut_pool")
            return layers.Add(name=f"{name}_add")([h, s])

        image = keras.Input(shape=self.image_shape, name="image")
        h = conv(image, 3, "block1_conv1")
        h = layers.ReLU(name="block1_relu")(h)
        h = pool(conv(h, 3, "block1_conv2"), "block1_pool")
        s = conv(pool(image, "block1_shortcut_pool"), 1, "block1_shortcut_conv", _glorot)
        x = layers.Add(name="block1_add")([h, s])
        x = block(x, "block2", down=True)
        x = block(x, "block3", down=False)
        x = block(x, "block4", down=False)
        x = layers.ReLU(name="out_relu")(x)
        cells = (c["height"] // 4) * (c["width"] // 4)
        x = layers.GlobalAveragePooling2D(name="mean")(x)
        h = layers.Rescaling(float(cells), name="sum")(x)
        return score_head(image, h, c["num_classes"], _glorot, sn, "resnet_discriminator")
