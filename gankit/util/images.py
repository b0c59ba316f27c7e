"""Turning model outputs into PNG files: single images and grids."""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from gankit.util import atomic

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
    """Write a uint8 ``(h, w, c)`` image as PNG atomically and durably
    (:func:`gankit.util.atomic.write_bytes`)."""
    from PIL import Image

    path = Path(path)
    if image.shape[-1] == 1:
        image = image[..., 0]
    picture = Image.fromarray(image)
    if upscale > 1:
        picture = picture.resize((picture.width * upscale, picture.height * upscale),
                                 Image.NEAREST)
    encoded = io.BytesIO()
    picture.save(encoded, format="PNG")
    atomic.write_bytes(path, encoded.getvalue())
    return path


MAX_ROW_LABEL = 24
"""Characters of a class name written beside a grid row; longer names are cut with '...'."""


def label_rows(grid: np.ndarray, names, padding: int = 1, upscale: int = 2) -> np.ndarray:
    """A grid (from :func:`make_grid`) drawn ``upscale`` times larger, with ``names[r]``
    written in a white margin left of row ``r``, in Pillow's default font.

    The text is drawn at the final size (not upscaled with the images), so it stays sharp
    and readable beside rows of 32x32 images.

    Args:
        grid: uint8 ``(h, w, c)``, ``len(names)`` rows of equal height with ``padding``
            pixels between and around them.
        names: one label per row.
        padding: the gap :func:`make_grid` left between rows.
        upscale: the factor the grid is enlarged by (nearest neighbour).

    Returns:
        uint8 ``(h * upscale, margin + w * upscale, c)``; save it with ``upscale=1``.
    """
    from PIL import Image, ImageDraw, ImageFont

    names = [_short_label(str(n)) for n in names]
    rows = len(names)
    height, width, channels = grid.shape
    row_height = (height - padding) // max(rows, 1) * upscale  # one image and one gap
    font = ImageFont.load_default(size=max(10, min(row_height // 4, 24)))
    mode = "L" if channels == 1 else "RGB"
    probe = ImageDraw.Draw(Image.new(mode, (1, 1)))
    names = [_drawable(probe, font, n) for n in names]
    text_width = max((probe.textbbox((0, 0), n, font=font)[2] for n in names), default=0)
    margin = text_width + 2 * (4 + padding * upscale)
    big = np.repeat(np.repeat(grid, upscale, axis=0), upscale, axis=1)
    canvas = Image.new(mode, (margin + big.shape[1], big.shape[0]), 255 if mode == "L" else
                       (255, 255, 255))
    canvas.paste(Image.fromarray(big[..., 0] if channels == 1 else big), (margin, 0))
    draw = ImageDraw.Draw(canvas)
    for r, name in enumerate(names):
        middle = (padding + r * (row_height // upscale) + (row_height // upscale - padding) / 2) \
            * upscale
        draw.text((margin - 4 - padding * upscale, middle), name, font=font, anchor="rm",
                  fill=0 if mode == "L" else (0, 0, 0))
    out = np.asarray(canvas)
    return out[..., None] if channels == 1 else out


def _short_label(name: str) -> str:
    return name if len(name) <= MAX_ROW_LABEL else name[:MAX_ROW_LABEL - 3] + "..."


def _drawable(draw, font, name: str) -> str:
    """``name``, or its ASCII form when the font cannot encode it (Pillow's bitmap font)."""
    try:
        draw.textbbox((0, 0), name, font=font)
        return name
    except UnicodeError:
        return name.encode("ascii", "replace").decode()


# --- opening image files that anyone may have put in a folder -------------------------------

MAX_IMAGE_PIXELS = 89_478_485
"""The most pixels an image file may have to be decoded (Pillow's own decompression-bomb
threshold, which ``image_folder`` also applies): a 1.7 MB PNG of 12000x12000 would take 6 GB."""

_SIGNATURES = {"PNG": (b"\x89PNG\r\n\x1a\n",), "JPEG": (b"\xff\xd8\xff",)}


class UnreadableImage(ValueError):
    """An image file that is not decoded: the message is the reason, without the path."""


@contextlib.contextmanager
def open_image(path: str | Path) -> Iterator[Any]:
    """A Pillow image of a PNG or JPEG file, opened (header read, nothing decoded) under one
    policy: a regular file (a FIFO named x.png does not block), whose first bytes are the
    signature of a PNG or a JPEG (a GIF or a WEBP named .png is refused, as is an empty
    file), of at most ``MAX_IMAGE_PIXELS`` pixels. Use it as a context manager.

    Raises:
        UnreadableImage: why it is not opened.
    """
    import os
    import stat
    import warnings

    from PIL import Image

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise UnreadableImage(f"cannot be opened ({exc.strerror or exc})") from None
    handle = os.fdopen(fd, "rb")
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UnreadableImage("is not a regular file")
        head = handle.read(8)
        kind = next((k for k, sigs in _SIGNATURES.items() if head.startswith(sigs)), None)
        if kind is None:
            what = "is empty" if not head else "is not a PNG or JPEG file (by its first bytes)"
            raise UnreadableImage(what)
        handle.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                image = Image.open(handle, formats=(kind,))
            except Image.DecompressionBombError:
                image = None
            except (OSError, SyntaxError, ValueError, EOFError) as exc:
                raise UnreadableImage(f"is not a readable {kind} image ({type(exc).__name__}: "
                                      f"{exc})") from None
        if image is None or image.width * image.height > MAX_IMAGE_PIXELS:
            size = f"{image.width}x{image.height}" if image is not None else "its size"
            raise UnreadableImage(f"is too large to decode safely ({size} is more than "
                                  f"{MAX_IMAGE_PIXELS:,} pixels); scale it down")
        with image:
            yield image
    finally:
        handle.close()
