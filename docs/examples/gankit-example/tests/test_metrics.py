"""The example's metric and feature extractor: gankit's conformance checks and what they
compute."""


import numpy as np
from gankit_example.extractors import ThumbnailExtractor
from gankit_example.metrics import DensityCoverage

from gankit import Features
from gankit.testing import check_feature_extractor, check_metric


def test_metric_passes_the_conformance_checks():
    check_metric(DensityCoverage())
    check_metric(DensityCoverage(k=2))


def test_a_set_covers_itself_and_half_a_set_covers_less():
    rng = np.random.default_rng(0)
    real = Features(rng.standard_normal((40, 3)))
    assert DensityCoverage(k=3).compute(real, real, rng)["coverage"] == 1.0
    half = Features(real.features[:20])
    assert 0.5 <= DensityCoverage(k=3).compute(half, real, rng)["coverage"] < 1.0


def test_extractor_passes_the_conformance_checks():
    check_feature_extractor(ThumbnailExtractor())
    check_feature_extractor(ThumbnailExtractor(grid=2), image_shape=(8, 8, 1))


def test_the_thumbnail_is_the_grey_cell_means_then_the_colour_statistics():
    images = np.zeros((1, 4, 4, 3), np.float32)
    images[:, :2, :, 0] = 1.0  # the top half red
    out = ThumbnailExtractor(grid=2).extract(images).features[0]
    np.testing.assert_allclose(out, [1 / 3, 1 / 3, 0, 0, 0.5, 0, 0, 0.5, 0, 0], rtol=1e-6)

