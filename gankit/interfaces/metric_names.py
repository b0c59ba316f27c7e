"""The names of the values a list of metrics gives (no TensorFlow)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from gankit.errors import GankitError
from gankit.interfaces.metrics import Features

PER_CLASS = "/"
"""Joins a per-class value's name and its class: ``intra_fid/frog`` (the mean is ``intra_fid``)."""


def value_names(metrics: Sequence[Any], class_names: Sequence[str] | None = None
                ) -> list[tuple[Any, str]]:
    """(metric, value name) of every value the metrics give, in order.

    A metric's values are named by what its ``compute`` returns, so each is run on a
    dozen made-up feature vectors (numpy only, a few milliseconds; more if its settings
    need more, see ``_SIZES``). Per-class metrics
    (``needs_labels``) name a value per class: they are run on made-up features of
    ``class_names`` (default: two classes ``0``, ``1``).
    """
    names_ = tuple(class_names) if class_names else ("0", "1")
    names = []
    for metric in metrics:
        values = _run_on_made_up(metric, names_)
        names += [(metric, name) for name in values]
    return names


_SIZES = (12, 256, 4096)
"""Made-up feature vectors per set (per class, for a per-class metric) that ``value_names``
tries in turn: a metric whose settings need more images than a dozen (``splits: 20``, a
k-NN ``k: 12``) gives its names at a larger size; whether the recipe's real counts suffice
is the metric's ``check_recipe``'s question, not this one's."""


def _run_on_made_up(metric: Any, class_names: tuple[str, ...]) -> dict[str, float]:
    for size in _SIZES:
        rng = np.random.default_rng(0)
        if metric.needs_labels:
            k = len(class_names)
            n = max(3, size // max(1, k)) * k
            data = Features(rng.standard_normal((n, 4)), rng.standard_normal((n, k + 1)),
                            np.arange(n) % k, class_names)
        else:
            data = Features(rng.standard_normal((size, 4)), rng.standard_normal((size, 3)))
        try:
            return metric.compute(data, data if metric.needs_real else None,
                                  np.random.default_rng(0))
        except (GankitError, ValueError, ArithmeticError):
            if size == _SIZES[-1]:  # not a matter of how many vectors: the metric's error
                raise
    raise AssertionError("unreachable")


def split_per_class(name: str) -> tuple[str, str | None]:
    """``("intra_fid", "frog")`` for ``intra_fid/frog``; ``(name, None)`` for other values."""
    value, sep, cls = name.partition(PER_CLASS)
    return (value, cls) if sep and cls else (name, None)
