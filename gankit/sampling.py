"""``gankit sample``: a grid of images from a run's generator.

The generator is rebuilt from the run's own ``recipe.yaml`` and given the weights of a
checkpoint (the newest usable one, or the step asked for), from the EMA copy when the run
keeps one; a run without checkpoints falls back to its saved ``generator_ema.keras`` or
``generator.keras``. The latents come from ``numpy`` seeded with ``seed``, so the same run,
checkpoint and seed always give the same picture.

Everything that needs no TensorFlow (the arguments, the run folder, its recipe) is checked
first, so a mistake is answered at once.
"""

from __future__ import annotations

import math
import sys
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gankit.checkpoints import CheckpointStore, CheckpointWarning
from gankit.errors import GankitError, TrainingError
from gankit.images import save_png, to_uint8
from gankit.recipe import Recipe, load_raw, validate
from gankit.registry import Registry
from gankit.run_dir import RunDir

MAX_IMAGES = 10_000
"""The most images one grid may hold (a 100 x 100 grid)."""
_BATCH = 256  # latents per generator call, so a large -n does not need one huge batch


@dataclass(frozen=True)
class SamplePlan:
    """A checked request: which run, recipe, how many images, where to write."""

    run: RunDir
    recipe: Recipe
    n: int
    seed: int
    checkpoint: int | None
    out: Path
    use_ema: bool
    best: bool = False


def plan_sample(run_dir: str | Path, n: int = 64, seed: int = 0, checkpoint: int | None = None,
                out: str | Path | None = None, registry: Registry | None = None,
                use_ema: bool = True, best: bool = False) -> SamplePlan:
    """Check a sampling request without TensorFlow.

    Raises:
        GankitError: a bad ``n`` or ``seed``, not a run directory, a recipe that no longer
            validates, or an output path that cannot be written.
    """
    if not 1 <= n <= MAX_IMAGES:
        raise GankitError(f"-n must be between 1 and {MAX_IMAGES:,}, got {n}")
    if not 0 <= seed < 2 ** 63:
        raise GankitError(f"--seed must be between 0 and 2**63 - 1, got {seed}")
    run = RunDir(run_dir)
    if not run.path.is_dir():
        what = "is not a directory" if run.path.exists() else "does not exist"
        raise GankitError(f"{run.path} {what}; expected a gankit run directory")
    run.check_existing()
    if registry is None:
        from gankit.plugins import default_plugins
        registry = default_plugins().registry
    recipe = validate(load_raw(run.recipe_file), registry, source=str(run.recipe_file))
    path = Path(out) if out is not None else run.samples / f"sample_seed{seed}.png"
    if path.is_dir():
        raise GankitError(f"--out {path} is a directory; name a .png file")
    if not path.parent.is_dir() and path.parent.exists():
        raise GankitError(f"cannot write {path}: {path.parent} is not a directory")
    if best and checkpoint is not None:
        raise GankitError("--best and --checkpoint exclude each other")
    if best and not (run.path / "best").is_dir():
        raise GankitError(f"{run.path} has no best/ generator: it is kept by a recipe with a "
                          f"metrics section, once a metric has been measured")
    return SamplePlan(run, recipe, n, seed, checkpoint, path, use_ema, best)


def sample_grid(run_dir: str | Path, n: int = 64, seed: int = 0, checkpoint: int | None = None,
                out: str | Path | None = None, registry: Registry | None = None,
                use_ema: bool = True, progress: bool = False) -> Path:
    """Draw ``n`` images from a run's generator and save them as one PNG grid.

    Args:
        run_dir: a run directory (it holds ``recipe.yaml``).
        n: how many images the grid shows (1 .. :data:`MAX_IMAGES`).
        seed: seed of the latent vectors.
        checkpoint: the step of the checkpoint to use; None: the newest usable checkpoint,
            else the run's saved generator.
        out: the PNG to write; default ``RUN_DIR/samples/sample_seed<seed>.png``.
        registry: where the recipe's components are looked up; default: installed plugins.
        use_ema: use the EMA copy of the generator when the run keeps one.
        progress: print a progress line per batch on stderr (for large ``n``).

    Returns:
        The path of the written PNG.

    Raises:
        GankitError: see :func:`plan_sample`; also no such checkpoint, nothing to sample
            from, or an output file that cannot be written.
    """
    return draw(plan_sample(run_dir, n, seed, checkpoint, out, registry, use_ema), progress)


def draw(plan: SamplePlan, progress: bool = False) -> Path:
    """Generate and write the grid a :class:`SamplePlan` describes."""
    generator = plan.recipe.create("generator")
    value_range = tuple(plan.recipe.create("dataset").value_range)
    ema = plan.use_ema and plan.recipe.ema is not None
    if plan.best:
        model = load_saved(plan.run, plan.run.path / "best" /
                           ("generator_ema.keras" if ema else "generator.keras"))
    else:
        model = load_generator(plan.run, generator, plan.checkpoint, ema=ema)
    rng = np.random.default_rng(plan.seed)
    h, w, c = generator.image_shape
    columns = math.ceil(math.sqrt(plan.n))
    rows = math.ceil(plan.n / columns)
    grid = np.full((rows * (h + 1) + 1, columns * (w + 1) + 1, c), 255, dtype=np.uint8)
    classes = generator.num_classes
    for start in range(0, plan.n, _BATCH):
        count = min(_BATCH, plan.n - start)
        latents = rng.standard_normal((count, generator.latent_dim)).astype(np.float32)
        inputs = latents
        if classes:
            inputs = [latents, (np.arange(start, start + count) % classes).astype(np.int32)]
        images = to_uint8(np.asarray(model(inputs, training=False), dtype=np.float32), value_range)
        for i, image in enumerate(images):
            r, col = divmod(start + i, columns)
            y, x = 1 + r * (h + 1), 1 + col * (w + 1)
            grid[y:y + h, x:x + w] = image
        if progress:
            print(f"gankit: sampled {start + count}/{plan.n}", file=sys.stderr, flush=True)
    try:
        plan.out.parent.mkdir(parents=True, exist_ok=True)
        return save_png(grid, plan.out, upscale=2)
    except OSError as exc:
        raise GankitError(f"cannot write {plan.out}: {exc.strerror or exc}; choose another "
                          f"--out") from None


def load_generator(run: RunDir, generator, step: int | None, ema: bool = False):
    """The generator model (or its EMA copy) with the weights of checkpoint ``step``, the
    newest usable checkpoint, or the saved ``.keras`` file."""
    import tensorflow as tf

    name = "generator_ema" if ema else "generator"
    model = generator.build()

    def restore(ckpt) -> None:
        status = tf.train.Checkpoint(**{name: model}).read(ckpt.prefix).expect_partial()
        try:
            status.assert_existing_objects_matched()
        except AssertionError:
            raise ValueError(f"its {name} does not fit the generator the run's recipe builds; "
                             f"was recipe.yaml edited?") from None

    store = CheckpointStore(run.checkpoints)
    if step is not None:
        if step not in store.steps():
            available = ", ".join(map(str, store.steps())) or "none"
            raise GankitError(f"{run.path} has no checkpoint of step {step}; "
                              f"available steps: {available}")
        try:
            restore(store.load(step))
        except Exception as exc:  # noqa: BLE001 - a damaged checkpoint, in any of TF's forms
            raise GankitError(f"checkpoint {store.path(step)} is unusable: "
                              f"{str(exc).splitlines()[0][:300]}") from None
        return model
    saved = run.path / f"{name}.keras"
    try:
        found = store.load_latest(restore=restore)
    except TrainingError as exc:  # checkpoints exist, none is usable
        if not saved.is_file():
            raise
        warnings.warn(f"{exc}; using {saved}", CheckpointWarning, stacklevel=2)
        found = None
    if found is not None:
        return model
    return load_saved(run, saved)


def load_saved(run: RunDir, path: Path):
    """Load a saved ``.keras`` generator, with a clear error if it is missing or damaged."""
    if not path.is_file():
        raise GankitError(f"{run.path} has no checkpoint and no {path.name} yet; nothing to "
                          f"sample from")
    if not zipfile.is_zipfile(path):
        raise GankitError(f"cannot load {path}: the file is damaged or truncated (not a "
                          f"complete .keras archive)")
    import keras

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a damaged file
        raise GankitError(f"cannot load {path}: {str(exc).splitlines()[0][:300]}") from None
