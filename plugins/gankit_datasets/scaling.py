"""The ``scale`` parameter shared by the built-in datasets: from uint8 pixels to floats, and
the base of the datasets that take it."""

from __future__ import annotations

from typing import Sequence

import numpy as np

import gankit
from gankit.errors import RecipeError
from gankit.params import Param

SCALE_PARAM = Param(
    list, default=[0.0, 1.0], item_type=float, length=2,
    doc="the [low, high] range pixel values are scaled into: [0, 1] divides by 255, "
        "[-1, 1] matches a tanh generator")


def check_scale(scale: Sequence[float], path: str = "dataset.scale") -> tuple[float, float]:
    """Return ``scale`` as ``(low, high)``.

    Raises:
        RecipeError: if ``low`` is not below ``high``.
    """
    low, high = (float(v) for v in scale)
    if not low < high:
        raise RecipeError(f"expected [low, high] with low < high, got [{low}, {high}]", path=path)
    return low, high


def scale_pixels(pixels: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """Map uint8 pixels (0..255) linearly onto ``value_range`` as float32.

    For ``(0.0, 1.0)`` the result is bit-identical to ``pixels.astype("float32") / 255.``,
    the scaling of the original Keras examples.
    """
    images = pixels.astype(np.float32) / np.float32(255.0)
    low, high = value_range
    if (low, high) != (0.0, 1.0):
        images *= np.float32(high - low)
        images += np.float32(low)
    return images


class ScaledDataset(gankit.Dataset):
    """A dataset of uint8 pixels scaled into its ``scale`` parameter (checked when it is
    made), of the ``height`` x ``width`` x ``channels`` its parameters give."""

    def __init__(self, **config) -> None:
        super().__init__(**config)
        self._value_range = check_scale(self.config["scale"])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.config["height"], self.config["width"], self.config["channels"])

    @property
    def value_range(self) -> tuple[float, float]:
        return self._value_range
