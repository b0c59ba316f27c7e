"""gankit's plain-Python mark (gankit.util.graph.plain_python): TensorFlow traces a marked
function as written, and a plugin's own code is still converted by AutoGraph where the
trainer calls it (a plugin may write ``if`` on a tensor)."""

import numpy as np
import pytest
import tensorflow as tf
from session_kit import parts as kit_parts

from gankit.interfaces.data import ArraySource
from gankit.training.data import BatchReader, step_batches
from gankit.training.distribute import Distribution
from gankit.training.session import Parts, SessionConfig, TrainingSession
from gankit.util.graph import plain_python
from gankit_training.losses import NonSaturatingLoss
from gankit_training.strategy import GANStrategy


def test_tensorflow_traces_a_marked_function_as_written():
    def converted(x):
        if x > 0:  # AutoGraph makes this a tf.cond
            return x
        return -x

    @plain_python
    def marked(x):
        if x > 0:  # as written: a tensor used as a Python bool
            return x
        return -x

    assert float(tf.function(converted)(tf.constant(-2.0))) == 2.0
    with pytest.raises(TypeError, match="tf.Tensor. as a Python .bool."):
        tf.function(marked)(tf.constant(-2.0))


@pytest.mark.parametrize("function", [GANStrategy.train_step, TrainingSession.train_step,
                                      TrainingSession._replica_step, Distribution.run,
                                      BatchReader.__call__],
                         ids=lambda f: f.__qualname__)
def test_the_functions_that_call_plugin_code_are_not_marked(function):
    assert not hasattr(function, "autograph_info__")


class BranchyLoss(NonSaturatingLoss):
    """The non-saturating loss, written with a Python ``if`` on a tensor."""

    def generator_loss(self, fake_scores, ctx, real_scores=None):
        loss = tf.reduce_mean(tf.nn.softplus(-fake_scores))
        if loss > 1e9:  # needs AutoGraph: a tensor condition
            loss = loss * 0.0
        return loss


class BranchySource(ArraySource):
    """Reads the images in memory, with a Python ``if`` on a tensor."""

    def read(self, indices):
        images = super().read(indices)
        if tf.reduce_max(images) > 1e9:  # needs AutoGraph
            images = images * 0.0
        return images


def test_a_plugins_loss_and_data_source_are_still_converted_in_a_training_step():
    base = kit_parts(loss={"type": "non_saturating"})
    parts = Parts(**{**base.__dict__, "loss": BranchyLoss()})
    session = TrainingSession(parts, SessionConfig(seed=0, batch_size=2, xla="off")).build()
    images = np.random.default_rng(0).uniform(0, 1, (4, 24, 24, 3)).astype(np.float32)
    data = step_batches(BranchySource(images), batch_size=2, batches_per_step=1, seed=0,
                        shuffle=True, start=0, stop=1)
    step = session.step_function()
    for index, batch in data:
        metrics, _ = step(index, batch)
    assert np.isfinite(float(metrics["g_loss"]))
