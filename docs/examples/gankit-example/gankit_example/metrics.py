"""Density and coverage (Naeem et al. 2020): two numbers comparing generated images with
real ones in feature space, as a metric component."""

import numpy as np

from gankit import GankitError, Metric, Param, RecipeError


def _squared_distances(a, b):
    """``(len(a), len(b))``: the squared distance of every row of ``a`` to every row of ``b``."""
    d2 = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d2, 0.0)


class DensityCoverage(Metric):
    """Each real image has a ball out to its k-th nearest real neighbour. Coverage is the
    share of real balls that hold a generated image (does the generator cover the data?);
    density is how many real balls hold each generated image, over k (about 1 when the
    two sets match; more when the generated images crowd where the data is dense)."""

    name = "density_coverage"
    lower_is_better = False  # coverage, the first value, ranks checkpoints: 1 is best
    best_value = 1.0  # every real ball holds its own copy when the sets are the same
    params = {"k": Param(int, 5, min=1, doc="the k-th nearest real neighbour sets a ball's "
                                            "radius")}

    def check_recipe(self, recipe, path):
        if recipe.metrics.samples <= self.config["k"]:
            raise RecipeError(f"k is {self.config['k']} but metrics.samples is "
                              f"{recipe.metrics.samples}; raise samples or lower k",
                              path=f"{path}.k")

    def compute(self, fake, real, rng):
        k = self.config["k"]
        x = np.asarray(fake.features, np.float64)
        y = np.asarray(real.features, np.float64)
        if len(y) <= k:
            raise GankitError(f"density_coverage with k={k} needs more than {k} real images, "
                              f"got {len(y)}; lower k")
        radii = np.sort(_squared_distances(y, y), axis=1)[:, k]  # column 0: the point itself
        inside = _squared_distances(x, y) <= radii[None, :]  # (generated, real)
        return {"coverage": float(inside.any(axis=0).mean()),
                "density": float(inside.sum() / (k * len(x)))}
