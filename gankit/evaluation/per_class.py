"""Per-class metrics of a class-conditional generator: what they need and how their inputs
are prepared.

A per-class metric (``Metric.needs_labels``: ``intra_fid``, ``class_accuracy``) sees
:class:`~gankit.interfaces.Features` with each image's class (``labels``) and the classes'
names (``class_names``): the generated images' from a conditional generator (the label each
was made with), the real images' from a dataset with labels. When it also reads logits,
their columns are reordered so that column ``i`` is class ``i``, matching the classifier's
classes with the generator's by name. No TensorFlow.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from gankit.errors import GankitError
from gankit.evaluation.sources import ImageSource
from gankit.interfaces import FeatureExtractor, Features, Metric
from gankit.interfaces.metrics import logit_classes  # noqa: F401  (used here and by metrics)

__all__ = ["align_logits", "check_per_class", "logit_classes", "with_labels"]


def with_labels(features: Features, source: ImageSource, n: int) -> Features:
    """``features`` of the first ``n`` images of ``source`` with each image's class and the
    class names, when the source knows them."""
    labels = source.labels(n)
    if labels is None:
        return features
    return features._replace(labels=np.asarray(labels), class_names=source.class_names)


def align_logits(features: Features, extractor: FeatureExtractor) -> Features:
    """``features`` with the logit columns reordered by class name: column ``i`` is class
    ``features.class_names[i]``, the extractor's other classes follow (so an image taken for
    one of those still counts as wrong).

    Raises:
        GankitError: no logits or class names, or logits that do not match the names.
    """
    if features.logits is None or features.class_names is None:
        raise GankitError("per-class logits need the extractor's class logits and the "
                          "images' class names")
    known = logit_classes(extractor, features.class_names)
    if features.logits.shape[1] != len(known):
        raise GankitError(f"the extractor '{extractor.name}' gives {features.logits.shape[1]} "
                          f"logits but names {len(known)} classes ({', '.join(known)})")
    order = [known.index(c) for c in features.class_names]
    order += [i for i in range(len(known)) if i not in order]
    return features._replace(logits=features.logits[:, order])


def check_per_class(source: ImageSource, reference: ImageSource | None,
                    extractor: FeatureExtractor, metrics: Sequence[Metric]) -> None:
    """Refuse per-class metrics (``needs_labels``) without a conditional generator, labelled
    real images whose classes are the generator's, or (for logits) a classifier that names
    them. Needs no TensorFlow and loads no images.

    Raises:
        GankitError: one line naming the metric and what to give instead.
    """
    for metric in metrics:
        if not metric.needs_labels:
            continue
        if source.class_names is None:
            raise GankitError(f"{metric.name} scores the generated images of each class; "
                              f"{source.description} is not a conditional generator (evaluate "
                              f"the run directory of a generator with num_classes)")
        if metric.needs_real:
            if reference is None or reference.class_names is None:
                what = reference.description if reference is not None else "no reference"
                raise GankitError(f"{metric.name} compares each class with the real images of "
                                  f"that class, and {what} has no labels; give --reference a "
                                  f"recipe whose dataset has labels: true")
            if tuple(reference.class_names) != tuple(source.class_names):
                raise GankitError(f"{metric.name}: the generator's classes "
                                  f"({', '.join(source.class_names)}) are not the reference's "
                                  f"({', '.join(reference.class_names)})")
        if metric.needs_logits:
            logit_classes(extractor, source.class_names, path=metric.name)
