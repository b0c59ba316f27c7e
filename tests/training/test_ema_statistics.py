"""``ema.statistics``: the EMA copies the generator's batch-norm statistics (the default) or
averages them like the weights."""

from __future__ import annotations

import numpy as np
import pytest


def _model():
    import keras

    inputs = keras.Input((3,))
    x = keras.layers.Dense(4)(inputs)
    x = keras.layers.BatchNormalization()(x)
    return keras.Model(inputs, x)


@pytest.mark.parametrize("statistics", ["copy", "average"])
def test_batch_norm_statistics_are_copied_or_averaged(statistics):
    import tensorflow as tf

    from gankit.training.ema import GeneratorEMA

    model, shadow = _model(), _model()
    ema = GeneratorEMA(model, shadow, decay=0.75, start=0, statistics=statistics)
    old = {v.path: np.array(v.numpy()) for v in shadow.variables}
    for v in model.variables:  # move every weight and statistic of the generator
        v.assign(v.numpy() + 1.0)
    ema.update(tf.constant(5, tf.int64))
    for target, source in zip(shadow.variables, model.variables):
        new = np.asarray(source.numpy())
        averaged = 0.75 * old[target.path] + 0.25 * new
        expected = averaged if (source.trainable or statistics == "average") else new
        np.testing.assert_allclose(target.numpy(), expected, rtol=1e-6)
    assert any(not v.trainable for v in model.variables)  # the moving mean and variance


def test_an_unknown_choice_is_refused():
    from gankit.training.ema import GeneratorEMA

    with pytest.raises(ValueError, match="'copy' or 'average'"):
        GeneratorEMA(_model(), _model(), decay=0.5, statistics="mean")
