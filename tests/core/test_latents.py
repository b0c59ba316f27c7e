"""The latents gankit's tools draw (``gankit.util.latents``): standard normal as before, and
BigGAN's truncated normal, checked against the standard library's normal distribution."""

import math
import statistics

import numpy as np
import pytest

from gankit.util.latents import draw_latents, normal_quantile, truncation_problem


def test_the_quantile_matches_the_standard_librarys_to_1e_8():
    normal = statistics.NormalDist()
    p = np.concatenate([np.linspace(1e-12, 1 - 1e-12, 4001),
                        [1e-300, 1e-30, 1e-8, 0.02425, 0.5, 0.97575, 1 - 1e-8]])
    expected = np.array([normal.inv_cdf(x) for x in p])
    assert np.max(np.abs(normal_quantile(p) - expected) / np.maximum(1.0, np.abs(expected))) \
        < 1e-8
    assert normal_quantile(np.array([0.5]))[0] == 0.0


def test_untruncated_latents_are_the_standard_normal_stream_of_before():
    drawn = draw_latents(np.random.default_rng(7), (5, 3))
    assert drawn.dtype == np.float32
    assert np.array_equal(drawn, np.random.default_rng(7).standard_normal((5, 3))
                          .astype(np.float32))


@pytest.mark.parametrize("t", [0.5, 1.0, 2.0])
def test_truncated_latents_have_the_truncated_normals_moments(t):
    z = draw_latents(np.random.default_rng(0), (400_000,), t).astype(np.float64)
    assert np.abs(z).max() <= t
    phi = math.exp(-t * t / 2) / math.sqrt(2 * math.pi)
    mass = math.erf(t / math.sqrt(2))
    std = math.sqrt(1 - 2 * t * phi / mass)  # the variance of N(0, 1) truncated to [-t, t]
    assert abs(z.mean()) < 4 * std / math.sqrt(len(z))
    assert z.std() == pytest.approx(std, rel=0.01)
    # half the mass within the truncated distribution's median magnitude
    median = normal_quantile(np.array([0.5 + mass / 4]))[0]
    assert np.mean(np.abs(z) <= median) == pytest.approx(0.5, abs=0.005)


def test_a_batch_at_a_time_gives_the_same_latents_as_all_at_once():
    whole = draw_latents(np.random.default_rng(3), (10, 4), 0.7)
    rng = np.random.default_rng(3)
    parts = [draw_latents(rng, (count, 4), 0.7) for count in (3, 1, 6)]
    assert np.array_equal(np.concatenate(parts), whole)


def test_a_smaller_truncation_pulls_the_same_latents_in():
    wide, narrow = (draw_latents(np.random.default_rng(5), (2000,), t) for t in (3.0, 0.5))
    assert np.array_equal(np.sign(wide), np.sign(narrow))
    assert np.all(np.abs(narrow) <= np.abs(wide) + 1e-7)
    assert np.array_equal(np.argsort(wide, kind="stable"), np.argsort(narrow, kind="stable"))
    # and at the largest truncation the values are standard normal: no cut to speak of
    loose = draw_latents(np.random.default_rng(5), (200_000,), 10.0)
    assert loose.std() == pytest.approx(1.0, rel=0.01) and np.abs(loose).max() > 3.5


@pytest.mark.parametrize("value", [0, -1, 0.001, 10.5, 1e30, float("nan"), float("inf"),
                                   -float("inf")])
def test_out_of_range_truncations_are_refused(value):
    problem = truncation_problem(value)
    assert problem.startswith("must be between 0.01 and 10")
    with pytest.raises(ValueError, match="truncation must be between 0.01 and 10"):
        draw_latents(np.random.default_rng(0), (2,), value)


@pytest.mark.parametrize("value", [True, "1", [1.0]])
def test_truncations_that_are_not_numbers_are_refused(value):
    assert truncation_problem(value).startswith("expected a number")


@pytest.mark.parametrize("value", [None, 0.01, 1, 10.0, np.float32(1.5), np.int64(2)])
def test_the_ends_of_the_range_are_accepted(value):
    assert truncation_problem(value) is None
    z = draw_latents(np.random.default_rng(0), (1000,), value)
    assert np.all(np.isfinite(z))
    if value is not None:
        assert np.abs(z).max() <= value
