"""Gradient penalties on critics whose input gradient is known in closed form."""

import numpy as np
import pytest

from gankit.errors import RecipeError
from gankit.interfaces import RegularizerInputs
from gankit.interfaces.context import step_context
from gankit_training.regularizers import GradientPenalty, R1Penalty, R2Penalty

SHAPE = (3, 4, 4, 1)


def ctx(step=4):
    return step_context(0, step).child("regularizers/0")


def images(seed):
    return np.random.default_rng(seed).uniform(-1, 1, SHAPE).astype(np.float32)


class LinearCritic:
    """D(x) = sum(w * x) + b: its input gradient is w for every image."""

    def __init__(self, seed=0):
        import tensorflow as tf

        rng = np.random.default_rng(seed)
        self.w = tf.Variable(rng.normal(0, 0.3, SHAPE[1:]).astype(np.float32))
        self.b = tf.Variable(0.5)

    def __call__(self, x):
        import tensorflow as tf

        return (tf.reduce_sum(self.w * x, axis=[1, 2, 3]) + self.b)[:, None]

    def inputs(self):
        real, fake = images(1), images(2)
        return RegularizerInputs(self, real, fake, self(real), self(fake))


class QuadraticCritic(LinearCritic):
    """D(x) = sum(a * x^2) + sum(w * x) + b: the input gradient depends on the image."""

    def __init__(self, seed=0):
        import tensorflow as tf

        super().__init__(seed)
        self.a = tf.Variable(np.random.default_rng(seed + 1).normal(0, 0.5, SHAPE[1:])
                             .astype(np.float32))

    def __call__(self, x):
        import tensorflow as tf

        return super().__call__(x) + tf.reduce_sum(self.a * x * x, axis=[1, 2, 3])[:, None]

    def numpy_value(self, x):
        a, w, b = (np.asarray(v, np.float64) for v in (self.a, self.w, self.b))
        return np.sum(a * x * x + w * x, axis=(1, 2, 3)) + b


def finite_difference_gradient_norms(critic, x, h=1e-4):
    """Per-image norms of dD/dx by central differences, in float64."""
    x = np.asarray(x, np.float64)
    grads = np.zeros_like(x)
    for index in np.ndindex(*x.shape[1:]):
        step = np.zeros_like(x)
        step[(slice(None), *index)] = h
        grads[(slice(None), *index)] = (critic.numpy_value(x + step)
                                        - critic.numpy_value(x - step)) / (2 * h)
    return np.sqrt(np.sum(grads ** 2, axis=(1, 2, 3)))


def test_gradient_penalty_on_a_linear_critic_is_weight_times_norm_minus_target_squared():
    critic = LinearCritic()
    norm = np.linalg.norm(critic.w.numpy())
    for weight, target in ((10.0, 1.0), (2.0, 0.5)):
        value = GradientPenalty(weight=weight, target=target).penalty(critic.inputs(), ctx())
        assert value.dtype.name == "float32" and value.shape == ()
        assert float(value) == pytest.approx(weight * (norm - target) ** 2, rel=1e-5)


def test_r1_and_r2_on_a_linear_critic_are_half_gamma_times_the_squared_norm():
    critic = LinearCritic()
    square = np.sum(critic.w.numpy() ** 2)
    for cls in (R1Penalty, R2Penalty):
        value = cls(gamma=3.0).penalty(critic.inputs(), ctx())
        assert float(value) == pytest.approx(1.5 * square, rel=1e-5)


def test_gradient_penalty_on_a_quadratic_critic_matches_finite_differences_at_interpolates():
    critic = QuadraticCritic()
    inputs = critic.inputs()
    eps = ctx().uniform("epsilon", (SHAPE[0], 1, 1, 1)).numpy()
    mixed = eps * inputs.real_images + (1 - eps) * inputs.fake_images
    norms = finite_difference_gradient_norms(critic, mixed)
    value = GradientPenalty(weight=10.0).penalty(inputs, ctx())
    assert float(value) == pytest.approx(10.0 * np.mean((norms - 1.0) ** 2), rel=1e-4)
    # Another step draws other interpolation points.
    assert float(GradientPenalty().penalty(inputs, ctx(step=5))) != pytest.approx(float(value))


@pytest.mark.parametrize("cls, which", [(R1Penalty, "real_images"), (R2Penalty, "fake_images")])
def test_r1_and_r2_on_a_quadratic_critic_use_real_and_generated_images(cls, which):
    critic = QuadraticCritic()
    inputs = critic.inputs()
    norms = finite_difference_gradient_norms(critic, getattr(inputs, which))
    value = cls(gamma=10.0).penalty(inputs, ctx())
    assert float(value) == pytest.approx(5.0 * np.mean(norms ** 2), rel=1e-4)


def test_the_penalties_are_differentiable_with_respect_to_the_critics_weights():
    """The second-order gradient the strategy's tape takes, against its closed form."""
    import tensorflow as tf

    critic = LinearCritic()
    w = critic.w.numpy()
    norm = np.linalg.norm(w)
    expected = {"gradient_penalty": 2 * 10.0 * (norm - 1.0) * w / norm, "r1": 10.0 * w,
                "r2": 10.0 * w}

    for regularizer in (GradientPenalty(), R1Penalty(), R2Penalty()):
        def step():
            with tf.GradientTape() as tape:
                value = regularizer.penalty(critic.inputs(), ctx())
            return tape.gradient(value, [critic.w, critic.b])

        for grads in (step(), tf.function(step)()):
            np.testing.assert_allclose(grads[0].numpy(), expected[regularizer.name], rtol=1e-4,
                                       atol=1e-6)
            assert grads[1] is None or float(grads[1]) == 0.0  # the bias has no input gradient


def test_the_gradient_penalty_has_a_finite_gradient_when_the_input_gradient_is_zero():
    import tensorflow as tf

    critic = LinearCritic()
    critic.w.assign(tf.zeros(SHAPE[1:]))
    with tf.GradientTape() as tape:
        value = GradientPenalty(weight=10.0, target=1.0).penalty(critic.inputs(), ctx())
    grad = tape.gradient(value, critic.w).numpy()
    assert float(value) == pytest.approx(10.0, rel=1e-5)
    assert np.all(np.isfinite(grad))


def test_images_get_no_gradient_from_the_penalty():
    """The generator must not be trained by the discriminator's regularizer."""
    import tensorflow as tf

    critic = LinearCritic()
    real, fake = tf.constant(images(1)), tf.constant(images(2))
    for regularizer in (GradientPenalty(), R1Penalty(), R2Penalty()):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([real, fake])
            inputs = RegularizerInputs(critic, real, fake, critic(real), critic(fake))
            value = regularizer.penalty(inputs, ctx())
        assert tape.gradient(value, real) is None and tape.gradient(value, fake) is None


@pytest.mark.parametrize("regularizer", [GradientPenalty(every=4), R1Penalty(every=4),
                                         R2Penalty(every=4)], ids=lambda r: r.name)
def test_lazy_regularization_applies_every_times_the_penalty_on_its_steps(regularizer):
    critic = QuadraticCritic()
    inputs = critic.inputs()
    assert regularizer.every == 4
    penalty = float(regularizer.penalty(inputs, ctx(step=8)))
    assert penalty > 0
    assert float(regularizer.term(inputs, ctx(step=8))) == pytest.approx(4 * penalty, rel=1e-6)
    assert float(regularizer.term(inputs, ctx(step=9))) == 0.0


def test_every_step_by_default():
    critic = LinearCritic()
    r1 = R1Penalty()
    assert r1.every == 1
    assert float(r1.term(critic.inputs(), ctx(step=9))) == float(r1.penalty(critic.inputs(),
                                                                             ctx(step=9)))


def test_params_are_checked():
    with pytest.raises(RecipeError, match="every"):
        R1Penalty(every=0)
    with pytest.raises(RecipeError, match="weight"):
        GradientPenalty(weight=-1.0)
    with pytest.raises(RecipeError, match="unknown key"):
        R2Penalty(weight=1.0)
    assert GradientPenalty().get_config() == {"weight": 10.0, "target": 1.0, "every": 1}
    assert R1Penalty().get_config() == {"gamma": 10.0, "every": 1}
