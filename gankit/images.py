"""Turning model outputs into PNG files: single images and grids."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np


SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")
"""Pillow modes of 16-bit (or 32-bit integer) greyscale images."""


def to_eight_bits(image):
    """A 16-bit greyscale Pillow image as 8-bit "L", ``round(v / 257)``: Pillow's own
    conversion clips every value above 255 to white."""
    from PIL import Image

    values = np.asarray(image).astype(np.int64).clip(0, 65535)
    return Image.fromarray(((values + 128) // 257).astype(np.uint8))


def to_uint8(images: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """Map float images from ``value_range`` to 0..255, clipping what falls outside."""
    lo, hi = value_range
    scaled = (np.asarray(images, dtype=np.float32) - lo) / (hi - lo) * 255.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def make_grid(images: np.ndarray, columns: int | None = None, padding: int = 1) -> np.ndarray:
    """Tile uint8 images ``(n, h, w, c)`` into one image, row by row, with a white gap."""
    n, h, w, c = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.full((rows * (h + padding) + padding, columns * (w + padding) + padding, c),
                   255, dtype=np.uint8)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        grid[y:y + h, x:x + w] = image
    return grid


def save_png(image: np.ndarray, path: str | Path, upscale: int = 1) -> Path:
    """Write a uint8 ``(h, w, c)`` image as PNG atomically (a temp file, then a rename)."""
    from PIL import Image

    path = Path(path)
    if image.shape[-1] == 1:
        image = image[..., 0]
    picture = Image.fromarray(image)
    if upscale > 1:
        picture = picture.resize((picture.width * upscale, picture.height * upscale),
                                 Image.NEAREST)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    picture.save(tmp, format="PNG")
    os.replace(tmp, path)
    return path
