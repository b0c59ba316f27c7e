"""``gankit sample RUN --walk N``: latent walks, as PNG strips or an animated GIF.

Each of the ``N`` walks goes along the great circle (spherical interpolation, as for
Gaussian latents) from one random latent vector to the next, in ``steps`` images; the
walks are chained, so walk ``i`` ends where walk ``i + 1`` starts. For a class-conditional
run, one more row per walk is not possible with a discrete label, so the rows of the PNG
are instead the class sweep: row ``c`` draws the same latents as class ``c`` (the first
walk's latents, so a column is one latent vector drawn as each class).

A ``.png`` output is one row per walk (or per class), ``steps`` images wide; a ``.gif``
output is an animation of ``steps`` frames, each a row of the ``N`` walks at that point
(for a conditional run, of the classes), going there and back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gankit.errors import GankitError
from gankit.util.latents import draw_latents

MAX_WALKS = 32
MAX_STEPS = 64


def check_walk(walks: int, steps: int, out: str | Path | None) -> None:
    """Raise GankitError for a walk request the arguments alone make wrong."""
    if not 1 <= walks <= MAX_WALKS:
        raise GankitError(f"--walk must be between 1 and {MAX_WALKS}, got {walks}")
    if not 2 <= steps <= MAX_STEPS:
        raise GankitError(f"--steps must be between 2 and {MAX_STEPS}, got {steps}")
    if out is not None and Path(out).suffix.lower() not in (".png", ".gif"):
        raise GankitError(f"--out {out}: a walk is written as .png strips or a .gif animation")


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between latent vectors ``a`` and ``b`` at fractions ``t``
    (linear where the two are (anti)parallel)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    cos = np.dot(a64, b64) / (np.linalg.norm(a64) * np.linalg.norm(b64))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    t = np.asarray(t, np.float64)[:, None]
    if np.sin(omega) < 1e-6:
        out = (1 - t) * a64 + t * b64
    else:
        out = (np.sin((1 - t) * omega) * a64 + np.sin(t * omega) * b64) / np.sin(omega)
    return out.astype(np.float32)


def walk_latents(walks: int, steps: int, latent_dim: int, seed: int,
                 truncation: float | None = None) -> np.ndarray:
    """``(walks, steps, latent_dim)``: chained spherical walks between seeded latents
    (with ``truncation``, ends drawn truncated; the points between keep to the great
    circle, so a value there may exceed the truncation by up to the factor the spherical
    interpolation lengthens by)."""
    ends = draw_latents(np.random.default_rng(seed), (walks + 1, latent_dim), truncation)
    t = np.linspace(0.0, 1.0, steps)
    return np.stack([slerp(ends[i], ends[i + 1], t) for i in range(walks)])


def draw_walk(plan, walks: int, steps: int) -> Path:
    """Generate and write the walk of a checked :class:`gankit.app.sample.SamplePlan`."""
    from gankit.app.sample import load_model
    from gankit.util.images import label_rows, save_png, to_uint8

    generator = plan.recipe.create("generator")
    value_range = tuple(plan.recipe.create("dataset").value_range)
    model = load_model(plan, generator)
    latents = walk_latents(walks, steps, generator.latent_dim, plan.seed, plan.truncation)
    classes = generator.num_classes
    if classes:
        # Rows are the classes: the first walk's latents drawn as each class in turn.
        row_latents = np.repeat(latents[:1], classes, axis=0)
        labels = np.repeat(np.arange(classes, dtype=np.int32)[:, None], steps, axis=1)
        if plan.label is not None:
            row_latents, labels = latents, np.full((walks, steps), plan.label, np.int32)
    else:
        row_latents, labels = latents, None
    rows, cols = row_latents.shape[:2]
    flat = row_latents.reshape(rows * cols, -1)
    inputs = flat if labels is None else [flat, labels.reshape(-1)]
    images = to_uint8(np.asarray(model(inputs, training=False), np.float32), value_range)
    h, w, c = images.shape[1:]
    images = images.reshape(rows, cols, h, w, c)
    out = plan.out
    out.parent.mkdir(parents=True, exist_ok=True)
    names = plan.class_names if classes and plan.label is None else None
    try:
        if out.suffix.lower() == ".gif":
            return _gif(images, out, names)
        grid = _strips(images)
        if names:
            return save_png(label_rows(grid, names, upscale=2), out, upscale=1)
        return save_png(grid, out, upscale=2)
    except OSError as exc:
        raise GankitError(f"cannot write {out}: {exc.strerror or exc}; choose another "
                          f"--out") from None


def _strips(images: np.ndarray) -> np.ndarray:
    rows, cols, h, w, c = images.shape
    grid = np.full((rows * (h + 1) + 1, cols * (w + 1) + 1, c), 255, np.uint8)
    for r in range(rows):
        for k in range(cols):
            grid[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + k * (w + 1):1 + k * (w + 1) + w] = \
                images[r, k]
    return grid


def _gif(images: np.ndarray, out: Path, names) -> Path:
    """Frames: at each step, a row of every walk (or class) there; forth and back."""
    from PIL import Image

    from gankit.util.atomic import write_bytes

    rows, cols, h, w, c = images.shape
    scale = max(1, 96 // max(h, w))
    frames = []
    for k in [*range(cols), *range(cols - 2, 0, -1)]:
        frame = np.full((h + 2, rows * (w + 1) + 1, c), 255, np.uint8)
        for r in range(rows):
            frame[1:1 + h, 1 + r * (w + 1):1 + r * (w + 1) + w] = images[r, k]
        picture = Image.fromarray(frame[..., 0] if c == 1 else frame)
        frames.append(picture.resize((picture.width * scale, picture.height * scale),
                                     Image.NEAREST))
    import io

    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:],
                   duration=80, loop=0)
    write_bytes(out, buffer.getvalue())
    return out
