"""Grids of several generators side by side, each under its title: the figure of
docs/frog_fast.md (the article's recipe and frog_fast.yaml after the same minutes).

    python benchmarks/frog_fast_grids.py --out grids.png \\
        "article, 1000 steps=RUN_A/snapshots/step_1000/generator.keras:0,1" \\
        "frog_fast, 15 min=RUN_B/generator_ema.keras"

Each panel is ``TITLE=GENERATOR.keras[:LOW,HIGH]``: the generator's output range (default
-1,1: a tanh; the article's generator ends in a sigmoid, 0,1). Every generator draws
``--rows`` x ``--columns`` images from latents of seed ``--seed``; generators with the same
latent length get the same latents.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def panel(spec: str, rows: int, columns: int, seed: int):
    import keras
    import numpy as np

    from gankit.util.images import make_grid, to_uint8

    title, _, rest = spec.partition("=")
    path, _, value_range = rest.partition(":")
    low, high = (float(v) for v in value_range.split(",")) if value_range else (-1.0, 1.0)
    generator = keras.saving.load_model(path, compile=False)
    latent = generator.inputs[0].shape[-1]
    z = np.random.default_rng(seed).standard_normal((rows * columns, latent)).astype("float32")
    images = np.asarray(generator(z, training=False), dtype=np.float32)
    return title, make_grid(to_uint8(images, (low, high)), columns=columns)


def compose(panels, upscale: int = 2):
    """The grids in a row, each upscaled and titled above, on white."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    images = [Image.fromarray(grid).resize((grid.shape[1] * upscale, grid.shape[0] * upscale),
                                           Image.NEAREST) for _, grid in panels]
    gap, title_height = 12, 18
    width = sum(im.width for im in images) + gap * (len(images) + 1)
    height = max(im.height for im in images) + title_height + 2 * gap
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    x = gap
    for (title, _), im in zip(panels, images):
        draw.text((x, gap // 2), title, fill="black", font=font)
        canvas.paste(im, (x, gap // 2 + title_height))
        x += im.width + gap
    return canvas


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("panels", nargs="+", metavar="TITLE=GENERATOR.keras[:LOW,HIGH]")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--columns", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    panels = [panel(spec, args.rows, args.columns, args.seed) for spec in args.panels]
    compose(panels).save(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
