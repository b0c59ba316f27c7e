"""A discriminator with batch norm scores generated and real images in separate batches in
its update, as the generator's update scores generated images alone. (With one mixed batch,
the generated images were normalized with the real ones there and alone here: the generator
then "won" from the first steps, g_loss near 0, and learned nothing but noise.)"""

from __future__ import annotations

import numpy as np
import pytest

from gankit import create
from gankit.interfaces.context import step_context
from gankit.training.session import Parts, SessionConfig, TrainingSession


def _session(discriminator, loss="non_saturating"):
    opt = {"type": "Adam", "learning_rate": 1e-3}
    parts = Parts(generator=create("generator", {"type": "dcgan", "latent_dim": 8,
                                                 "base_filters": 4}),
                  discriminator=create("discriminator", discriminator),
                  loss=create("loss", loss),
                  strategy=create("strategy", {"type": "gan", "d_steps": 1}),
                  optimizers={"generator": create("optimizer", opt),
                              "discriminator": create("optimizer", opt)},
                  regularizers=[], augmenter=create("augmenter", "none"),
                  ema_decay=None, ema_start=0)
    return TrainingSession(parts, SessionConfig(seed=0, batch_size=4, xla="off")).build()


class Recording:
    """The discriminator model, remembering the batch size of every call."""

    def __init__(self, model):
        self.model, self.sizes = model, []

    def __call__(self, inputs, training):
        self.sizes.append(int(inputs.shape[0]))
        return self.model(inputs, training=training)


@pytest.mark.parametrize("discriminator,sizes", [
    ({"type": "dcgan", "base_filters": 4}, [4, 4, 4]),                 # batch norm: apart
    ({"type": "dcgan", "base_filters": 4, "norm": "layer"}, [8, 4]),   # per image: one call
    ({"type": "dcgan", "base_filters": 4, "spectral_norm": True}, [8, 4]),
])
def test_batch_norm_scores_real_and_generated_apart(discriminator, sizes):
    import tensorflow as tf

    from gankit.interfaces import Batch

    session = _session(discriminator)
    assert session.models.discriminator_mixes_batch == (sizes == [4, 4, 4])
    recording = Recording(session.discriminator)
    models = session.models._replace(discriminator=recording)
    real = np.random.default_rng(0).uniform(-1, 1, (1, 4, 32, 32, 3)).astype(np.float32)
    out = session.parts.strategy.train_step(Batch(tf.constant(real)), models,
                                            step_context(0, 0))
    assert recording.sizes == sizes
    assert np.isfinite(float(out.metrics["g_loss"]))
