"""A run's saved generators: their file names, saving one with its EMA copy, loading one back.

A run directory, its ``best/`` folder and each snapshot's folder hold ``generator.keras``
(the trained generator, for ``keras.models.load_model``, or :func:`gankit.load_keras_model`
when it uses a plugin's custom layers) and, when the recipe has an ``ema`` section,
``generator_ema.keras`` (its moving average); :func:`save_generators` writes both (each
atomically). :func:`load_generator` gives a run's generator back with the weights of a
checkpoint (the newest usable one, or a chosen step), else its saved ``.keras`` file.

This module imports neither TensorFlow nor Keras until a model is loaded; it does not import
:mod:`gankit.rundir.run_dir` (which takes its names from here), so a run directory is passed
in as anything with the :class:`RunFolder` attributes (a :class:`~gankit.rundir.run_dir.RunDir`).
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from gankit.errors import GankitError, TrainingError
from gankit.rundir.checkpoints import CheckpointStore, CheckpointWarning
from gankit.rundir.errors import one_line
from gankit.util import atomic

if TYPE_CHECKING:
    from gankit.recipe.validation import Recipe

GENERATOR = "generator.keras"
"""The trained generator's file."""
GENERATOR_EMA = "generator_ema.keras"
"""Its moving average's file (with an ``ema`` section)."""


class RunFolder(Protocol):
    """What the loaders use of a run directory (:class:`~gankit.rundir.run_dir.RunDir`)."""

    path: Path
    checkpoints: Path

    def class_names(self) -> tuple[str, ...] | None:
        """The class names ``run.json`` records, or None."""


def generator_in(folder: str | Path, ema: bool = False) -> Path:
    """Where the saved generator (or its EMA copy) of ``folder`` is: a run directory,
    ``best/`` or a snapshot's folder."""
    return Path(folder) / (GENERATOR_EMA if ema else GENERATOR)


def save_model(model: Any, path: str | Path) -> Path:
    """Save a Keras model atomically (:func:`gankit.util.atomic.save_model`).

    Raises:
        TrainingError: "could not save PATH: reason" for any exception of the save (disk
            full, no permission, or whatever Keras raises).
    """
    path = Path(path)
    try:
        return atomic.save_model(model, path)
    except Exception as exc:
        raise TrainingError(f"could not save {path}: {_reason(exc)}") from exc


def save_generators(generator: Any, ema_shadow: Any, folder: str | Path
                    ) -> tuple[Path, Path | None]:
    """Save ``generator`` as ``FOLDER/generator.keras`` and, unless ``ema_shadow`` is None,
    its EMA copy as ``FOLDER/generator_ema.keras``, each atomically.

    Returns:
        the two paths (the second None without an EMA copy).

    Raises:
        TrainingError: a model could not be saved (see :func:`save_model`).
    """
    saved = save_model(generator, generator_in(folder))
    ema = None if ema_shadow is None else save_model(ema_shadow, generator_in(folder, ema=True))
    return saved, ema


def run_class_names(run: RunFolder, recipe: Recipe, num_classes: int
                    ) -> tuple[str, ...] | None:
    """The names of a conditional generator's classes: those ``run.json`` records, else
    those of the recipe's dataset, else ``"0" .. "k-1"``; None when ``num_classes`` is 0."""
    if not num_classes:
        return None
    names = run.class_names()
    if names is None:
        try:
            names = recipe.create("dataset").class_names
        except GankitError:  # its data may be gone; run.json is what should have them
            names = None
    if names is not None and len(names) == num_classes:
        return tuple(names)
    return tuple(str(i) for i in range(num_classes))


def load_generator(run: RunFolder, generator, step: int | None, ema: bool = False):
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
    saved = generator_in(run.path, ema)
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


def load_saved(run: RunFolder, path: Path):
    """Load a saved ``.keras`` generator with the Keras objects the plugins declare
    (:func:`gankit.plugin.keras_objects.load_keras_model`), with a clear error if it is
    missing, damaged, or uses a class no loaded plugin declares."""
    if not path.is_file():
        raise GankitError(f"{run.path} has no checkpoint and no {path.name} yet; nothing to "
                          f"sample from")
    if not zipfile.is_zipfile(path):
        raise GankitError(f"cannot load {path}: the file is damaged or truncated (not a "
                          f"complete .keras archive)")
    from gankit.plugin.keras_objects import load_keras_model

    return load_keras_model(path)  # "cannot load PATH: ..." naming a missing class's plugin


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return one_line(str(exc), 300) or type(exc).__name__
