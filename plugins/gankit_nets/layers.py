"""Layer building shared by the architectures (standard Keras layers only: nothing to register)."""

from __future__ import annotations

from gankit.params import Param


def spectral_norm_if(enabled: bool, layer):
    """Return ``layer`` wrapped in ``keras.layers.SpectralNormalization`` if ``enabled``.

    The wrapper is named after the layer (``down1`` -> ``down1_sn``) so that weight paths
    hold no global layer counter. It computes in float32 whatever the dtype policy (the
    wrapped layer keeps the policy's): Keras' wrapper writes the normalized kernel back
    into the float32 variable on every training call, and under a mixed policy that value
    would be computed, and rounded, in 16 bits.
    """
    if not enabled:
        return layer
    import keras

    return keras.layers.SpectralNormalization(layer, name=f"{layer.name}_sn", dtype="float32")


BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5
"""Batch norm as in the DCGAN and SNGAN reference code (PyTorch's defaults), not Keras'
0.99 / 1e-3."""


def batch_norm(x, name: str):
    """Batch normalization named ``<name>_bn``."""
    from keras import layers

    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
                                     name=f"{name}_bn")(x)


def bn_relu(x, name: str):
    """Batch normalization then ReLU, named ``<name>_bn`` and ``<name>_relu``."""
    from keras import layers

    return layers.ReLU(name=f"{name}_relu")(batch_norm(x, name))


def skip_excitation(low, high, name: str, sn=lambda layer: layer, initializer=None):
    """FastGAN's skip-layer excitation (Liu et al. 2021): ``high * gate(low)``.

    ``low`` is pooled to 4x4 (``<name>_pool``, when larger), a 4x4 valid convolution makes
    one vector (``<name>_squeeze``), LeakyReLU 0.1, then a 1x1 convolution to ``high``'s
    channels (``<name>_excite``) and a sigmoid give each channel of ``high`` a gain in
    (0, 1) (``<name>_gate``), applied by ``<name>_scale``. ``initializer`` makes a new kernel
    initializer per call (None: Keras' default).
    """
    from keras import layers

    init = initializer or (lambda: "glorot_uniform")
    channels = high.shape[-1]
    if low.shape[1] > 4:
        low = layers.AveragePooling2D(low.shape[1] // 4, name=f"{name}_pool")(low)
    g = sn(layers.Conv2D(channels, 4, padding="valid", kernel_initializer=init(),
                         name=f"{name}_squeeze"))(low)
    g = layers.LeakyReLU(0.1, name=f"{name}_lrelu")(g)
    g = sn(layers.Conv2D(channels, 1, kernel_initializer=init(), name=f"{name}_excite"))(g)
    g = layers.Activation("sigmoid", name=f"{name}_gate")(g)
    return layers.Multiply(name=f"{name}_scale")([high, g])


# --- class conditioning -------------------------------------------------------------------
#
# Built from standard Keras layers only, so that a saved conditional model loads with
# keras.models.load_model in any process, without importing gankit first. A label becomes a
# one-hot vector (CategoryEncoding); a Dense without bias on it is a class embedding (row y
# of its kernel), with a dense gradient and, unlike keras.layers.Embedding, room for
# keras.layers.SpectralNormalization (which casts its output to its input's dtype: an int
# label would truncate the embedding).

MAX_CLASSES = 10_000


def num_classes_param(conditioned: str) -> Param:
    """The ``num_classes`` parameter shared by the conditional architectures."""
    return Param(int, 0, min=0, max=MAX_CLASSES,
                 doc=f"classes to condition on: 0 is unconditional; N > 0 adds an int32 label "
                     f"input (0 .. N-1) and {conditioned}")


def label_input():
    """The ``(None,)`` int32 label input, named ``label``."""
    import keras

    return keras.Input(shape=(), dtype="int32", name="label")


def one_hot(labels, num_classes: int):
    """``(batch, num_classes)`` one-hot rows of int labels, in the compute dtype (a label
    outside ``0 .. num_classes - 1`` gives a row of zeros)."""
    from keras import layers

    return layers.CategoryEncoding(num_classes, output_mode="one_hot",
                                   name="label_one_hot")(labels)


def class_embedding(onehot, dim: int, name: str, initializer, sn=lambda layer: layer):
    """A learned ``(batch, dim)`` vector per class: ``Dense(dim, no bias)`` of the one-hot
    labels, its kernel ``(num_classes, dim)`` the embedding table (``sn`` may wrap it)."""
    from keras import layers

    return sn(layers.Dense(dim, use_bias=False, kernel_initializer=initializer, name=name))(onehot)


def conditional_batch_norm(x, onehot, name: str):
    """Conditional batch normalization (Dumoulin et al. 2017; de Vries et al. 2017), as in
    the conditional SNGAN (Miyato & Koyama 2018): batch normalization without its own scale
    and offset, then a per-class gain (initialised to 1) and bias (initialised to 0).

    Layers: ``<name>_bn`` (BatchNormalization, center and scale off, momentum 0.9, epsilon
    1e-5), ``<name>_gain`` and ``<name>_bias`` (class embeddings of the channel count,
    reshaped to broadcast over height and width), ``<name>_scale`` (Multiply) and
    ``<name>_shift`` (Add).
    """
    from keras import layers

    channels = x.shape[-1]
    spatial = (1,) * (len(x.shape) - 2)
    h = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, center=False,
                                  scale=False, name=f"{name}_bn")(x)
    gain = class_embedding(onehot, channels, f"{name}_gain", "ones")
    bias = class_embedding(onehot, channels, f"{name}_bias", "zeros")
    gain = layers.Reshape((*spatial, channels), name=f"{name}_gain_map")(gain)
    bias = layers.Reshape((*spatial, channels), name=f"{name}_bias_map")(bias)
    return layers.Add(name=f"{name}_shift")([layers.Multiply(name=f"{name}_scale")([h, gain]),
                                             bias])


def conditional_bn_relu(x, onehot, name: str):
    """Conditional batch normalization then ReLU; plain :func:`bn_relu` when ``onehot`` is
    None (an unconditional model)."""
    from keras import layers

    if onehot is None:
        return bn_relu(x, name)
    return layers.ReLU(name=f"{name}_relu")(conditional_batch_norm(x, onehot, name))


def projection(score, features, onehot, initializer, sn=lambda layer: layer):
    """The projection discriminator's output (Miyato & Koyama 2018):
    ``score + sum(embed(y) * features)``, where ``embed`` is a class embedding of the
    features' length (``class_embedding``, wrapped by ``sn`` like the discriminator's
    other layers) and the sum is a ``Dot`` (``projection``); the total is ``score_total``.
    """
    from keras import layers

    embedded = class_embedding(onehot, features.shape[-1], "class_embedding", initializer, sn)
    inner = layers.Dot(axes=1, name="projection")([embedded, features])
    return layers.Add(name="score_total")([score, inner])


def score_head(image, features, num_classes: int, initializer, sn, name: str):
    """A discriminator's output and model: ``Dense(1)`` of its ``features`` (``score``), plus,
    with ``num_classes``, the projection of a class embedding on them (:func:`projection`,
    the model then takes ``[image, label]``). ``initializer`` makes a new initializer each
    call."""
    import keras
    from keras import layers

    x = sn(layers.Dense(1, kernel_initializer=initializer(), name="score"))(features)
    if not num_classes:
        return keras.Model(image, x, name=name)
    label = label_input()
    x = projection(x, features, one_hot(label, num_classes), initializer(), sn)
    return keras.Model([image, label], x, name=name)
