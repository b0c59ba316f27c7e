"""The metrics' math against closed forms, population values and constructed point sets."""

import numpy as np
import pytest

from gankit.errors import GankitError
from gankit.interfaces import Features
from gankit_metrics import math as mm
from gankit_metrics.metrics import FIDMetric, InceptionScoreMetric, KIDMetric, PrecisionRecallMetric


def _random_covariance(rng, d):
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


# --- FID ------------------------------------------------------------------------------------

def test_statistics_are_the_mean_and_the_unbiased_covariance():
    x = np.random.default_rng(0).standard_normal((50, 4))
    mu, sigma = mm.statistics(x)
    np.testing.assert_allclose(mu, x.mean(axis=0))
    np.testing.assert_allclose(sigma, np.cov(x, rowvar=False))


def test_fid_of_a_set_against_itself_is_zero():
    x = np.random.default_rng(1).standard_normal((300, 16)) * 3.0 + 1.0
    mu, sigma = mm.statistics(x)
    assert mm.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-6)
    # also with fewer samples than dimensions: a singular covariance
    few = x[:5]
    mu, sigma = mm.statistics(few)
    assert mm.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-6)


def test_fid_of_univariate_gaussians_is_the_closed_form():
    # W2^2(N(m1, s1^2), N(m2, s2^2)) = (m1 - m2)^2 + (s1 - s2)^2
    value = mm.frechet_distance(np.array([1.0]), np.array([[4.0]]),
                                np.array([-2.0]), np.array([[0.25]]))
    assert value == pytest.approx(9.0 + (2.0 - 0.5) ** 2, rel=1e-12)


def test_fid_of_diagonal_gaussians_is_the_closed_form():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([0.5, 2.0, 7.0])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert mm.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected,
                                                                                 rel=1e-12)


def test_fid_of_full_covariances_matches_a_matrix_square_root():
    rng = np.random.default_rng(2)
    d = 6
    s1, s2 = _random_covariance(rng, d), _random_covariance(rng, d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    # Tr((s1 s2)^1/2) from the eigenvalues of s1 s2 (real, non-negative: similar to a PSD matrix)
    trace_root = np.sqrt(np.linalg.eigvals(s1 @ s2).real.clip(0)).sum()
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * trace_root
    assert mm.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_fid_of_two_gaussian_samples_approaches_the_closed_form():
    rng = np.random.default_rng(3)
    d = 3
    s1, s2 = _random_covariance(rng, d), _random_covariance(rng, d)
    mu1, mu2 = np.zeros(d), np.array([1.0, -0.5, 0.25])
    expected = mm.frechet_distance(mu1, s1, mu2, s2)
    x = rng.multivariate_normal(mu1, s1, 200_000)
    y = rng.multivariate_normal(mu2, s2, 200_000)
    value = FIDMetric().compute(Features(x), Features(y), rng)["fid"]
    assert value == pytest.approx(expected, rel=0.02)


# --- KID ------------------------------------------------------------------------------------

def _kernel(a, b):
    return ((a * b).sum(axis=1) / a.shape[1] + 1.0) ** 3


def _biased_mmd2(x, y):
    d = x.shape[1]
    k = lambda a, b: (a @ b.T / d + 1.0) ** 3  # noqa: E731
    return k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean()


@pytest.mark.parametrize("shift", [0.0, 0.6])
def test_kid_is_unbiased(shift):
    rng = np.random.default_rng(4)
    d, m, draws = 2, 8, 3000
    # The population MMD^2 from independent pairs (no U-statistic involved).
    big = 1_000_000
    x1, x2 = rng.standard_normal((big, d)), rng.standard_normal((big, d))
    y1, y2 = rng.standard_normal((big, d)) + shift, rng.standard_normal((big, d)) + shift
    population = _kernel(x1, x2).mean() + _kernel(y1, y2).mean() - 2 * _kernel(x1, y1).mean()
    if shift == 0.0:
        population = 0.0
    unbiased, biased = [], []
    for _ in range(draws):
        x = rng.standard_normal((m, d))
        y = rng.standard_normal((m, d)) + shift
        unbiased.append(mm.kid(x, y, subsets=1, subset_size=m, rng=rng)[0])
        biased.append(_biased_mmd2(x, y))
    stderr = np.std(unbiased) / np.sqrt(draws)
    assert abs(np.mean(unbiased) - population) < 4 * stderr + 0.002
    # ...where the estimator that keeps the diagonal is far off at this sample size
    assert np.mean(biased) - population > 10 * stderr


def test_kid_reports_mean_and_std_over_subsets_and_caps_the_subset_size():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((30, 4)), rng.standard_normal((20, 4)) + 1.0
    values = KIDMetric(subsets=7, subset_size=1000).compute(Features(x), Features(y), rng)
    assert list(values) == ["kid", "kid_std"]
    assert values["kid"] > 0 and values["kid_std"] > 0  # 20-of-30 subsets differ
    # all subsets are the whole sets when both hold subset_size rows: no spread
    same = mm.kid(x[:20], y, subsets=5, subset_size=20, rng=rng)
    assert same[1] == pytest.approx(0.0, abs=1e-12)
    assert same[0] == pytest.approx(mm.kid(x[:20], y, subsets=1, subset_size=20)[0])


# --- Inception Score ------------------------------------------------------------------------

def test_inception_score_of_uniform_predictions_is_one():
    mean, std = mm.inception_score(np.zeros((100, 10)), splits=10)
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)


def test_inception_score_of_confident_evenly_spread_predictions_is_the_class_count():
    classes = 7
    logits = 60.0 * np.eye(classes)[np.arange(classes * 10) % classes]
    mean, std = mm.inception_score(logits, splits=10)
    assert mean == pytest.approx(classes, rel=1e-9) and std == pytest.approx(0.0, abs=1e-9)
    # confident but all the same class: 1
    assert mm.inception_score(np.tile(logits[:1], (70, 1)), splits=1)[0] == \
        pytest.approx(1.0, rel=1e-9)


def test_inception_score_metric_needs_logits():
    metric = InceptionScoreMetric(splits=2)
    assert not metric.needs_real and metric.needs_logits and not metric.lower_is_better
    with pytest.raises(GankitError, match="needs class logits"):
        metric.compute(Features(np.zeros((4, 3))), None, np.random.default_rng(0))
    with pytest.raises(GankitError, match="inception_score: splits must be between 1 and"):
        InceptionScoreMetric(splits=10).compute(Features(np.zeros((4, 3)), np.zeros((4, 3))),
                                                None, np.random.default_rng(0))


# --- precision and recall -------------------------------------------------------------------

def _modes(rng, centres, per_mode, spread=0.1):
    return np.concatenate([c + spread * rng.standard_normal((per_mode, len(c)))
                           for c in centres])


def test_precision_recall_of_identical_sets_is_one_one():
    x = np.random.default_rng(6).standard_normal((120, 5))
    assert mm.precision_recall(x, x.copy(), k=3) == (1.0, 1.0)


def test_precision_recall_of_far_apart_sets_is_zero_zero():
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((80, 5)), rng.standard_normal((90, 5)) + 100.0
    assert mm.precision_recall(x, y, k=3) == (0.0, 0.0)


def test_a_generator_covering_half_the_modes_has_precision_one_recall_half():
    rng = np.random.default_rng(8)
    centres = 20.0 * np.eye(4)
    real = _modes(rng, centres, per_mode=40)
    fake = real[:80]  # exactly the images of the first two modes
    precision, recall = mm.precision_recall(fake, real, k=3)
    assert precision == 1.0 and recall == 0.5
    values = PrecisionRecallMetric().compute(Features(fake), Features(real), rng)
    assert values == {"precision": 1.0, "recall": 0.5}
    assert list(PrecisionRecallMetric(rank_by="recall").compute(
        Features(fake), Features(real), rng)) == ["recall", "precision"]


def test_precision_recall_in_small_blocks_equals_one_block(monkeypatch):
    rng = np.random.default_rng(9)
    x, y = rng.standard_normal((150, 3)), rng.standard_normal((130, 3)) + 0.7
    whole = mm.precision_recall(x, y, k=3)
    monkeypatch.setattr(mm, "_DISTANCE_BLOCK", 7 * 150)  # blocks of 7 rows
    assert mm.precision_recall(x, y, k=3) == whole
    assert 0.0 < whole[0] < 1.0 and 0.0 < whole[1] < 1.0


def test_too_few_samples_and_mismatched_widths_are_one_line_errors():
    rng = np.random.default_rng(10)
    with pytest.raises(GankitError, match=r"precision_recall: .*more than 3"):
        PrecisionRecallMetric().compute(Features(np.zeros((3, 2))), Features(np.zeros((9, 2))),
                                        rng)
    with pytest.raises(GankitError, match="differ in width: 2 and 3"):
        FIDMetric().compute(Features(np.zeros((5, 2))), Features(np.zeros((5, 3))), rng)
    with pytest.raises(GankitError, match="give a reference"):
        KIDMetric().compute(Features(np.zeros((5, 2))), None, rng)


@pytest.mark.parametrize("component", [
    FIDMetric(), KIDMetric(subsets=3, subset_size=10), InceptionScoreMetric(splits=2),
    PrecisionRecallMetric(k=5, rank_by="recall")])
def test_metric_configs_round_trip(component):
    from gankit.testing import check_config

    check_config(component)
