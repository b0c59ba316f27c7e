"""The built-in strategy against a transcription of the article's train_on_batch loop.

Both start from the same weights and see the same latents, label noise and real batches
(dropout off, so the discriminator is deterministic); after a few steps every weight of
both models must agree to float tolerance.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from gankit_dcgan.discriminator import FrogDCGANDiscriminator
from gankit_dcgan.generator import FrogDCGANGenerator
from gankit_dcgan.strategy import AlternatingStrategy

LATENT, SIZE, BATCH, STEPS = 8, 24, 3, 4


def _models(seed):
    keras.utils.set_random_seed(seed)
    gen = FrogDCGANGenerator(latent_dim=LATENT, height=SIZE, width=SIZE, base_filters=8,
                             filters=8).build()
    disc = FrogDCGANDiscriminator(height=SIZE, width=SIZE, filters=8, dropout=0.0).build()
    return gen, disc


def _article_optimizer(lr):
    # The article's RMSprop(lr=lr, clipvalue=1.0, decay=1e-8) in Keras 3 spelling.
    schedule = keras.optimizers.schedules.InverseTimeDecay(lr, decay_steps=1, decay_rate=1e-8)
    return keras.optimizers.RMSprop(learning_rate=schedule, clipvalue=1.0)


def _transcription(generator, discriminator):
    """The article's models, compiled as it does, with the freeze made Keras-3-correct."""
    discriminator.compile(optimizer=_article_optimizer(8e-4), loss="binary_crossentropy",
                          jit_compile=False)
    discriminator.trainable = False
    gan_input = keras.Input(shape=(LATENT,))
    gan = keras.Model(gan_input, discriminator(generator(gan_input)))
    gan.compile(optimizer=_article_optimizer(4e-4), loss="binary_crossentropy",
                jit_compile=False)

    def step(real_images, inputs):
        generated = generator.predict(inputs["d_latents"].numpy(), verbose=0)
        combined = np.concatenate([generated, real_images])
        labels = np.concatenate([np.ones((BATCH, 1)), np.zeros((BATCH, 1))])
        labels += 0.05 * inputs["label_noise"].numpy()
        # Keras 3 reads `trainable` when the model runs, so it is switched around each
        # update instead of once at compile time as in Keras 2.
        discriminator.trainable = True
        d_loss = discriminator.train_on_batch(combined, labels)
        discriminator.trainable = False
        misleading_targets = np.zeros((BATCH, 1))
        a_loss = gan.train_on_batch(inputs["g_latents"].numpy(), misleading_targets)
        return d_loss, a_loss

    return step


def test_alternating_strategy_matches_the_article_loop():
    real = np.random.default_rng(0).uniform(0, 1, (BATCH * STEPS, SIZE, SIZE, 3)).astype("float32")
    gen_a, disc_a = _models(1)
    gen_b, disc_b = _models(2)
    gen_b.set_weights(gen_a.get_weights())
    disc_b.set_weights(disc_a.get_weights())
    initial = [w.copy() for w in gen_a.get_weights() + disc_a.get_weights()]

    strategy = AlternatingStrategy()
    strategy.setup(gen_a, disc_a, LATENT)
    article_step = _transcription(gen_b, disc_b)

    for step in range(STEPS):
        inputs = strategy.draw_inputs(tf.constant([7, step], tf.int64), BATCH)
        batch = real[step * BATCH:(step + 1) * BATCH]
        ours = strategy.train_step(tf.constant(batch), inputs)
        d_loss, a_loss = article_step(batch, inputs)
        np.testing.assert_allclose(float(ours.metrics["d_loss"]), d_loss, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(float(ours.metrics["g_loss"]), a_loss, rtol=1e-5, atol=1e-6)

    for name, a, b in [("generator", gen_a, gen_b), ("discriminator", disc_a, disc_b)]:
        for wa, wb in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=1e-6, err_msg=name)
    # Both models really trained: no weight tensor of either is left as it started.
    final = gen_a.get_weights() + disc_a.get_weights()
    assert all(not np.array_equal(w0, w1) for w0, w1 in zip(initial, final))
    for role, opt in strategy.optimizers.items():
        assert int(opt.iterations.numpy()) == STEPS, role


def test_the_articles_freeze_ported_naively_stops_the_discriminator():
    """Why the strategy differentiates explicitly: Keras 3 reads `trainable` at call time."""
    gen, disc = _models(3)
    disc.compile(optimizer=_article_optimizer(8e-4), loss="binary_crossentropy")
    disc.trainable = False  # the article's freeze, set once
    gan_input = keras.Input(shape=(LATENT,))
    gan = keras.Model(gan_input, disc(gen(gan_input)))
    gan.compile(optimizer=_article_optimizer(4e-4), loss="binary_crossentropy")
    before = [w.copy() for w in disc.get_weights()]
    images = np.random.default_rng(1).uniform(0, 1, (4, SIZE, SIZE, 3)).astype("float32")
    with pytest.warns(UserWarning):
        disc.train_on_batch(images, np.array([[1.0], [1.0], [0.0], [0.0]]))
    assert all(np.array_equal(b, a) for b, a in zip(before, disc.get_weights()))
