"""Layer building shared by the architectures (standard Keras layers only: nothing to register)."""

from __future__ import annotations


def spectral_norm_if(enabled: bool, layer):
    """Return ``layer`` wrapped in ``keras.layers.SpectralNormalization`` if ``enabled``.

    The wrapper is named after the layer (``down1`` -> ``down1_sn``) so that weight paths
    hold no global layer counter.
    """
    if not enabled:
        return layer
    import keras

    return keras.layers.SpectralNormalization(layer, name=f"{layer.name}_sn")


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
