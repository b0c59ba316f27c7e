"""The frog recipe's training (the ``gan`` strategy with the ``bce`` loss and RMSprop, as
recipes/frog_dcgan.yaml configures them) against a transcription of the article's
train_on_batch loop.

Both start from the same weights and see the same latents, label noise and real batches
(dropout off, so the discriminator is deterministic); after a few steps every weight of
both models must agree to float tolerance. The session is built from the frog recipe's own
loss, optimizers and strategy sections, so the test follows the recipe if it changes.
"""

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from gankit.interfaces import Batch
from gankit.interfaces.context import step_context
from gankit.recipe.validation import load_recipe
from gankit.training.session import Parts, SessionConfig, TrainingSession
from gankit_dcgan.discriminator import FrogDCGANDiscriminator
from gankit_dcgan.generator import FrogDCGANGenerator

FROG = Path(__file__).parents[2] / "recipes" / "frog_dcgan.yaml"

# Two steps: both updates of each, with RMSprop's running average already carried from the
# first step into the second. Further steps compare float noise more than the recipe: on an
# AMD EPYC (Zen 4, AVX-512) with oneDNN and xla off, the third step turns a rounding
# difference of 2e-6 into 3.5e-3 of the generator's update (RMSprop divides tiny gradients
# by their own size), while on the other CPUs measured 4 steps agree to 1e-6.
LATENT, SIZE, BATCH, STEPS = 8, 24, 3, 2


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


def _frog_session(xla):
    """A session with the frog recipe's loss, optimizers and strategy, on small frog models."""
    recipe = load_recipe(FROG)
    parts = Parts(generator=FrogDCGANGenerator(latent_dim=LATENT, height=SIZE, width=SIZE,
                                               base_filters=8, filters=8),
                  discriminator=FrogDCGANDiscriminator(height=SIZE, width=SIZE, filters=8,
                                                       dropout=0.0),
                  loss=recipe.create("loss"), strategy=recipe.create("strategy"),
                  optimizers=recipe.create("optimizer"))
    return TrainingSession(parts, SessionConfig(seed=7, batch_size=BATCH, xla=xla)).build()


def _article_inputs(step):
    """The latents and label noise the session draws at ``step`` (the same named streams)."""
    ctx = step_context(7, tf.constant(step, tf.int64))
    return {"d_latents": ctx.normal("d_latents/0", (BATCH, LATENT)),
            "label_noise": ctx.child("loss/d0").uniform("label_noise", (2 * BATCH, 1)),
            "g_latents": ctx.normal("g_latents", (BATCH, LATENT))}


@pytest.mark.parametrize("xla", ["auto", "off"])
def test_the_frog_recipe_matches_the_article_loop(xla):
    real = np.random.default_rng(0).uniform(0, 1, (BATCH * STEPS, SIZE, SIZE, 3)).astype("float32")
    session = _frog_session(xla)
    gen_a, disc_a = session.generator, session.discriminator
    gen_b, disc_b = _models(2)
    gen_b.set_weights(gen_a.get_weights())
    disc_b.set_weights(disc_a.get_weights())
    initial = [w.copy() for w in gen_a.get_weights() + disc_a.get_weights()]
    step_fn = session.step_function()
    article_step = _transcription(gen_b, disc_b)

    for step in range(STEPS):
        batch = real[step * BATCH:(step + 1) * BATCH]
        metrics, _ = step_fn(tf.constant(step, tf.int64), Batch(tf.constant(batch[None])))
        d_loss, a_loss = article_step(batch, _article_inputs(step))
        np.testing.assert_allclose(float(metrics["d_loss"]), d_loss, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(float(metrics["g_loss"]), a_loss, rtol=1e-5, atol=1e-6)

    for name, a, b in [("generator", gen_a, gen_b), ("discriminator", disc_a, disc_b)]:
        for wa, wb in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=1e-6, err_msg=name)
    # Both models really trained: no weight tensor of either is left as it started.
    final = gen_a.get_weights() + disc_a.get_weights()
    assert all(not np.array_equal(w0, w1) for w0, w1 in zip(initial, final))
    for role, update in session.updates.items():
        assert int(update.optimizer.iterations.numpy()) == STEPS, role


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
