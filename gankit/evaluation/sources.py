"""Where the images an evaluation scores come from: a folder, a recipe's dataset, a generator.

Every source yields float32 batches ``(b, h, w, c)`` in ``[0, 1]``, at most ``batch_size``
images at a time, so memory stays bounded however many images are scored. Constructing a
source checks what it can without TensorFlow (the folder exists and holds images, the run
directory's recipe validates); models and data are loaded on the first batch.
"""

from __future__ import annotations

import abc
import hashlib
import os
import stat
import warnings
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from gankit.errors import GankitError
from gankit.util.images import (
    SIXTEEN_BIT_MODES,
    UnreadableImage,
    open_image,
    to_eight_bits,
    to_uint8,
)
from gankit.util.latents import draw_latents, truncation_problem

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError)


class ImageSource(abc.ABC):
    """A supply of images to compute features of.

    Attributes:
        description: what it is, for reports (``folder /data/frogs``, ``run runs/x (EMA)``).
    """

    description: str = ""
    class_names: tuple[str, ...] | None = None
    """The names of the classes :meth:`labels` index; None for images of no known class."""

    def labels(self, n: int) -> np.ndarray | None:
        """int32 ``(n,)``: the class of each of the first ``n`` images (of a generator: of the
        ``n`` images :meth:`batches` makes); None when the images have no class."""
        return None

    @abc.abstractmethod
    def available(self) -> int | None:
        """How many images it holds; None if it can make any number (a generator)."""

    @abc.abstractmethod
    def batches(self, n: int, batch_size: int, seed: int = 0) -> Iterator[np.ndarray]:
        """The first ``n`` images (a generator: ``n`` images from latents seeded with
        ``seed``), as float32 batches in ``[0, 1]`` of at most ``batch_size`` images."""

    def content_digest(self, n: int) -> str:
        """A sha256 of the first ``n`` images' content: it keys cached reference features.

        Raises:
            GankitError: for a source that cannot serve as a reference (a generator).
        """
        raise GankitError(f"{self.description} cannot be a reference: its images have no fixed "
                          f"content; use a folder of images or a recipe's dataset")


class ImageFolderSource(ImageSource):
    """The .png/.jpg/.jpeg files of a folder in sorted name order, each at its own size.

    Hidden files, other files and subfolders are skipped. Images are read as 8-bit RGB
    (greyscale is repeated into three channels, transparency is dropped); the extractor
    resizes them to its network's input.

    Raises:
        GankitError: the folder does not exist, is not a folder, or holds no images.
    """

    def __init__(self, path: str | Path, *, what: str = "folder") -> None:
        self.path = Path(path).expanduser().absolute()
        self.description = f"folder {self.path}"
        try:
            mode = os.stat(self.path).st_mode
        except FileNotFoundError:
            raise GankitError(f"{what} {self.path} does not exist; expected a folder of "
                              f".png/.jpg/.jpeg images") from None
        except OSError as exc:
            raise GankitError(f"cannot read {what} {self.path} ({exc.strerror or exc})") from None
        if not stat.S_ISDIR(mode):
            raise GankitError(f"{what} {self.path} is not a folder; expected a folder of "
                              f".png/.jpg/.jpeg images")
        try:
            names = sorted(e.name for e in os.scandir(self.path)
                           if not e.name.startswith(".") and e.is_file()
                           and e.name.lower().endswith(IMAGE_EXTENSIONS))
        except OSError as exc:
            raise GankitError(f"cannot list {what} {self.path} ({exc.strerror or exc})") from None
        if not names:
            raise GankitError(f"{what} {self.path} holds no .png/.jpg/.jpeg images (subfolders "
                              f"are not read)")
        self.files = [self.path / name for name in names]

    def available(self) -> int:
        return len(self.files)

    def check_files(self, n: int | None = None) -> None:
        """Open the header of each of the first ``n`` files (all when None), before anything
        slow: a zero-byte file, a GIF or WEBP named .png, a FIFO or a decompression bomb is
        one line naming it, not a failure after TensorFlow loaded.

        Raises:
            GankitError: the first file that would not be read.
        """
        for file in self.files[:n]:
            try:
                with open_image(file):
                    pass
            except UnreadableImage as exc:
                raise GankitError(f"{file} {exc}; remove it from {self.path}") from None

    def batches(self, n: int, batch_size: int, seed: int = 0) -> Iterator[np.ndarray]:
        # A batch is a run of images of one size; a folder of mixed sizes gives smaller ones.
        pending: list[np.ndarray] = []
        for file in self.files[:n]:
            image = _read_image(file)
            if pending and (len(pending) == batch_size or image.shape != pending[0].shape):
                yield np.stack(pending).astype(np.float32) / np.float32(255.0)
                pending = []
            pending.append(image)
        if pending:
            yield np.stack(pending).astype(np.float32) / np.float32(255.0)

    def content_digest(self, n: int) -> str:
        digest = hashlib.sha256(b"gankit image folder v1\0")
        for file in self.files[:n]:
            digest.update(file.name.encode("utf-8", "surrogateescape") + b"\0")
            try:
                digest.update(hashlib.sha256(file.read_bytes()).digest())
            except OSError as exc:
                raise GankitError(f"cannot read {file} ({exc.strerror or exc})") from None
        return digest.hexdigest()


def _read_image(file: Path) -> np.ndarray:
    """uint8 ``(h, w, 3)`` pixels of a PNG or JPEG file (opened as :func:`open_image` says:
    a regular file, a real PNG or JPEG, not a decompression bomb)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # palette transparency notes: alpha is dropped
            with open_image(file) as image:
                if image.mode in SIXTEEN_BIT_MODES:
                    image = to_eight_bits(image)
                return np.asarray(image.convert("RGB"))
    except UnreadableImage as exc:
        raise GankitError(f"{file} {exc}") from None
    except _DECODE_ERRORS as exc:
        raise GankitError(f"{file} is not a readable PNG or JPEG image "
                          f"({type(exc).__name__}: {exc})") from None


class DatasetSource(ImageSource):
    """The images of a dataset component (a recipe's ``dataset``), in its own order.

    They are rounded to 8 bits from the dataset's ``value_range``, so a dataset and a folder
    of the same pictures as PNG files give the same features.
    """

    def __init__(self, dataset: Any, description: str = "") -> None:
        self.dataset = dataset
        self.description = description or f"dataset {type(dataset).__name__}"
        dataset.preflight()
        names = dataset.class_names
        self.class_names = tuple(names) if names is not None else None
        self._pixels: np.ndarray | None = None
        self._labels: np.ndarray | None = None

    @classmethod
    def from_recipe(cls, recipe: Any) -> DatasetSource:
        """The dataset of a validated :class:`gankit.recipe.validation.Recipe`."""
        spec = recipe.spec("dataset")
        return cls(recipe.create("dataset"), f"dataset {spec.type} of recipe {recipe.source}")

    def _uint8(self) -> np.ndarray:
        if self._pixels is None:
            from gankit.interfaces.data import as_examples

            examples = as_examples(self.dataset.load(), self.dataset.image_shape)
            self._pixels = to_uint8(examples.images, tuple(self.dataset.value_range))
            if self.class_names is not None and examples.labels is not None:
                self._labels = np.asarray(examples.labels, dtype=np.int32)
        return self._pixels

    def labels(self, n: int) -> np.ndarray | None:
        self._uint8()
        return None if self._labels is None else self._labels[:n]

    def available(self) -> int:
        return len(self._uint8())

    def batches(self, n: int, batch_size: int, seed: int = 0) -> Iterator[np.ndarray]:
        pixels = self._uint8()
        for start in range(0, min(n, len(pixels)), batch_size):
            stop = min(start + batch_size, n)
            yield pixels[start:stop].astype(np.float32) / np.float32(255.0)

    def content_digest(self, n: int) -> str:
        pixels = np.ascontiguousarray(self._uint8()[:n])
        digest = hashlib.sha256(f"gankit pixels v1 {pixels.shape}\0".encode())
        digest.update(pixels.tobytes())
        return digest.hexdigest()


class GeneratorSource(ImageSource):
    """Images from a generator: a Keras model, a saved ``.keras`` file or a run directory.

    Latents are ``numpy.random.default_rng(seed).standard_normal`` drawn batch after batch
    (the same stream as ``gankit sample``), or with ``truncation`` from the truncated normal
    distribution of :mod:`gankit.util.latents` (as ``gankit sample --truncation``); a
    conditional generator of a run gets the labels ``0, 1, 2, ...`` cycling through its
    classes. The outputs are mapped from ``value_range``
    to ``[0, 1]`` and rounded to 8 bits, as saved PNGs are, so scoring a run and scoring a
    folder of its samples agree.

    Args:
        generator: a Keras model, the path of a ``.keras`` file, or a run directory.
        value_range: the range the generator's outputs are in. A run directory's recipe
            knows it (its dataset's ``value_range``); for a model or a ``.keras`` file the
            default is ``(-1, 1)`` (a tanh output).
        best: for a run directory, use ``best/generator_ema.keras`` (with the recipe's EMA)
            or ``best/generator.keras`` instead of the newest checkpoint.
        use_ema: for a run directory, prefer the EMA copy when the recipe keeps one.
        num_classes: for a model or file with a label input: the number of classes.
        class_names: for a model with a label input: the names of its classes (a run
            directory's come from its ``run.json``, else its recipe's dataset).
        registry: where a run's recipe components are looked up (default: installed).
        truncation: draw the latents truncated to ``[-truncation, truncation]`` (0.01 to
            10); the description says so.

    Raises:
        GankitError: a path that does not exist or is neither; a run directory whose recipe
            does not validate, or (with ``best``) without a ``best/`` generator; a bad
            ``truncation``.
    """

    def __init__(self, generator: Any, *, value_range: tuple[float, float] | None = None,
                 best: bool = False, use_ema: bool = True, num_classes: int = 0,
                 class_names: Any = None, registry: Any = None,
                 truncation: float | None = None) -> None:
        self._model = None
        self._loader = None
        problem = truncation_problem(truncation)
        if problem is not None:
            raise GankitError(f"--truncation {problem}")
        self.truncation = None if truncation is None else float(truncation)
        self.num_classes = num_classes
        if class_names is not None and len(class_names) != num_classes:
            raise GankitError(f"{len(class_names)} class names given for a generator of "
                              f"{num_classes} classes")
        self.class_names = tuple(class_names) if class_names is not None else None
        self.latent_shape: tuple[int, ...] | None = None
        if isinstance(generator, (str, os.PathLike)):
            path = Path(generator).expanduser().absolute()
            if path.is_dir():
                if value_range is not None:
                    raise GankitError("a run directory's recipe gives its generator's value "
                                      "range; --value-range is for a .keras generator")
                self._plan_run(path, best, use_ema, registry)
                return
            if best:
                raise GankitError(f"--best names a run directory's best/ generator; {path} is "
                                  f"not a run directory")
            if not path.exists():
                raise GankitError(f"{path} does not exist; expected a run directory, a .keras "
                                  f"generator or a folder of images")
            if not zipfile.is_zipfile(path):
                raise GankitError(f"{path} is not a .keras model file (a Keras 3 zip archive); "
                                  f"expected a run directory, a .keras generator or a folder "
                                  f"of images")
            self._described = f"generator {path}"
            self._loader = lambda: _load_keras(path)
        else:
            self._described = f"generator {getattr(generator, 'name', 'model')}"
            self._model = generator
        self.value_range = tuple(value_range) if value_range is not None else (-1.0, 1.0)
        if not self.value_range[0] < self.value_range[1]:
            raise GankitError(f"--value-range: expected LOW < HIGH, got {list(self.value_range)}")

    def _plan_run(self, path: Path, best: bool, use_ema: bool, registry: Any) -> None:
        from gankit.recipe.validation import load_raw, validate
        from gankit.rundir.run_dir import RunDir

        run = RunDir(path).check_existing()
        if registry is None:
            from gankit.plugin.manager import default_plugins
            registry = default_plugins().registry
        recipe = validate(load_raw(run.recipe_file), registry, source=str(run.recipe_file))
        component = recipe.create("generator")
        self.value_range = tuple(recipe.create("dataset").value_range)
        self.num_classes = component.num_classes or 0
        self.latent_shape = (component.latent_dim,)
        from gankit.rundir.generators import run_class_names

        self.class_names = run_class_names(run, recipe, self.num_classes)
        ema = use_ema and recipe.ema is not None
        self.run_dir = run.path
        if best:
            folder = run.best_dir
            files = ([run.generator_in(folder, ema=True)] if ema else []) + \
                [run.generator_in(folder)]
            found = next((f for f in files if f.is_file()), None)
            if found is None:
                raise GankitError(f"{run.path} has no best generator ({files[-1]}); "
                                  f"a run keeps one when its recipe has a metrics section; "
                                  f"leave out --best to use the newest checkpoint")
            self._described = f"run {run.path} {run.BEST}/{found.name}"
            self._loader = lambda: _load_keras(found)
            return
        from gankit.rundir.checkpoints import CheckpointStore

        saved = run.generator_in(run.path, ema)
        if not CheckpointStore(run.checkpoints).steps() and not saved.is_file():
            raise GankitError(f"{run.path} has no checkpoint and no {saved.name} yet: no "
                              f"generator to draw images from (train it first, or wait for "
                              f"its first checkpoint)")
        self._described = f"run {run.path} ({'EMA generator' if ema else 'generator'}, " \
                           f"latest weights)"

        def load():
            from gankit.rundir.generators import load_generator

            return load_generator(run, component, None, ema=ema)

        self._loader = load

    @property
    def description(self) -> str:
        """What the images are, for messages and results (with the truncation, if any)."""
        if self.truncation is None:
            return self._described
        return f"{self._described}, latents truncated to [-{self.truncation:g}, " \
               f"{self.truncation:g}]"

    def available(self) -> None:
        return None

    def labels(self, n: int) -> np.ndarray | None:
        """The labels :meth:`batches` gives a conditional generator: ``0, 1, 2, ...`` cycling
        through its classes."""
        if not self.num_classes:
            return None
        return (np.arange(n) % self.num_classes).astype(np.int32)

    def model(self):
        """The Keras model, loaded on first use."""
        if self._model is None:
            self._model = self._loader()
        return self._model

    def batches(self, n: int, batch_size: int, seed: int = 0) -> Iterator[np.ndarray]:
        model = self.model()
        inputs = list(getattr(model, "inputs", None) or [])
        latent_shape = self.latent_shape or (tuple(inputs[0].shape[1:]) if inputs else None)
        if not latent_shape or None in latent_shape:
            raise GankitError(f"cannot tell the latent size of {self.description}; its first "
                              f"input has shape {latent_shape}")
        if len(inputs) > 1 and not self.num_classes:
            raise GankitError(f"{self.description} takes {len(inputs)} inputs (a conditional "
                              f"generator?); evaluate its run directory instead")
        rng = np.random.default_rng(seed)
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            latents = draw_latents(rng, (count, *latent_shape), self.truncation)
            feed: Any = latents
            if self.num_classes:
                labels = (np.arange(start, start + count) % self.num_classes).astype(np.int32)
                feed = [latents, labels]
            images = np.asarray(model(feed, training=False), dtype=np.float32)
            if images.ndim != 4:
                raise GankitError(f"{self.description} made outputs of shape {images.shape}; "
                                  f"expected images (n, height, width, channels)")
            yield to_uint8(images, self.value_range).astype(np.float32) / np.float32(255.0)


def _load_keras(path: Path):
    from gankit.plugin.manager import default_plugins
    from gankit.rundir.generators import load_saved
    from gankit.rundir.run_dir import RunDir

    default_plugins()  # plugins' custom layers register with Keras when they import
    return load_saved(RunDir(path.parent), path)

