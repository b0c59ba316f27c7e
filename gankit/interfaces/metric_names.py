"""The names of the values a list of metrics gives (no TensorFlow)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from gankit.interfaces.metrics import Features

PER_CLASS = "/"
"""Joins a per-class value's name and its class: ``intra_fid/frog`` (the mean is ``intra_fid``)."""


def value_names(metrics: Sequence[Any], class_names: Sequence[str] | None = None
                ) -> list[tuple[Any, str]]:
    """(metric, value name) of every value the metrics give, in order.

    A metric's values are named by what its ``compute`` returns, so each is run once on a
    dozen made-up feature vectors (numpy only, a few milliseconds). Per-class metrics
    (``needs_labels``) name a value per class: they are run on made-up features of
    ``class_names`` (default: two classes ``0``, ``1``).
    """
    rng = np.random.default_rng(0)
    tiny = Features(rng.standard_normal((12, 4)), rng.standard_normal((12, 3)))
    names_ = tuple(class_names) if class_names else ("0", "1")
    k = len(names_)
    labelled = Features(rng.standard_normal((3 * k, 4)), rng.standard_normal((3 * k, k + 1)),
                        np.arange(3 * k) % k, names_)
    names = []
    for metric in metrics:
        data = labelled if metric.needs_labels else tiny
        values = metric.compute(data, data if metric.needs_real else None,
                                np.random.default_rng(0))
        names += [(metric, name) for name in values]
    return names


def split_per_class(name: str) -> tuple[str, str | None]:
    """``("intra_fid", "frog")`` for ``intra_fid/frog``; ``(name, None)`` for other values."""
    value, sep, cls = name.partition(PER_CLASS)
    return (value, cls) if sep and cls else (name, None)
