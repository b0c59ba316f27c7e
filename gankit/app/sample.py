"""``gankit sample``: a grid of images from a run's generator.

The generator is rebuilt from the run's own ``recipe.yaml`` and given the weights of a
checkpoint (the newest usable one, or the step asked for), from the EMA copy when the run
keeps one; a run without checkpoints falls back to its saved ``generator_ema.keras`` or
``generator.keras``. The latents come from ``numpy`` seeded with ``seed``, so the same run,
checkpoint and seed always give the same picture; with ``truncation``, from a truncated
normal distribution (BigGAN's truncation trick, :mod:`gankit.util.latents`).

A class-conditional generator draws the classes ``0, 1, 2, ...`` in turn, one class
(``label``: a class name or index) or, with ``per_class``, a grid of one row per class with
the class names written beside the rows; every row then uses the same latents, so a
column shows one latent vector drawn as each class. The class names are those the run's
``run.json`` records (else its recipe's dataset's).

Everything that needs no TensorFlow (the arguments, the run folder, its recipe) is checked
first, so a mistake is answered at once.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gankit.errors import GankitError, did_you_mean
from gankit.plugin.registry import Registry
from gankit.recipe.validation import Recipe, load_raw, validate
from gankit.rundir.checkpoints import CheckpointStore
from gankit.rundir.generators import load_generator, load_saved, run_class_names
from gankit.rundir.owned import refuse_owned_output
from gankit.rundir.run_dir import RunDir
from gankit.util.images import label_rows, save_png, to_uint8
from gankit.util.latents import draw_latents, truncation_problem

MAX_IMAGES = 10_000
"""The most images one grid may hold (a 100 x 100 grid)."""
MAX_PER_CLASS = 100
"""The most images of each class a ``per_class`` grid may show (its columns)."""
DEFAULT_N = 64
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
    label: int | None = None
    """Every image is of this class (an index into ``class_names``)."""
    per_class: int | None = None
    """A grid of one row per class, this many images each."""
    class_names: tuple[str, ...] | None = None
    """The classes of a conditional generator; None for an unconditional one."""
    truncation: float | None = None
    """Latents from a normal distribution truncated to ``[-truncation, truncation]``
    (:mod:`gankit.util.latents`); None: the standard normal."""


def plan_sample(run_dir: str | Path, n: int | None = None, seed: int = 0,
                checkpoint: int | None = None, out: str | Path | None = None,
                registry: Registry | None = None, use_ema: bool = True, best: bool = False,
                label: str | int | None = None, per_class: int | None = None,
                truncation: float | None = None) -> SamplePlan:
    """Check a sampling request without TensorFlow.

    Args:
        n: images in the grid (default 64); not with ``per_class``.
        label: a class name or index of a conditional run: every image is of that class.
        per_class: a grid of one row per class of a conditional run, this many images each.
        truncation: draw the latents from a normal distribution truncated to
            ``[-truncation, truncation]`` (BigGAN's truncation trick; 0.01 to 10).

    Raises:
        GankitError: a bad ``n``, ``per_class``, ``seed`` or ``truncation``, not a run
            directory, a recipe that no longer validates, an output path that cannot be
            written; ``label`` or ``per_class`` for an unconditional run, a class name the
            run does not have or an index out of range.
    """
    if per_class is not None:
        if n is not None:
            raise GankitError("-n and --per-class exclude each other: --per-class N draws N "
                              "images of each class")
        if label is not None:
            raise GankitError("--label and --per-class exclude each other: --per-class draws "
                              "every class, --label one")
        if not 1 <= per_class <= MAX_PER_CLASS:
            raise GankitError(f"--per-class must be between 1 and {MAX_PER_CLASS}, got "
                              f"{per_class}")
    n = DEFAULT_N if n is None else n
    if not 1 <= n <= MAX_IMAGES:
        raise GankitError(f"-n must be between 1 and {MAX_IMAGES:,}, got {n}")
    if not 0 <= seed < 2 ** 63:
        raise GankitError(f"--seed must be between 0 and 2**63 - 1, got {seed}")
    problem = truncation_problem(truncation)
    if problem is not None:
        raise GankitError(f"--truncation {problem}")
    run = RunDir(run_dir)
    if not run.path.is_dir():
        what = "is not a directory" if run.path.exists() else "does not exist"
        raise GankitError(f"{run.path} {what}; expected a gankit run directory")
    run.check_existing()
    if registry is None:
        from gankit.plugin.manager import default_plugins
        registry = default_plugins().registry
    recipe = validate(load_raw(run.recipe_file), registry, source=str(run.recipe_file))
    classes = recipe.create("generator").num_classes
    names = run_class_names(run, recipe, classes)
    index = None
    if label is not None or per_class is not None:
        flag = "--label" if label is not None else "--per-class"
        if not classes:
            raise GankitError(f"{flag}: {run.path} has an unconditional generator (no "
                              f"num_classes): its images are of no chosen class")
        if label is not None:
            index = class_index(label, names)
        if per_class is not None:
            n = per_class * classes
            if n > MAX_IMAGES:
                raise GankitError(f"--per-class {per_class} with {classes} classes makes {n:,} "
                                  f"images; at most {MAX_IMAGES:,} fit in a grid")
    name = f"sample_seed{seed}.png"
    if index is not None:
        name = f"sample_class{index}_seed{seed}.png"
    elif per_class is not None:
        name = f"sample_per_class{per_class}_seed{seed}.png"
    if truncation is not None:  # beside the untruncated grid, not over it
        name = name.replace(".png", f"_truncation{truncation:g}.png")
    path = Path(out) if out is not None else run.samples / name
    if path.is_dir():
        raise GankitError(f"--out {path} is a directory; name a .png file")
    if not path.parent.is_dir() and path.parent.exists():
        raise GankitError(f"cannot write {path}: {path.parent} is not a directory")
    if out is not None:
        refuse_owned_output(out)
    if best and checkpoint is not None:
        raise GankitError("--best and --checkpoint exclude each other")
    if checkpoint is not None:
        steps = CheckpointStore(run.checkpoints).steps()
        if checkpoint not in steps:
            available = ", ".join(map(str, steps)) or "none"
            raise GankitError(f"{run.path} has no checkpoint of step {checkpoint}; available "
                              f"steps: {available}")
    if best:
        _recover_best(run)
        if not run.best_dir.is_dir():
            raise GankitError(f"{run.path} has no best/ generator: it is kept by a recipe with "
                              f"a metrics section, once a metric has been measured")
        ema = use_ema and recipe.ema is not None
        wanted = run.generator_in(run.best_dir, ema)
        if not wanted.is_file():
            other = run.generator_in(run.best_dir, not ema)
            hint = (f"; it holds {other.name}: " + ("sample it with --no-ema" if ema else
                                                     "leave out --no-ema")
                    if other.is_file() else "")
            raise GankitError(f"{run.best_dir} has no {wanted.name}{hint}")
    return SamplePlan(run, recipe, n, seed, checkpoint, path, use_ema, best, index,
                      per_class, names, None if truncation is None else float(truncation))


def class_index(label: str | int, names: tuple[str, ...]) -> int:
    """The index of class ``label`` (a name, or an index as an int or a string of digits).

    A name wins over an index: in a run whose classes are named ``"0" .. "9"`` the two agree
    anyway.

    Raises:
        GankitError: no class of that name (with the closest one), or an index out of range.
    """
    text = str(label).strip()
    if text in names:
        return names.index(text)
    try:
        index = int(text)
    except ValueError:
        raise GankitError(f"--label: no class named '{text}'{did_you_mean(text, names)}; the "
                          f"run's classes: {_listing(names)}") from None
    if not 0 <= index < len(names):
        raise GankitError(f"--label {index}: out of range; the run has {len(names)} classes, "
                          f"indices 0 to {len(names) - 1} ({_listing(names)})")
    return index


def _listing(names: tuple[str, ...], most: int = 20) -> str:
    shown = ", ".join(names[:most])
    return shown + (f", ... ({len(names)} in all)" if len(names) > most else "")


def sample_grid(run_dir: str | Path, n: int | None = None, seed: int = 0,
                checkpoint: int | None = None, out: str | Path | None = None,
                registry: Registry | None = None, use_ema: bool = True,
                progress: bool = False, label: str | int | None = None,
                per_class: int | None = None, truncation: float | None = None) -> Path:
    """Draw ``n`` images from a run's generator and save them as one PNG grid.

    Args:
        run_dir: a run directory (it holds ``recipe.yaml``).
        n: how many images the grid shows (1 .. :data:`MAX_IMAGES`, default 64).
        seed: seed of the latent vectors.
        checkpoint: the step of the checkpoint to use; None: the newest usable checkpoint,
            else the run's saved generator.
        out: the PNG to write; default ``RUN_DIR/samples/sample_seed<seed>.png``.
        registry: where the recipe's components are looked up; default: installed plugins.
        use_ema: use the EMA copy of the generator when the run keeps one.
        progress: print a progress line per batch on stderr (for large ``n``).
        label: a conditional run's class (name or index): every image is of it.
        per_class: a conditional run's grid of one row per class, this many images each,
            the class names beside the rows (instead of ``n``).
        truncation: latents from a normal distribution truncated to ``[-truncation,
            truncation]`` (BigGAN's truncation trick, :mod:`gankit.util.latents`): plainer,
            more typical images, less variety; default file
            ``sample_seed<seed>_truncation<t>.png``.

    Returns:
        The path of the written PNG.

    Raises:
        GankitError: see :func:`plan_sample`; also no such checkpoint, nothing to sample
            from, or an output file that cannot be written.
    """
    return draw(plan_sample(run_dir, n, seed, checkpoint, out, registry, use_ema,
                            label=label, per_class=per_class, truncation=truncation), progress)


def _recover_best(run: RunDir) -> None:
    """Restore a ``best/`` whose replacement was killed half-way (see
    ``RunDir.recover_best``), if no process holds the run (a live one may be swapping)."""
    if os.path.lexists(run.best_dir) or not any(run.path.glob(".tmp-best-old-*")):
        return
    try:
        with run.lock("gankit sample --best (restoring best/)"):
            run.recover_best()
    except GankitError:
        pass  # in use: its writer finishes the swap


def load_model(plan: SamplePlan, generator=None):
    """The Keras generator a plan names: ``best/``'s saved one, or the recipe's generator
    (``generator``, the component, default: made from the recipe) with a checkpoint's
    weights; the EMA copy when the plan asks for it and the run keeps one."""
    generator = generator if generator is not None else plan.recipe.create("generator")
    ema = plan.use_ema and plan.recipe.ema is not None
    if plan.best:
        return load_saved(plan.run, plan.run.generator_in(plan.run.best_dir, ema))
    return load_generator(plan.run, generator, plan.checkpoint, ema=ema)


def draw(plan: SamplePlan, progress: bool = False) -> Path:
    """Generate and write the grid a :class:`SamplePlan` describes."""
    generator = plan.recipe.create("generator")
    value_range = tuple(plan.recipe.create("dataset").value_range)
    model = load_model(plan, generator)
    rng = np.random.default_rng(plan.seed)
    h, w, c = generator.image_shape
    classes = generator.num_classes
    if plan.per_class:
        # One set of latents for every row: a column is one latent vector drawn as each class.
        latents = draw_latents(rng, (plan.per_class, generator.latent_dim), plan.truncation)
        columns = plan.per_class
    else:
        columns = math.ceil(math.sqrt(plan.n))
    rows = math.ceil(plan.n / columns)
    grid = np.full((rows * (h + 1) + 1, columns * (w + 1) + 1, c), 255, dtype=np.uint8)
    for start in range(0, plan.n, _BATCH):
        count = min(_BATCH, plan.n - start)
        index = np.arange(start, start + count)
        if plan.per_class:
            inputs = [latents[index % columns], (index // columns).astype(np.int32)]
        else:
            inputs = draw_latents(rng, (count, generator.latent_dim), plan.truncation)
            if classes:
                labels = index % classes if plan.label is None else np.full(count, plan.label)
                inputs = [inputs, labels.astype(np.int32)]
        images = to_uint8(np.asarray(model(inputs, training=False), dtype=np.float32), value_range)
        for i, image in enumerate(images):
            r, col = divmod(start + i, columns)
            y, x = 1 + r * (h + 1), 1 + col * (w + 1)
            grid[y:y + h, x:x + w] = image
        if progress:
            print(f"gankit: sampled {start + count}/{plan.n}", file=sys.stderr, flush=True)
    upscale = 2
    if plan.per_class:
        grid, upscale = label_rows(grid, plan.class_names, upscale=2), 1
    try:
        plan.out.parent.mkdir(parents=True, exist_ok=True)
        return save_png(grid, plan.out, upscale=upscale)
    except OSError as exc:
        raise GankitError(f"cannot write {plan.out}: {exc.strerror or exc}; choose another "
                          f"--out") from None


def sample(run_dir: str | Path, *, n: int | None = None, seed: int = 0,
           checkpoint: int | None = None, out: str | Path | None = None, use_ema: bool = True,
           best: bool = False, label: str | int | None = None, per_class: int | None = None,
           progress: bool = False, truncation: float | None = None) -> Path:
    """``gankit sample`` as a Python API: draw a grid from a run's generator (the newest
    checkpoint, else its saved generator; ``best``: its ``best/`` generator) and return the
    PNG's path. The arguments are :func:`sample_grid`'s."""
    from gankit.app.train import plugins

    plan = plan_sample(run_dir, n, seed, checkpoint, out, plugins().registry, use_ema,
                       best=best, label=label, per_class=per_class, truncation=truncation)
    return draw(plan, progress)
