"""``gankit sample``: a grid of images from a run's generator.

The generator is rebuilt from the run's own ``recipe.yaml`` and given the weights of a
checkpoint (the newest usable one, or the step asked for); a run without checkpoints falls
back to its saved ``generator.keras``. The latents come from ``numpy`` seeded with ``seed``,
so the same run, checkpoint and seed always give the same picture.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from gankit.checkpoints import CheckpointStore, CheckpointWarning
from gankit.errors import GankitError, TrainingError
from gankit.images import make_grid, save_png, to_uint8
from gankit.recipe import load_raw, validate
from gankit.registry import Registry
from gankit.run_dir import RunDir

_BATCH = 256  # latents per generator call, so a large -n does not need one huge batch


def sample_grid(run_dir: str | Path, n: int = 64, seed: int = 0, checkpoint: int | None = None,
                out: str | Path | None = None, registry: Registry | None = None) -> Path:
    """Draw ``n`` images from a run's generator and save them as one PNG grid.

    Args:
        run_dir: a run directory (it holds ``recipe.yaml``).
        n: how many images the grid shows (at least 1).
        seed: seed of the latent vectors (at least 0).
        checkpoint: the step of the checkpoint to use; None: the newest usable checkpoint,
            else the run's ``generator.keras``.
        out: the PNG to write; default ``RUN_DIR/samples/sample_seed<seed>.png``.
        registry: where the recipe's components are looked up; default: installed plugins.

    Returns:
        The path of the written PNG.

    Raises:
        GankitError: not a run directory, no such checkpoint, nothing to sample from, a bad
            ``n`` or ``seed``, or an output file that cannot be written.
    """
    if n < 1:
        raise GankitError(f"-n must be at least 1, got {n}")
    if seed < 0:
        raise GankitError(f"--seed must be 0 or more, got {seed}")
    run = RunDir(run_dir)
    if not run.path.is_dir():
        what = "is not a directory" if run.path.exists() else "does not exist"
        raise GankitError(f"{run.path} {what}; expected a gankit run directory")
    run.check_existing()
    if registry is None:
        from gankit.plugins import default_plugins
        registry = default_plugins().registry
    recipe = validate(load_raw(run.recipe_file), registry, source=str(run.recipe_file))
    generator = recipe.components["generator"].create()
    value_range = tuple(recipe.components["dataset"].create().value_range)

    model = _load_generator(run, generator, checkpoint)
    rng = np.random.default_rng(seed)
    latents = rng.standard_normal((n, generator.latent_dim)).astype(np.float32)
    images = np.concatenate([np.asarray(model(latents[i:i + _BATCH], training=False))
                             for i in range(0, n, _BATCH)])
    grid = make_grid(to_uint8(images, value_range))

    path = Path(out) if out is not None else run.samples / f"sample_seed{seed}.png"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return save_png(grid, path, upscale=2)
    except OSError as exc:
        raise GankitError(f"cannot write {path}: {exc.strerror or exc}; choose another "
                          f"--out") from None


def _load_generator(run: RunDir, generator, step: int | None):
    """The generator model with the weights of checkpoint ``step`` (or the newest usable
    one, or generator.keras)."""
    store = CheckpointStore(run.checkpoints)
    if step is not None:
        if step not in store.steps():
            available = ", ".join(map(str, store.steps())) or "none"
            raise GankitError(f"{run.path} has no checkpoint of step {step}; "
                              f"available steps: {available}")
        try:
            ckpt = store.load(step, groups=["generator"])
        except ValueError as exc:
            raise GankitError(f"checkpoint {store.path(step)} is unusable: {exc}") from None
        return _with_weights(generator.build(), ckpt.state["generator"], ckpt.path)
    try:
        ckpt = store.load_latest(groups=["generator"])
    except TrainingError as exc:  # checkpoints exist, none verifies
        if not run.generator_file.is_file():
            raise
        warnings.warn(f"{exc}; using {run.generator_file}", CheckpointWarning, stacklevel=2)
        ckpt = None
    if ckpt is not None:
        return _with_weights(generator.build(), ckpt.state["generator"], ckpt.path)
    if not run.generator_file.is_file():
        raise GankitError(f"{run.path} has no checkpoint and no {run.generator_file.name} "
                          f"yet; nothing to sample from")
    import keras

    try:
        return keras.models.load_model(run.generator_file, compile=False)
    except Exception as exc:  # Keras raises many types for a damaged file
        raise GankitError(f"cannot load {run.generator_file}: {exc}") from None


def _with_weights(model, values: list[np.ndarray], source: Path):
    variables = model.variables
    if len(values) != len(variables) or any(
            tuple(v.shape) != tuple(a.shape) for v, a in zip(variables, values)):
        raise GankitError(f"the generator in {source} does not fit the generator the run's "
                          f"recipe builds; was recipe.yaml edited?")
    for variable, value in zip(variables, values):
        variable.assign(value)
    return model
