"""The metric components: FID, KID, Inception Score and precision/recall."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from gankit.errors import GankitError
from gankit.interfaces import Features, Metric
from gankit.params import Param
from gankit_metrics import math as metric_math


def _checked(name: str, compute: Callable[[], Any]) -> Any:
    try:
        return compute()
    except ValueError as exc:  # too few images for the settings, mismatched features
        raise GankitError(f"{name}: {exc}") from None


def _real(name: str, real: Features | None) -> Features:
    if real is None:
        raise GankitError(f"{name} compares generated images with real ones; give a reference")
    return real


class FIDMetric(Metric):
    """Fréchet Inception Distance: the distance between Gaussians fitted to the features."""

    name = "fid"

    def compute(self, fake: Features, real: Features | None,
                rng: np.random.Generator) -> dict[str, float]:
        real = _real(self.name, real)

        def fid() -> float:
            metric_math.check_same_width(np.atleast_2d(fake.features), np.atleast_2d(real.features))
            mu1, s1 = metric_math.statistics(fake.features)
            mu2, s2 = metric_math.statistics(real.features)
            return metric_math.frechet_distance(mu1, s1, mu2, s2)

        return {"fid": _checked(self.name, fid)}


class KIDMetric(Metric):
    """Kernel Inception Distance: unbiased MMD^2, cubic polynomial kernel, over subsets."""

    name = "kid"
    params = {
        "subsets": Param(int, 100, min=1, max=100_000, doc="random subsets the estimate is averaged over"),
        "subset_size": Param(int, 1000, min=2,
                             doc="images of each set per subset (capped at the smaller set)"),
    }

    def compute(self, fake: Features, real: Features | None,
                rng: np.random.Generator) -> dict[str, float]:
        real = _real(self.name, real)
        mean, std = _checked(self.name, lambda: metric_math.kid(
            fake.features, real.features, self.config["subsets"], self.config["subset_size"], rng))
        return {"kid": mean, "kid_std": std}


class InceptionScoreMetric(Metric):
    """Inception Score: how confidently and how evenly the network classifies the images."""

    name = "inception_score"
    needs_real = False
    needs_logits = True
    lower_is_better = False
    params = {"splits": Param(int, 10, min=1, doc="parts the images are cut into; the score is "
                                                   "their mean (std beside it)")}

    def compute(self, fake: Features, real: Features | None,
                rng: np.random.Generator) -> dict[str, float]:
        if fake.logits is None:
            raise GankitError("inception_score needs class logits, and the extractor gives "
                              "none; use an extractor with a classifier output")
        mean, std = _checked(self.name, lambda: metric_math.inception_score(
            fake.logits, self.config["splits"]))
        return {"inception_score": mean, "inception_score_std": std}


class PrecisionRecallMetric(Metric):
    """Precision and recall of the generated images in feature space (Kynkäänniemi 2019).

    Both are higher-is-better. The first value ranks checkpoints: ``rank_by`` chooses which
    (precision by default: how many generated images look real). Neither alone is a good
    selector (a collapsed generator can have perfect precision); prefer FID or KID for that.
    """

    name = "precision_recall"
    lower_is_better = False
    params = {
        "k": Param(int, 3, min=1, doc="the k-th nearest neighbour sets each point's radius"),
        "rank_by": Param(str, "precision", choices=("precision", "recall"),
                         doc="the value listed first, which ranks checkpoints"),
    }

    def compute(self, fake: Features, real: Features | None,
                rng: np.random.Generator) -> dict[str, float]:
        real = _real(self.name, real)
        precision, recall = _checked(self.name, lambda: metric_math.precision_recall(
            fake.features, real.features, self.config["k"]))
        if self.config["rank_by"] == "recall":
            return {"recall": recall, "precision": precision}
        return {"precision": precision, "recall": recall}


METRICS = (FIDMetric, KIDMetric, InceptionScoreMetric, PrecisionRecallMetric)
