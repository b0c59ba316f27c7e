"""Class-conditional models through the ``gan`` strategy: labels reach both models, the
loss, the penalties (taken with respect to the image only), DiffAugment and the EMA work
unchanged."""

import numpy as np
import pytest
import tensorflow as tf

from gankit import create
from gankit.interfaces import Batch
from gankit.interfaces.context import step_context
from gankit.training.session import Parts, SessionConfig, TrainingSession
from gankit_nets.dcgan import DCGANDiscriminator, DCGANGenerator

CLASSES, LATENT = 3, 4


def session(*, regularizers=(), augmenter="none", ema=None, spectral_norm=True, seed=0):
    opt = {"type": "Adam", "learning_rate": 1e-3, "beta_1": 0.0}
    parts = Parts(
        generator=DCGANGenerator(latent_dim=LATENT, base_filters=2, num_classes=CLASSES),
        discriminator=DCGANDiscriminator(base_filters=2, spectral_norm=spectral_norm,
                                         norm="none", num_classes=CLASSES),
        loss=create("loss", "hinge"), strategy=create("strategy", "gan"),
        optimizers={"generator": create("optimizer", opt),
                    "discriminator": create("optimizer", opt)},
        regularizers=[create("regularizer", r) for r in regularizers],
        augmenter=create("augmenter", augmenter), ema_decay=ema)
    return TrainingSession(parts, SessionConfig(seed=seed, batch_size=4, xla="off")).build()


def batch(seed=0):
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (1, 4, 32, 32, 3)).astype(np.float32)
    return Batch(tf.constant(images), tf.constant([[0, 2, 1, 2]], dtype=tf.int32))


def values(model, name):
    return np.array(model.get_layer(name).kernel.numpy())


def test_two_steps_with_hinge_diffaugment_r1_gradient_penalty_and_ema():
    run = session(regularizers=[{"type": "r1", "gamma": 1.0},
                                {"type": "gradient_penalty", "weight": 1.0}],
                  augmenter={"type": "diffaugment"}, ema=0.5)
    before = {"g": values(run.generator, "class_embedding"),
              "d": run.discriminator.get_layer("class_embedding_sn").layer.kernel.numpy()}
    step = run.step_function()
    for k in range(2):
        metrics, first_image = step(tf.constant(k, tf.int64), batch(k))
    metrics = {name: float(value) for name, value in metrics.items()}
    assert {"d_loss", "g_loss", "d_r1", "d_gradient_penalty"} <= set(metrics)
    assert all(np.isfinite(v) for v in metrics.values()), metrics
    assert metrics["d_r1"] > 0 and metrics["d_gradient_penalty"] > 0
    # Both models' class embeddings were trained ...
    assert not np.array_equal(values(run.generator, "class_embedding"), before["g"])
    d_after = run.discriminator.get_layer("class_embedding_sn").layer.kernel.numpy()
    assert not np.array_equal(d_after, before["d"])
    # ... and the average follows the generator's, labels and all.
    ema = values(run.ema.shadow, "class_embedding")
    assert not np.array_equal(ema, before["g"])
    assert not np.array_equal(ema, values(run.generator, "class_embedding"))
    sample = run.sampler()
    z = tf.constant(np.repeat(np.random.default_rng(1).standard_normal((1, LATENT)), 3, axis=0),
                    tf.float32)
    images = sample(z, tf.constant([0, 1, 2], tf.int32)).numpy()
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.float32
    assert not np.array_equal(images[0], images[1])


def test_the_discriminator_update_scores_each_image_with_its_own_label():
    """The step's R1 penalty is gamma / 2 times the mean squared gradient of D(x, y) with
    respect to the real images x only, each scored with its own label y."""
    run = session(regularizers=[{"type": "r1", "gamma": 2.0}], spectral_norm=False)
    real = batch(3)
    x, y = real.images[0], real.labels[0]

    def r1(labels):
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(run.discriminator([x, labels], training=True))
        grad = tape.gradient(total, x)
        return float(tf.reduce_mean(tf.reduce_sum(tf.square(grad), axis=[1, 2, 3])))

    expected, shuffled = r1(y), r1(tf.roll(y, 1, axis=0))
    assert expected != pytest.approx(shuffled, rel=1e-3)  # the label matters to the gradient
    out = run.parts.strategy.train_step(real, run.models, step_context(0, tf.constant(0)))
    assert float(out.metrics["d_r1"]) == pytest.approx(expected, rel=1e-4)

