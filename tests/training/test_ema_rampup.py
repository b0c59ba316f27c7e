"""``ema.rampup``: the average's half-life capped at a share of the steps averaged so far
(StyleGAN2-ADA's ema_rampup), exact against the formula, and recipes without it unchanged."""

import math

import numpy as np
import pytest

from gankit.errors import RecipeError
from gankit.training.ema import GeneratorEMA, half_life, ramped_decay


def test_the_half_life_grows_with_the_steps_then_stays_at_decays():
    assert half_life(0.995) == pytest.approx(138.28, abs=0.01)
    assert ramped_decay(0.995, 0.05, 100) == pytest.approx(0.5 ** (1 / 5.0))
    assert ramped_decay(0.995, 0.05, 2765) == pytest.approx(0.5 ** (1 / 138.25))
    assert ramped_decay(0.995, 0.05, 10 ** 6) == pytest.approx(0.995)
    assert ramped_decay(0.995, 0.05, 1) < 1e-5  # the first average is nearly a copy


def test_the_average_follows_the_formula_step_by_step():
    import keras

    def model():
        inputs = keras.Input((2,))
        return keras.Model(inputs, keras.layers.Dense(1, use_bias=False)(inputs))

    generator, shadow = model(), model()
    ema = GeneratorEMA(generator, shadow, 0.9, start=2, rampup=0.5)
    expected = np.array(generator.get_weights()[0], dtype=np.float64)
    for step in range(20):   # the ramp ends at the 14th average (0.5 * 14 > 6.58)
        weights = np.full((2, 1), float(step + 1), dtype=np.float32)
        generator.set_weights([weights])
        ema.update(np.int64(step))
        d = 0.0 if step < 2 else ramped_decay(0.9, 0.5, step - 2 + 1)
        expected = d * expected + (1 - d) * weights
        np.testing.assert_allclose(shadow.get_weights()[0], expected, rtol=1e-6)
    assert ramped_decay(0.9, 0.5, 6) == pytest.approx(0.5 ** (1 / 3))  # half-life 3 steps
    assert ramped_decay(0.9, 0.5, 14) == pytest.approx(0.9)  # capped: half-life 6.58
    assert half_life(0.9) == pytest.approx(math.log(0.5) / math.log(0.9))


def _recipe(tmp_path, ema):
    from gankit.plugin.manager import default_plugins
    from gankit.recipe.validation import validate

    raw = {"generator": {"type": "dcgan", "latent_dim": 8, "base_filters": 4},
           "discriminator": {"type": "dcgan", "base_filters": 4},
           "dataset": {"type": "image_folder", "path": str(tmp_path)},
           "loss": "non_saturating", "ema": ema, "train": {"steps": 2, "batch_size": 2}}
    return validate(raw, default_plugins().registry)


def test_a_recipe_takes_it_and_one_without_it_is_as_before(tmp_path):
    with_rampup = _recipe(tmp_path, {"decay": 0.995, "rampup": 0.05})
    assert with_rampup.ema.rampup == 0.05
    assert with_rampup.to_dict()["ema"]["rampup"] == 0.05
    without = _recipe(tmp_path, {"decay": 0.995})
    assert "rampup" not in without.to_dict()["ema"]  # the digests of earlier runs hold
    assert without.digest() != with_rampup.digest()
    for bad in (0.0, -1.0, 2.0, "fast"):
        with pytest.raises(RecipeError, match="ema.rampup"):
            _recipe(tmp_path, {"decay": 0.995, "rampup": bad})
