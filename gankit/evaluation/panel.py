"""The panel of ``gankit evaluate --nearest K``: one row per generated image, then its ``K``
nearest real images in features, then (past a separator) its ``K`` nearest in pixels, each
neighbour captioned with its distance.

::

               generated | nearest in features  | nearest in pixels
    row 0      [g0]      | [f] [f] [f] [f]      | [p] [p] [p] [p]
               #0        |  d   d   d   d       |  d   d   d   d

Small images are enlarged by a whole factor with nearest-neighbour (32x32 to 96x96), so
their pixels stay visible; images above 128 pixels are reduced by a whole factor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

GAP = 2  # white pixels between images
GROUP_GAP = 12  # between the groups, with a separator line in the middle
LINE = 2  # the separator's width
MARGIN = 4
HEADER = 20  # the titles' strip
CAPTION = 14  # the distance under each image
CELL = 96  # small images are enlarged towards this size
LARGEST = 128  # larger ones are reduced to at most this size


@dataclass(frozen=True)
class PanelLayout:
    """Where each image of a panel of ``rows`` generated images and ``k`` neighbours in each
    space goes, for cells of ``cell_h`` x ``cell_w`` pixels."""

    rows: int
    k: int
    cell_h: int
    cell_w: int

    @property
    def columns(self) -> int:
        """Images per row: the generated one and ``k`` in each of the two spaces."""
        return 1 + 2 * self.k

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` of the whole panel."""
        group = self.k * self.cell_w + (self.k - 1) * GAP
        width = 2 * MARGIN + self.cell_w + 2 * (GROUP_GAP + group)
        height = HEADER + self.rows * (self.cell_h + CAPTION) + (self.rows - 1) * GAP + MARGIN
        return height, width

    def cell(self, row: int, column: int) -> tuple[int, int]:
        """``(y, x)`` of the top left of an image: column 0 the generated image, 1..k its
        nearest in features, k+1..2k its nearest in pixels."""
        y = HEADER + row * (self.cell_h + CAPTION + GAP)
        x = MARGIN
        if column >= 1:
            x += self.cell_w + GROUP_GAP + (column - 1) * (self.cell_w + GAP)
        if column >= self.k + 1:
            x += GROUP_GAP - GAP
        return y, x

    def separators(self) -> list[int]:
        """The x of each separator line (before the features' and the pixels' groups)."""
        return [self.cell(0, c)[1] - GROUP_GAP // 2 - LINE // 2 for c in (1, self.k + 1)]


def cell_scale(height: int, width: int) -> tuple[int, int]:
    """``(up, down)``: whole factors a ``height`` x ``width`` image is enlarged or reduced
    by in the panel (one of them 1)."""
    side = max(height, width)
    if side > LARGEST:
        return 1, math.ceil(side / LARGEST)
    return max(1, CELL // side), 1


def draw_panel(generated: np.ndarray, features: np.ndarray, feature_distances: np.ndarray,
               pixels: np.ndarray, pixel_distances: np.ndarray) -> np.ndarray:
    """The panel as uint8 RGB ``(height, width, 3)``.

    Args:
        generated: ``(rows, h, w, c)`` images in ``[0, 1]``.
        features, pixels: ``(rows, k, h, w, c)``: each generated image's nearest real images
            in features and in pixels, nearest first.
        feature_distances, pixel_distances: ``(rows, k)``, written under the images.
    """
    from PIL import Image, ImageDraw, ImageFont

    rows, k = features.shape[:2]
    up, down = cell_scale(*generated.shape[1:3])
    cells = [[_cell(generated[r], up, down)] + [_cell(features[r, j], up, down) for j in range(k)]
             + [_cell(pixels[r, j], up, down) for j in range(k)] for r in range(rows)]
    layout = PanelLayout(rows, k, *cells[0][0].shape[:2])
    height, width = layout.size
    canvas = np.full((height, width, 3), 255, np.uint8)
    for x in layout.separators():
        canvas[MARGIN:, x:x + LINE] = 96
    for r, row in enumerate(cells):
        for c, image in enumerate(row):
            y, x = layout.cell(r, c)
            canvas[y:y + layout.cell_h, x:x + layout.cell_w] = image
    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=11)
    group = k * layout.cell_w + (k - 1) * GAP
    for column, title, short, span in ((0, "generated", "gen.", layout.cell_w),
                                       (1, "nearest in features", "features", group),
                                       (k + 1, "nearest in pixels", "pixels", group)):
        text = title if draw.textlength(title, font=font) <= span else short
        x = layout.cell(0, column)[1] + span / 2
        draw.text((x, HEADER / 2), text, font=font, fill=(0, 0, 0), anchor="mm")
    for r in range(rows):
        captions = [f"#{r}", *(_distance(d) for d in feature_distances[r]),
                    *(_distance(d) for d in pixel_distances[r])]
        for c, text in enumerate(captions):
            y, x = layout.cell(r, c)
            draw.text((x + layout.cell_w / 2, y + layout.cell_h + CAPTION / 2), text, font=font,
                      fill=(60, 60, 60), anchor="mm")
    return np.asarray(picture)


def _cell(image: np.ndarray, up: int, down: int) -> np.ndarray:
    """One image as uint8 RGB at its panel size."""
    pixels = np.clip(np.rint(np.asarray(image, np.float32) * 255.0), 0, 255).astype(np.uint8)
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    if down > 1:
        from PIL import Image

        picture = Image.fromarray(pixels)
        pixels = np.asarray(picture.reduce(down))
    return np.repeat(np.repeat(pixels, up, axis=0), up, axis=1)


def _distance(value: float) -> str:
    return "0" if value == 0 else f"{value:.3g}"
