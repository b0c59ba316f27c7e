"""The least-squares losses, as pure functions."""

import numpy as np
import pytest

from gankit_example.losses import critic_loss, generator_loss


def test_a_perfect_critic_has_zero_loss():
    assert float(critic_loss(np.ones((3, 1)), np.zeros((3, 1)))) == 0.0


def test_critic_loss_is_half_the_mean_squared_errors():
    real, fake = np.array([[0.0], [2.0]]), np.array([[1.0], [1.0]])
    # real: errors -1 and 1 -> mean square 1; fake: errors 1 and 1 -> mean square 1.
    assert float(critic_loss(real, fake)) == pytest.approx(1.0)


def test_generator_loss_pulls_scores_to_the_real_target():
    assert float(generator_loss(np.ones((2, 1)))) == 0.0
    assert float(generator_loss(np.zeros((2, 1)))) == pytest.approx(0.5)
    assert float(generator_loss(np.zeros((2, 1)), real_target=2.0)) == pytest.approx(2.0)
