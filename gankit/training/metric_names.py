"""The names of the values a list of metrics gives (no TensorFlow)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from gankit.interfaces import Features


def value_names(metrics: Sequence[Any]) -> list[tuple[Any, str]]:
    """(metric, value name) of every value the metrics give, in order.

    A metric's values are named by what its ``compute`` returns, so each is run once on a
    dozen made-up feature vectors (numpy only, a few milliseconds).
    """
    rng = np.random.default_rng(0)
    tiny = Features(rng.standard_normal((12, 4)), rng.standard_normal((12, 3)))
    names = []
    for metric in metrics:
        values = metric.compute(tiny, tiny if metric.needs_real else None,
                                np.random.default_rng(0))
        names += [(metric, name) for name in values]
    return names
