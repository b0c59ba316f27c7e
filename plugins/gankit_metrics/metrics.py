"""The metric components: FID, KID, Inception Score, precision/recall, and the per-class
intra-FID and classifier accuracy of a conditional generator."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from gankit.errors import GankitError, RecipeError
from gankit.interfaces import Features, Metric
from gankit.interfaces.metric_names import PER_CLASS
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

    def check_recipe(self, recipe, path: str) -> None:
        samples = recipe.metrics.samples
        if self.config["splits"] > samples:
            raise RecipeError(f"splits is {self.config['splits']} but metrics.samples is "
                              f"{samples}: each split needs at least one image; lower splits "
                              f"or raise samples", path=f"{path}.splits")

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

    def check_recipe(self, recipe, path: str) -> None:
        k = self.config["k"]
        counts = {"metrics.samples": recipe.metrics.samples}
        if recipe.metrics.reference_samples is not None:
            counts["metrics.reference_samples"] = recipe.metrics.reference_samples
        for key, count in counts.items():
            if count <= k:
                raise RecipeError(f"k is {k} but {key} is {count}: the k-th nearest neighbour "
                                  f"needs more than k images in each set; lower k or raise "
                                  f"{key.split('.')[1]}", path=f"{path}.k")

    def compute(self, fake: Features, real: Features | None,
                rng: np.random.Generator) -> dict[str, float]:
        real = _real(self.name, real)
        precision, recall = _checked(self.name, lambda: metric_math.precision_recall(
            fake.features, real.features, self.config["k"]))
        if self.config["rank_by"] == "recall":
            return {"recall": recall, "precision": precision}
        return {"precision": precision, "recall": recall}


def _class_names(name: str, fake: Features, real: Features | None) -> tuple[str, ...]:
    """The class names of labelled features (the generated and real ones must agree)."""
    if fake.labels is None:
        raise GankitError(f"{name} scores the images of each class and the generated images "
                          f"have no labels; evaluate a conditional generator (its run "
                          f"directory)")
    if real is not None and real.labels is None:
        raise GankitError(f"{name} compares the images of each class and the real images have "
                          f"no labels; compare with a dataset that has labels: true")
    names = fake.class_names or (real.class_names if real is not None else None)
    if real is not None and fake.class_names and real.class_names \
            and tuple(fake.class_names) != tuple(real.class_names):
        raise GankitError(f"{name}: the generator's classes ({', '.join(fake.class_names)}) are "
                          f"not the real images' ({', '.join(real.class_names)})")
    if names is None:
        seen = [np.asarray(f.labels) for f in (fake, real) if f is not None]
        names = tuple(str(i) for i in range(max(int(x.max(initial=-1)) for x in seen) + 1))
    return tuple(names)


def _check_per_class_recipe(metric: Metric, recipe, path: str) -> tuple[str, ...]:
    """Refuse a per-class metric in a recipe without labelled data or a conditional
    generator; return the dataset's class names."""
    names = recipe.create("dataset").class_names
    if names is None:
        raise RecipeError(f"{metric.name} scores the generated images of each class and needs "
                          f"labelled real images; set dataset.labels: true (and num_classes on "
                          f"the generator and discriminator)", path=path)
    if not recipe.create("generator").num_classes:
        raise RecipeError(f"{metric.name} scores the generated images of each class and needs "
                          f"a conditional generator; set generator.num_classes: {len(names)}",
                          path=path)
    return tuple(names)


_PER_CLASS_PARAM = Param(bool, True, doc="also report each class's value, named "
                                         "VALUE/CLASS (e.g. intra_fid/frog)")


class IntraFIDMetric(Metric):
    """Intra-FID (Miyato & Koyama 2018): the FID of each class's generated images against
    the real images of that class, averaged over the classes."""

    name = "intra_fid"
    needs_labels = True
    params = {"per_class": _PER_CLASS_PARAM}

    def compute(self, fake: Features, real: Features | None,
                rng: np.random.Generator) -> dict[str, float]:
        real = _real(self.name, real)
        names = _class_names(self.name, fake, real)
        values = _checked(self.name, lambda: metric_math.per_class_fid(
            fake.features, fake.labels, real.features, real.labels, len(names), names))
        return _mean_and_per_class(self, values, names)

    def check_recipe(self, recipe, path: str) -> None:
        names = _check_per_class_recipe(self, recipe, path)
        if recipe.metrics.samples < 2 * len(names):
            raise RecipeError(f"intra_fid needs at least 2 generated images of each of the "
                              f"{len(names)} classes; set it to {2 * len(names)} or more",
                              path="metrics.samples")


def _mean_and_per_class(metric: Metric, values, names) -> dict[str, float]:
    """``{name: mean}``, and ``{name/class: value}`` for each class with ``per_class``."""
    out = {metric.name: float(values.mean())}
    if metric.config["per_class"]:
        out.update({f"{metric.name}{PER_CLASS}{c}": float(v) for c, v in zip(names, values)})
    return out


class ClassAccuracyMetric(Metric):
    """How often a classifier (``gankit train-classifier``'s, as the extractor) recognises
    the class the generator was asked for, per class and averaged over the classes.

    The extractor's logits are matched with the generator's classes by name, so the
    extractor must know its classes' names (``keras_model`` reads them from the classifier's
    report, or from its ``class_names``). An image counts as right when its largest logit,
    among all the classifier's classes, is its own class.
    """

    name = "class_accuracy"
    needs_real = False
    needs_logits = True
    needs_labels = True
    lower_is_better = False
    params = {"per_class": _PER_CLASS_PARAM}

    def compute(self, fake: Features, real: Features | None,
                rng: np.random.Generator) -> dict[str, float]:
        if fake.logits is None:
            raise GankitError("class_accuracy needs class logits, and the extractor gives "
                              "none; use a classifier (gankit train-classifier) as the extractor")
        names = _class_names(self.name, fake, None)
        values = _checked(self.name, lambda: metric_math.per_class_accuracy(
            fake.logits, fake.labels, len(names), names))
        return _mean_and_per_class(self, values, names)

    def check_recipe(self, recipe, path: str) -> None:
        names = _check_per_class_recipe(self, recipe, path)
        from gankit import create

        extractor = create("feature_extractor", recipe.metrics.extractor, "metrics.extractor")
        try:
            extractor.preflight()
        except GankitError:
            return  # a missing classifier file is reported when training starts
        from gankit import logit_classes

        logit_classes(extractor, names, path=path)


METRICS = (FIDMetric, KIDMetric, InceptionScoreMetric, PrecisionRecallMetric,
           IntraFIDMetric, ClassAccuracyMetric)
