"""The example's loss and regularizer: gankit's conformance checks, what they compute, and
a training session of the built-in `gan` strategy with them."""

from pathlib import Path

import numpy as np
import pytest
from gankit_example.critic import ConvCritic
from gankit_example.generator import UpsamplingGenerator
from gankit_example.losses import NoisyLeastSquaresLoss
from gankit_example.regularizers import ConsistencyRegularizer
from gankit_example.shapes import ShapesDataset

from gankit import step_context
from gankit.interfaces import RegularizerInputs
from gankit.testing import check_loss, check_regularizer, check_strategy

TINY = {"height": 8, "width": 8, "channels": 1}


def ctx(step=0, name="loss"):
    return step_context(0, step).child(name)


def scores(*values):
    import tensorflow as tf

    return tf.constant([[v] for v in values], tf.float32)


def test_loss_passes_the_conformance_checks():
    check_loss(NoisyLeastSquaresLoss())
    check_loss(NoisyLeastSquaresLoss(noise=0.0))


def test_without_noise_it_is_the_least_squares_loss():
    loss = NoisyLeastSquaresLoss(noise=0.0)
    real, fake = scores(0.0, 2.0), scores(1.0, 1.0)
    # Real: errors -1 and 1 (mean square 1); generated: errors 1 and 1 (mean square 1).
    assert float(loss.discriminator_loss(real, fake, ctx())) == pytest.approx(1.0)
    assert float(loss.discriminator_loss(scores(1.0), scores(0.0), ctx())) == 0.0
    assert float(loss.generator_loss(scores(0.0, 0.0), ctx())) == pytest.approx(0.5)
    assert float(loss.generator_loss(scores(1.0), ctx())) == 0.0


def test_the_noise_comes_from_the_step_and_stays_within_bounds():
    loss = NoisyLeastSquaresLoss(noise=0.2)
    perfect = scores(*[1.0] * 64), scores(*[0.0] * 64)
    values = [float(loss.discriminator_loss(*perfect, ctx(step))) for step in (3, 3, 4)]
    assert values[0] == values[1]       # the same step draws the same targets
    assert values[0] != values[2]       # another step draws others
    # Each target is at most 0.2 away from 0 or 1, so each squared error is at most 0.04.
    assert all(0.0 < v <= 0.04 for v in values)


def test_regularizer_passes_the_conformance_checks():
    check_regularizer(ConsistencyRegularizer())
    check_regularizer(ConsistencyRegularizer(weight=1.0, every=4))


def mirror_inputs(discriminate):
    images = np.random.default_rng(0).uniform(-1, 1, (8, 4, 4, 1)).astype("float32")
    real, fake = images[:4], images[4:]
    return RegularizerInputs(discriminate, real, fake, discriminate(real), discriminate(fake))


def test_a_critic_blind_to_mirroring_has_no_penalty():
    import tensorflow as tf

    def symmetric(x):  # the same score for an image and its mirror image
        return tf.reduce_sum(x + tf.reverse(x, axis=[2]), axis=[1, 2, 3])[:, None]

    inputs = mirror_inputs(symmetric)
    assert float(ConsistencyRegularizer().penalty(inputs, ctx(name="regularizers/0"))) == 0.0


def test_a_critic_that_tells_mirror_images_apart_is_penalized():
    import tensorflow as tf

    def left_half(x):  # only the left half of each image counts
        return tf.reduce_sum(x[:, :, :2], axis=[1, 2, 3])[:, None]

    inputs = mirror_inputs(left_half)
    light = ConsistencyRegularizer(weight=1.0).penalty(inputs, ctx(name="regularizers/0"))
    heavy = ConsistencyRegularizer(weight=10.0).penalty(inputs, ctx(name="regularizers/0"))
    assert float(light) > 0.0
    assert float(heavy) == pytest.approx(10.0 * float(light))


def test_the_parts_train_with_the_built_in_strategy(gankit_plugins):
    # Steps, determinism and an exact resume, in a real training session.
    gan = gankit_plugins.registry.get("strategy", "gan").component()
    check_strategy(gan, UpsamplingGenerator(latent_dim=4, filters=4, **TINY),
                   ConvCritic(filters=4, **TINY), loss=NoisyLeastSquaresLoss(),
                   regularizers=[ConsistencyRegularizer()],
                   images=ShapesDataset(count=8, **TINY).load())


@pytest.mark.parametrize("module", ["losses.py", "regularizers.py", "relativistic.py",
                                    "callbacks.py", "metrics.py", "extractors.py"])
def test_writing_plugins_shows_this_very_code(module):
    here = Path(__file__).resolve().parents[1]
    guide = here.parents[1] / "writing-plugins.md"  # docs/ of a gankit checkout
    if not guide.is_file():
        pytest.skip("the example is not inside a gankit checkout")
    code = (here / "gankit_example" / module).read_text()
    assert code in guide.read_text(), f"docs/writing-plugins.md no longer shows {module} as is"
