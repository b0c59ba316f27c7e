"""The latent vectors gankit's tools feed a generator: standard normal, or truncated.

Every generator of gankit trains on latents drawn from the standard normal distribution.
After training, drawing them from a normal distribution **truncated** to ``[-t, t]`` (the
"truncation trick" of BigGAN, Brock, Donahue and Simonyan 2019, section 3.1) trades variety
for typical images: the generator is shown only latents near the middle of what it trained
on, where it has learned the most. ``t`` around 2 changes little; 1 and below makes the
images plainer and more alike; FID usually rises as the variety falls (precision up, recall
down, in ``precision_recall``'s terms).

The truncated latents are an inverse-CDF transform of uniform numbers, one per value:
``z = Phi^-1(Phi(-t) + u (Phi(t) - Phi(-t)))`` with ``u`` uniform in [0, 1). The same seed
therefore gives the same ``u`` at every ``t``: a smaller ``t`` pulls the same latent vector
towards the middle (each value keeps its sign and rank), so grids at several truncations
show the same images growing plainer. The values are drawn in order, so drawing a batch at
a time gives the same latents as drawing them all at once. Untruncated latents are
``rng.standard_normal``, as before truncation existed (the same seeds give the same grids).

Pure numpy: no TensorFlow.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

MIN_TRUNCATION = 0.01
MAX_TRUNCATION = 10.0
"""The truncations accepted: below 0.01 every latent is all but 0 (one image, repeated);
above 10 nothing is cut (a standard normal value beyond 10 has probability 1.5e-23)."""


def truncation_problem(truncation: float | None) -> str | None:
    """Why ``truncation`` is not a usable truncation (a sentence fragment), or None."""
    if truncation is None:
        return None
    if isinstance(truncation, bool) or not isinstance(truncation, numbers.Real):
        return f"expected a number, got {truncation!r}"
    if not MIN_TRUNCATION <= truncation <= MAX_TRUNCATION:  # also NaN
        return (f"must be between {MIN_TRUNCATION:g} and {MAX_TRUNCATION:g} (the latents' "
                f"largest magnitude; 1 to 2 is usual), got {float(truncation):g}")
    return None


def draw_latents(rng: np.random.Generator, shape: tuple[int, ...],
                 truncation: float | None = None) -> np.ndarray:
    """``shape`` float32 latent values from ``rng``: standard normal, or with
    ``truncation`` t, standard normal truncated to ``[-t, t]`` (see the module's doc).

    Raises:
        ValueError: a truncation :func:`truncation_problem` refuses.
    """
    if truncation is None:
        return rng.standard_normal(shape).astype(np.float32)
    problem = truncation_problem(truncation)
    if problem is not None:
        raise ValueError(f"truncation {problem}")
    truncation = float(truncation)
    low = 0.5 * math.erfc(truncation / math.sqrt(2.0))  # Phi(-t), exact in the far tail
    p = low + rng.random(shape) * (1.0 - 2.0 * low)
    z = normal_quantile(p)
    return np.clip(z, -truncation, truncation).astype(np.float32)  # the last ulp of rounding


# Acklam's rational approximation of the standard normal quantile (relative error below
# 1.2e-9 over (0, 1)): a central rational function, and one in sqrt(-2 log p) for the tails.
_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
      1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00)
_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
      6.680131188771972e+01, -1.328068155288572e+01, 1.0)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
      -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
      3.754408661907416e+00, 1.0)
_TAIL = 0.02425


def normal_quantile(p: np.ndarray) -> np.ndarray:
    """The standard normal quantile ``Phi^-1(p)`` of each ``p`` in (0, 1), in float64."""
    p = np.asarray(p, dtype=np.float64)
    # Symmetric: compute on the lower half and flip, so both tails are equally accurate.
    lower = np.minimum(p, 1.0 - p)
    out = np.empty_like(p)
    centre = lower >= _TAIL
    q = lower[centre] - 0.5
    r = q * q
    out[centre] = q * np.polyval(_A, r) / np.polyval(_B, r)
    tail = ~centre
    s = np.sqrt(-2.0 * np.log(lower[tail]))
    out[tail] = np.polyval(_C, s) / np.polyval(_D, s)
    return np.where(p > 0.5, -out, out)
