"""The metrics' math on feature arrays, in numpy and float64 (no TensorFlow, no scipy).

Each function is pure: arrays in, numbers out. Bad inputs (too few samples, mismatched
widths) raise ``ValueError``; the metric components turn that into a user-facing error.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

_DISTANCE_BLOCK = 1 << 22  # entries of one block of pairwise distances (32 MB of float64)


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean ``(d,)`` and the covariance ``(d, d)`` (unbiased, ``n - 1``) of ``(n, d)``
    features, in float64.

    Raises:
        ValueError: for fewer than 2 rows or an array that is not 2-D.
    """
    x = _as_matrix(features, "features")
    if len(x) < 2:
        raise ValueError(f"a covariance needs at least 2 feature vectors, got {len(x)}")
    mu = x.mean(axis=0)
    centred = x - mu
    return mu, centred.T @ centred / (len(x) - 1)


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """The Fréchet distance between the Gaussians ``N(mu1, s1)`` and ``N(mu2, s2)``.

    ``|mu1 - mu2|^2 + Tr(s1 + s2 - 2 (s1^1/2 s2 s1^1/2)^1/2)``. The trace of the square root
    is the sum of the square roots of the eigenvalues of the symmetric PSD matrix
    ``s1^1/2 s2 s1^1/2`` (it has the eigenvalues of ``s1 s2``), so two symmetric eigen
    decompositions suffice. Unlike ``scipy.linalg.sqrtm(s1 @ s2)`` this never yields complex
    parts or fails on the singular covariances that fewer samples than dimensions give.

    Raises:
        ValueError: when the shapes do not fit together.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(s1, np.float64), np.asarray(s2, np.float64)
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"expected means of shape (d,) and covariances (d, d) with one d; got "
                         f"{mu1.shape}, {s1.shape}, {mu2.shape}, {s2.shape}")
    root1 = _psd_sqrt(s1)
    middle = root1 @ s2 @ root1
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_root = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()
    diff = mu1 - mu2
    value = diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_root
    return float(max(value, 0.0))  # a distance: rounding may leave -1e-12 for equal inputs


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def kid(fake: np.ndarray, real: np.ndarray, subsets: int = 100, subset_size: int = 1000,
        rng: np.random.Generator | None = None) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018): the unbiased estimate of MMD^2
    with the kernel ``k(x, y) = (x.y / d + 1)^3``, averaged over random subsets.

    Each subset draws ``m = min(subset_size, len(fake), len(real))`` rows of each set without
    replacement; within a set the diagonal ``k(x_i, x_i)`` is left out, which makes the
    estimate unbiased (it can be negative when the sets match).

    Returns:
        The mean and the standard deviation of the estimates over the subsets.

    Raises:
        ValueError: for fewer than 2 rows in a set, mismatched widths, or ``subsets < 1``.
    """
    x, y = _as_matrix(fake, "fake"), _as_matrix(real, "real")
    check_same_width(x, y)
    if subsets < 1:
        raise ValueError(f"subsets must be at least 1, got {subsets}")
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise ValueError(f"KID needs at least 2 feature vectors in each set, got {len(x)} "
                         f"generated and {len(y)} real")
    rng = rng if rng is not None else np.random.default_rng(0)
    d = x.shape[1]
    estimates = np.empty(subsets)
    for i in range(subsets):
        a = x[rng.choice(len(x), m, replace=False)]
        b = y[rng.choice(len(y), m, replace=False)]
        k_xx = (a @ a.T / d + 1.0) ** 3
        k_yy = (b @ b.T / d + 1.0) ** 3
        k_xy = (a @ b.T / d + 1.0) ** 3
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        estimates[i] = within - 2.0 * k_xy.mean()
    return float(estimates.mean()), float(estimates.std())


def inception_score(logits: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """Inception Score (Salimans et al. 2016): ``exp(E_x KL(p(y|x) || p(y)))``.

    ``p(y|x)`` is the softmax of ``logits``; the images are cut into ``splits`` consecutive
    parts, ``p(y)`` is each part's mean prediction, and the score is computed per part.

    Returns:
        The mean and the standard deviation of the score over the parts.

    Raises:
        ValueError: for fewer rows than splits, or ``splits < 1``.
    """
    z = _as_matrix(logits, "logits")
    if not 1 <= splits <= len(z):
        raise ValueError(f"splits must be between 1 and the number of images ({len(z)}), "
                         f"got {splits}")
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))  # log-softmax, finite everywhere
    p = np.exp(log_p)
    bounds = np.linspace(0, len(z), splits + 1).round().astype(int)
    scores = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        part, log_part = p[start:stop], log_p[start:stop]
        log_marginal = np.log(part.mean(axis=0))
        kl = (part * (log_part - log_marginal)).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def precision_recall(fake: np.ndarray, real: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    Each point's radius is the distance to its ``k``-th nearest neighbour within its own
    set. Precision is the fraction of generated points inside at least one real point's
    ball; recall the fraction of real points inside at least one generated point's ball.
    Distances are computed in blocks, so 10k x 10k sets need tens of megabytes, not gigabytes.

    Raises:
        ValueError: for sets of at most ``k`` points, mismatched widths, or ``k < 1``.
    """
    x, y = _as_matrix(fake, "fake"), _as_matrix(real, "real")
    check_same_width(x, y)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if min(len(x), len(y)) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} feature vectors "
                         f"in each set, got {len(x)} generated and {len(y)} real")
    radii_fake, radii_real = _knn_radii2(x, k), _knn_radii2(y, k)
    precision = _inside_any_ball(x, y, radii_real).mean()
    recall = _inside_any_ball(y, x, radii_fake).mean()
    return float(precision), float(recall)


def per_class_fid(fake: np.ndarray, fake_labels: np.ndarray, real: np.ndarray,
                  real_labels: np.ndarray, num_classes: int,
                  class_names: Sequence[str] | None = None) -> np.ndarray:
    """The FID between the generated and the real features of each class ``0 .. k-1``.

    Their mean is the intra-FID of Miyato and Koyama (2018): how well the generator makes
    each class, rather than the whole mixture.

    Returns:
        float64 ``(num_classes,)``: class ``c``'s FID at index ``c``.

    Raises:
        ValueError: mismatched widths or labels, or a class with fewer than 2 feature
            vectors on either side.
    """
    x, y = _as_matrix(fake, "fake"), _as_matrix(real, "real")
    check_same_width(x, y)
    a_labels = _as_labels(fake_labels, len(x), num_classes, "generated")
    b_labels = _as_labels(real_labels, len(y), num_classes, "real")
    values = np.empty(num_classes)
    for c in range(num_classes):
        a, b = x[a_labels == c], y[b_labels == c]
        if len(a) < 2 or len(b) < 2:
            name = class_names[c] if class_names is not None else str(c)
            raise ValueError(f"class '{name}' has {len(a)} generated and {len(b)} real images; "
                             f"its FID needs at least 2 of each (score more images)")
        values[c] = frechet_distance(*statistics(a), *statistics(b))
    return values


def per_class_accuracy(logits: np.ndarray, labels: np.ndarray, num_classes: int,
                       class_names: Sequence[str] | None = None) -> np.ndarray:
    """The fraction of the images of each class ``c`` whose largest logit is column ``c``.

    ``logits`` may have more columns than classes (a classifier that knows more classes):
    an image classified as one of those counts as wrong.

    Returns:
        float64 ``(num_classes,)``: class ``c``'s accuracy at index ``c``.

    Raises:
        ValueError: fewer logit columns than classes, mismatched labels, or a class with
            no images.
    """
    z = _as_matrix(logits, "logits")
    if z.shape[1] < num_classes:
        raise ValueError(f"the logits have {z.shape[1]} columns, fewer than the {num_classes} "
                         f"classes")
    y = _as_labels(labels, len(z), num_classes, "generated")
    predicted = z.argmax(axis=1)
    values = np.empty(num_classes)
    for c in range(num_classes):
        mine = y == c
        if not mine.any():
            name = class_names[c] if class_names is not None else str(c)
            raise ValueError(f"no image of class '{name}' was scored (score more images)")
        values[c] = (predicted[mine] == c).mean()
    return values


def _as_labels(labels: np.ndarray, n: int, num_classes: int, side: str) -> np.ndarray:
    y = np.asarray(labels)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"the {side} labels must be {n} integer class indices, got "
                         f"{y.dtype} of shape {y.shape}")
    if n and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"the {side} labels must lie in 0..{num_classes - 1}, got "
                         f"{y.min()}..{y.max()}")
    return y


def _blocks(rows: int, columns: int):
    step = max(1, _DISTANCE_BLOCK // max(columns, 1))
    for start in range(0, rows, step):
        yield slice(start, min(start + step, rows))


def _squared_distances(a: np.ndarray, b: np.ndarray, b_norms: np.ndarray) -> np.ndarray:
    d2 = (a * a).sum(axis=1)[:, None] + b_norms[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d2, 0.0, out=d2)


def _knn_radii2(points: np.ndarray, k: int) -> np.ndarray:
    """The squared distance of each point to its k-th nearest other point."""
    norms = (points * points).sum(axis=1)
    radii = np.empty(len(points))
    for rows in _blocks(len(points), len(points)):
        d2 = _squared_distances(points[rows], points, norms)
        d2[np.arange(d2.shape[0]), np.arange(rows.start, rows.stop)] = 0.0  # itself, exactly
        radii[rows] = np.partition(d2, k, axis=1)[:, k]  # index 0 is the point itself
    return radii


def _inside_any_ball(queries: np.ndarray, centres: np.ndarray, radii2: np.ndarray) -> np.ndarray:
    norms = (centres * centres).sum(axis=1)
    inside = np.zeros(len(queries), dtype=bool)
    for rows in _blocks(len(queries), len(centres)):
        inside[rows] = (_squared_distances(queries[rows], centres, norms) <= radii2).any(axis=1)
    return inside


def _as_matrix(values: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n, d), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return x


def check_same_width(x: np.ndarray, y: np.ndarray) -> None:
    """Raise ValueError unless the two feature arrays have the same width."""
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"the generated and real features differ in width: {x.shape[1]} and "
                         f"{y.shape[1]}; were they made by different extractors?")
