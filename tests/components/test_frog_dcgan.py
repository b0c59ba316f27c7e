"""The built-in frog DCGAN components, each built and exercised alone."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from gankit.errors import RecipeError
from gankit_dcgan.discriminator import FrogDCGANDiscriminator
from gankit_dcgan.generator import FrogDCGANGenerator
from gankit_dcgan.strategy import AlternatingStrategy

TINY_G = dict(latent_dim=8, height=24, width=24, base_filters=8, filters=8)
TINY_D = dict(height=24, width=24, filters=8)


def test_generator_is_the_articles_stack():
    model = FrogDCGANGenerator().build()
    assert model.count_params() == 6_264_579
    assert model.input_shape == (None, 32) and model.output_shape == (None, 32, 32, 3)
    kinds = [type(layer).__name__ for layer in model.layers[1:]]
    assert kinds == ["Dense", "LeakyReLU", "Reshape", "Conv2D", "LeakyReLU", "Conv2DTranspose",
                     "LeakyReLU", "Conv2D", "LeakyReLU", "Conv2D", "LeakyReLU", "Conv2D"]
    assert model.layers[-1].activation.__name__ == "tanh"
    assert model.layers[2].negative_slope == pytest.approx(0.3)  # Keras' default, as used


def test_discriminator_is_the_articles_stack():
    model = FrogDCGANDiscriminator().build()
    assert model.count_params() == 790_913
    assert model.output_shape == (None, 1)
    kinds = [type(layer).__name__ for layer in model.layers[1:]]
    assert kinds == ["Conv2D", "LeakyReLU"] * 4 + ["Flatten", "Dropout", "Dense"]
    assert model.layers[-2].rate == pytest.approx(0.4)


def test_sizes_are_parameters():
    gen = FrogDCGANGenerator(**TINY_G)
    images = gen.build()(np.zeros((2, 8), "float32"))
    assert images.shape == (2, 24, 24, 3) and gen.image_shape == (24, 24, 3)
    assert np.all(np.abs(images) <= 1.0)
    scores = FrogDCGANDiscriminator(**TINY_D).build()(images)
    assert scores.shape == (2, 1) and np.all((scores >= 0) & (scores <= 1))


def test_shape_parameters_are_checked():
    with pytest.raises(RecipeError, match="generator.height: expected an even number"):
        FrogDCGANGenerator(height=25)
    with pytest.raises(RecipeError, match="discriminator.width: expected at least 24"):
        FrogDCGANDiscriminator(width=20)


def test_config_round_trip():
    for component in (FrogDCGANGenerator(**TINY_G), FrogDCGANDiscriminator(**TINY_D),
                      AlternatingStrategy(label_noise=0.1)):
        again = type(component).from_config(component.get_config())
        assert again.get_config() == component.get_config()


def test_seeded_builds_are_identical():
    keras.utils.set_random_seed(5)
    a = FrogDCGANGenerator(**TINY_G).build().get_weights()
    keras.utils.set_random_seed(5)
    b = FrogDCGANGenerator(**TINY_G).build().get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def _setup(seed=0, **strategy_config):
    keras.utils.set_random_seed(seed)
    gen, disc = FrogDCGANGenerator(**TINY_G).build(), FrogDCGANDiscriminator(**TINY_D).build()
    strategy = AlternatingStrategy(**strategy_config)
    strategy.setup(gen, disc, 8)
    return strategy, gen, disc


def test_optimizers_are_the_articles_rmsprop():
    strategy, _, _ = _setup()
    d_opt, g_opt = strategy.optimizers["discriminator"], strategy.optimizers["generator"]
    assert isinstance(d_opt, keras.optimizers.RMSprop) and d_opt.clipvalue == 1.0
    assert float(d_opt.learning_rate) == pytest.approx(8e-4)
    assert float(g_opt.learning_rate) == pytest.approx(4e-4)
    schedule = d_opt._learning_rate
    assert float(schedule(1_000_000)) == pytest.approx(8e-4 / (1 + 1e-8 * 1_000_000))


def test_draw_inputs_is_a_pure_function_of_the_seed():
    strategy, _, _ = _setup()
    a = strategy.draw_inputs(tf.constant([1, 2], tf.int64), 3)
    b = strategy.draw_inputs(tf.constant([1, 2], tf.int64), 3)
    c = strategy.draw_inputs(tf.constant([1, 3], tf.int64), 3)
    assert a["d_latents"].shape == (3, 8) and a["label_noise"].shape == (6, 1)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["d_latents"], c["d_latents"])
    assert not np.array_equal(a["d_latents"], a["g_latents"])
    assert np.all((a["label_noise"] >= 0) & (a["label_noise"] < 1))


def test_generator_update_leaves_the_discriminator_alone():
    """Two steps that differ only in the generator's latents give the same discriminator."""
    real = tf.random.stateless_uniform((4, 24, 24, 3), [0, 0])
    results = []
    for g_shift in (0.0, 1.0):
        strategy, gen, disc = _setup(seed=1, label_noise=0.0)
        d_before = [w.copy() for w in disc.get_weights()]
        g_before = [w.copy() for w in gen.get_weights()]
        inputs = dict(strategy.draw_inputs(tf.constant([0, 0], tf.int64), 4))
        inputs["g_latents"] = inputs["g_latents"] + g_shift
        out = strategy.train_step(real, inputs)
        assert set(out.metrics) >= {"d_loss", "g_loss", "d_on_fake", "d_on_real"}
        assert out.fake_images.shape == (4, 24, 24, 3)
        assert not any(np.array_equal(a, b) for a, b in zip(d_before, disc.get_weights()))
        assert not any(np.array_equal(a, b) for a, b in zip(g_before, gen.get_weights()))
        results.append((disc.get_weights(), gen.get_weights()))
    (d0, g0), (d1, g1) = results
    assert all(np.array_equal(a, b) for a, b in zip(d0, d1))
    assert not all(np.array_equal(a, b) for a, b in zip(g0, g1))


def test_discriminator_loss_uses_fake_one_real_zero():
    keras.utils.set_random_seed(2)
    gen = FrogDCGANGenerator(**TINY_G).build()
    disc = FrogDCGANDiscriminator(**TINY_D, dropout=0.0).build()
    strategy = AlternatingStrategy(label_noise=0.0)
    strategy.setup(gen, disc, 8)
    real = tf.random.stateless_uniform((2, 24, 24, 3), [0, 5])
    inputs = strategy.draw_inputs(tf.constant([0, 1], tf.int64), 2)
    scores = disc(tf.concat([gen(inputs["d_latents"]), real], 0)).numpy()[:, 0].astype("float64")
    labels = np.array([1.0, 1.0, 0.0, 0.0])  # fakes first, then reals
    expected = -np.mean(labels * np.log(scores) + (1 - labels) * np.log(1 - scores))
    flipped = -np.mean((1 - labels) * np.log(scores) + labels * np.log(1 - scores))
    d_loss = float(strategy.train_step(real, inputs).metrics["d_loss"])
    assert d_loss == pytest.approx(expected, rel=1e-5)
    assert abs(d_loss - flipped) > 1e-4


def test_compiled_optimizer_updates_match_the_plain_ones():
    """`train.xla: auto` compiles each RMSprop update with XLA: same arithmetic, same weights."""
    real = tf.random.stateless_uniform((4, 24, 24, 3), [0, 9])
    weights = []
    for compiled in (False, True):
        strategy, gen, disc = _setup(seed=4)
        strategy.compile_updates = compiled
        step = tf.function(lambda r, i: strategy.train_step(r, i).metrics)
        for k in range(3):
            step(real, strategy.draw_inputs(tf.constant([0, k], tf.int64), 4))
        weights.append(gen.get_weights() + disc.get_weights()
                       + [v.numpy() for o in strategy.optimizers.values() for v in o.variables])
    for plain, fused in zip(*weights):
        np.testing.assert_allclose(plain, fused, rtol=1e-5, atol=1e-6)
