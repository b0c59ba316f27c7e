"""A folder of PNG and JPEG images, read in sorted name order (with ``labels: true``, one
sub-folder per class).

Listing the folder checks every file's header with Pillow (type, format, size, mode: nothing
is decoded, except files with transparency); the pixels are decoded by TensorFlow inside the
``tf.data`` pipeline, as the trainer reads them (``image_decoding``), so the folder need not
fit in memory.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import warnings
from pathlib import Path
from typing import Any, BinaryIO, Iterator, NamedTuple

import numpy as np
from PIL import Image

import gankit
from gankit.errors import DatasetError
from gankit.params import REQUIRED, Param
from gankit.util.images import SIXTEEN_BIT_MODES
from gankit_datasets.image_decoding import JPEG, PNG, PNG_GREY16, ImageFileSource
from gankit_datasets.scaling import SCALE_PARAM, ScaledDataset, scale_pixels

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
_FORMATS = ("PNG", "JPEG")
# What Pillow raises for a truncated or malformed file, besides UnidentifiedImageError (an OSError).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError)
# Pillow opens 16-bit greyscale PNGs in these modes, keeping all 16 bits.
_SPECIAL_FILES = ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"),
                  (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


class DatasetWarning(UserWarning):
    """The data was loaded, but something in it was changed or dropped (e.g. transparency)."""


class Listing(NamedTuple):
    """The checked files of the folder, how each is decoded, and their labels (or None)."""

    files: list[Path]
    kinds: np.ndarray
    labels: np.ndarray | None


class ImageFolderDataset(ScaledDataset):
    """The PNG and JPEG images of a folder, all of one size (labels: one sub-folder per class).
    """

    name = "image_folder"
    params = {
        "path": Param(str, default=REQUIRED, is_path=True,
                      doc="the folder of .png/.jpg/.jpeg images (with labels: its class "
                          "sub-folders)"),
        "height": Param(int, default=32, min=1, doc="the height every image has (or is resized to)"),
        "width": Param(int, default=32, min=1, doc="the width every image has (or is resized to)"),
        "channels": Param(int, default=3, choices=(1, 3), doc="3 for RGB, 1 for grayscale"),
        "on_size_mismatch": Param(str, default="reject", choices=("reject", "resize"),
                                  doc="what to do with an image of another size"),
        "skip_non_images": Param(bool, default=False,
                                 doc="skip files without a .png/.jpg/.jpeg extension "
                                     "instead of failing on them"),
        "labels": Param(bool, default=False,
                        doc="one sub-folder per class, the images inside it: the class names "
                            "are the sorted sub-folder names, labelled 0, 1, ...; false reads "
                            "the images of the folder itself, unlabelled"),
        "scale": SCALE_PARAM,
    }

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self._class_names: tuple[str, ...] | None = None

    @property
    def class_names(self) -> tuple[str, ...] | None:
        """With ``labels: true``, the sorted names of the folder's (non-hidden) sub-folders,
        listed without reading any image; None otherwise.

        Raises:
            DatasetError: if the folder is missing or has no sub-folders.
        """
        if not self.config["labels"]:
            return None
        if self._class_names is None:
            folder = self._folder()
            classes = tuple(sorted(entry.name for entry in _entries(folder) if _is_dir(entry)))
            if not classes:
                raise DatasetError(f"dataset.path: folder {folder} has no class sub-folders; "
                                   "with dataset.labels=true put the images of each class in a "
                                   "sub-folder named after it (or set dataset.labels=false)")
            self._class_names = classes
        return self._class_names

    def load(self) -> np.ndarray | gankit.Examples:
        """Return every image of the folder in sorted file-name order (with ``labels``: class
        by class, in the order of :attr:`class_names`, and the int32 labels).

        16-bit PNGs are reduced to 8 bits (greyscale ones as ``round(v / 257)``, colour ones
        to their high byte, as Pillow does, which differs from that by at most 1).
        Transparency is dropped: pixels keep the colour they store. The images are decoded
        by TensorFlow as in training (see :meth:`source`).

        Raises:
            DatasetError: if the folder is missing or has no images, or a file is not a
                readable PNG/JPEG image (a special file, a broken link, unreadable, truncated,
                too large to decode safely) or (with ``on_size_mismatch="reject"``) has
                another size; with ``labels``, if an image lies outside the class
                sub-folders or a class has no images.

        Warns:
            DatasetWarning: once, if images with (not fully opaque) transparency were read,
                naming how many.
        """
        count = len(self._list()[0])
        height, width, channels = self.image_shape
        try:
            pixels = np.empty((count, height, width, channels), dtype=np.uint8)
        except (MemoryError, ValueError):
            raise DatasetError(f"{count} images of {height}x{width}x{channels} do not fit "
                               "in memory; set smaller dataset.height/dataset.width or use "
                               "fewer images") from None
        source = self.source()
        if source.size != count:
            raise DatasetError(f"the folder {self.config['path']} changed while it was read; "
                               "try again")
        _read_all(source, pixels)
        images = scale_pixels(pixels, self._value_range)
        return images if source.labels is None else gankit.Examples(images, source.labels)

    def source(self) -> ImageFileSource:
        """The checked files, decoded in the ``tf.data`` pipeline as the trainer reads them.

        Raises and warns as :meth:`load` does, except for damage past a file's header, which
        stops training with a one-line error naming the file when it is read.
        """
        listing = self._check_files()
        return ImageFileSource([str(f) for f in listing.files], listing.kinds, listing.labels,
                               self.image_shape, self._value_range,
                               resize=self.config["on_size_mismatch"] == "resize")

    def preflight(self) -> None:
        """The folder exists, is a folder and holds images, each a PNG or JPEG of the right
        size by its header (nothing is decoded): a folder of junk is answered before
        TensorFlow loads."""
        self._check_files()

    def _folder(self) -> Path:
        folder = Path(self.config["path"]).expanduser()
        try:
            mode = os.stat(folder).st_mode
        except FileNotFoundError:
            layout = ("class sub-folders of .png/.jpg/.jpeg images" if self.config["labels"]
                      else ".png/.jpg/.jpeg images")
            raise DatasetError(f"dataset.path: folder {folder} does not exist; expected a folder "
                               f"of {layout}") from None
        except (OSError, ValueError) as exc:  # no permission on the way, a link loop, a NUL
            raise DatasetError(f"dataset.path: cannot read folder {folder} "
                               f"({getattr(exc, 'strerror', None) or exc})") from None
        if not stat.S_ISDIR(mode):
            kind = "a file" if stat.S_ISREG(mode) else _kind(mode)
            raise DatasetError(f"dataset.path: {folder} is {kind}; expected a folder of "
                               ".png/.jpg/.jpeg images (set dataset.path to its folder)")
        return folder

    def _list(self) -> tuple[list[Path], np.ndarray | None]:
        """The image files to read, and their labels (with ``labels``)."""
        folder = self._folder()
        if not self.config["labels"]:
            files, skipped, subfolders = self._scan_folder(folder)
            if not files:
                detail = (f"; skipped {len(skipped)} other files such as {skipped[0]}"
                          if skipped else "")
                if subfolders:
                    detail += (f"; subfolders are not read, set dataset.path to one of them "
                               f"(e.g. {folder / subfolders[0]}), or set dataset.labels=true "
                               "to read them as classes")
                raise DatasetError(f"dataset.path: no .png/.jpg/.jpeg images in folder "
                                   f"{folder}{detail}")
            return files, None
        classes = self.class_names
        loose, _, _ = self._scan_folder(folder)
        images = [f for f in loose if f.name.lower().endswith(IMAGE_EXTENSIONS)]
        if images:
            raise DatasetError(f"{images[0]} is directly in {folder}; with dataset.labels=true "
                               "every image goes in the sub-folder of its class (or set "
                               "dataset.labels=false)")
        if loose:
            raise DatasetError(f"{loose[0]} is not a class sub-folder; remove it from the "
                               "folder or set dataset.skip_non_images=true")
        files, labels = [], []
        for label, name in enumerate(classes):
            found, skipped, _ = self._scan_folder(folder / name)
            if not found:
                detail = (f" (skipped {len(skipped)} other files such as {skipped[0]})"
                          if skipped else "")
                raise DatasetError(f"class folder {folder / name} has no .png/.jpg/.jpeg "
                                   f"images{detail}; add images of class '{name}' or remove "
                                   "the folder")
            files += found
            labels += [label] * len(found)
        return files, np.asarray(labels, np.int32)

    def _scan_folder(self, folder: Path) -> tuple[list[Path], list[str], list[str]]:
        """The regular files to read, the names skipped and the sub-folders of ``folder``."""
        skip = self.config["skip_non_images"]
        files, skipped, subfolders = [], [], []
        for entry in _entries(folder):
            is_image = entry.name.lower().endswith(IMAGE_EXTENSIONS)
            if skip and not is_image and not _is_dir(entry):
                skipped.append(entry.name)
                continue
            mode = _file_mode(Path(entry.path))
            if stat.S_ISDIR(mode):
                subfolders.append(entry.name)
            elif stat.S_ISREG(mode):
                files.append(Path(entry.path))
            else:  # opening a named pipe would wait for a writer forever
                hint = "" if is_image else " or set dataset.skip_non_images=true"
                raise DatasetError(f"{entry.path} is {_kind(mode)}, not an image file; remove it "
                                   f"from the folder{hint}")
        return files, skipped, subfolders

    def _check_files(self) -> Listing:
        """List the files and check each one's header (see :meth:`_check`)."""
        files, labels = self._list()
        kinds = np.empty(len(files), np.int8)
        with_alpha = []
        for i, file in enumerate(files):
            kinds[i], had_alpha = self._check(file)
            if had_alpha:
                with_alpha.append(file)
        if with_alpha:
            warnings.warn(f"dropped the transparency (alpha) of {len(with_alpha)} of {len(files)} "
                          f"images in {with_alpha[0].parent}, e.g. {with_alpha[0].name}: their "
                          "transparent pixels keep whatever colour they store; flatten them "
                          "onto a background first if that matters", DatasetWarning, stacklevel=3)
        return Listing(files, kinds, labels)

    def _check(self, file: Path) -> tuple[int, bool]:
        """How the file is decoded (from its header; nothing else is read unless it has
        transparency, whose pixels tell whether dropping it changes anything), and whether
        transparency will be dropped."""
        height, width, _ = self.image_shape
        with _open_regular(file) as stream, warnings.catch_warnings():
            # A would-be decompression bomb is an error, not a warning followed by the attempt;
            # Pillow's note on palette transparency is replaced by the DatasetWarning.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            warnings.filterwarnings("ignore", "Palette images with Transparency", UserWarning)
            try:
                with Image.open(stream, formats=_FORMATS) as image:
                    if image.size != (width, height) and \
                            self.config["on_size_mismatch"] == "reject":
                        raise DatasetError(
                            f"{file} is {image.width}x{image.height} (width x height), expected "
                            f"{width}x{height}; set dataset.on_size_mismatch=resize, or "
                            f"dataset.height/dataset.width to the size of your images")
                    kind = (JPEG if image.format == "JPEG" else
                            PNG_GREY16 if image.mode in SIXTEEN_BIT_MODES else PNG)
                    transparent = "A" in image.getbands() or "transparency" in image.info
                    return kind, transparent and _has_visible_alpha(image)
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                raise DatasetError(f"{file} is too large to decode safely ({exc}); remove it or "
                                   "scale it down") from None
            except _DECODE_ERRORS as exc:
                hint = ("" if self.config["skip_non_images"]
                        or file.suffix.lower() in IMAGE_EXTENSIONS
                        else "; remove it or set dataset.skip_non_images=true")
                raise DatasetError(f"{file} is not a readable PNG or JPEG image "
                                   f"({type(exc).__name__}: {exc}){hint}") from None


def _read_all(source: ImageFileSource, out: np.ndarray, chunk: int = 256) -> None:
    """Decode every image of ``source`` into ``out`` (uint8), chunks in parallel."""
    import tensorflow as tf

    from gankit import dataset_error

    chunks = (tf.data.Dataset.range(0, source.size, chunk)
              .map(lambda start: source.read_pixels(tf.range(
                  start, tf.minimum(start + chunk, source.size))),
                   num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
              .prefetch(2))
    try:
        for i, pixels in enumerate(chunks):
            out[i * chunk:i * chunk + len(pixels)] = pixels.numpy()
    except tf.errors.OpError as exc:
        raise dataset_error(exc) or DatasetError(
            f"cannot decode the images of {source.files[0]}'s folder "
            f"({str(exc).strip().splitlines()[0][:200]})") from None


def _entries(folder: Path) -> list[os.DirEntry]:
    """The non-hidden entries of ``folder``, sorted by name."""
    try:
        return sorted((e for e in os.scandir(folder) if not e.name.startswith(".")),
                      key=lambda e: e.name)
    except OSError as exc:
        raise DatasetError(f"dataset.path: cannot list folder {folder} "
                           f"({exc.strerror or exc})") from None


def _kind(mode: int) -> str:
    return next((name for test, name in _SPECIAL_FILES if test(mode)), "a special file")


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _file_mode(path: Path) -> int:
    """``st_mode`` of what ``path`` points to; a broken link is a DatasetError naming it."""
    try:
        return os.stat(path).st_mode
    except OSError as exc:
        if path.is_symlink():
            if exc.errno == errno.ELOOP:
                raise DatasetError(f"{path} is a symbolic link loop; remove it from the "
                                   "folder") from None
            if isinstance(exc, FileNotFoundError):
                raise DatasetError(f"{path} is a symbolic link to {os.readlink(path)}, which does "
                                   "not exist; remove the link or restore its target") from None
        raise DatasetError(f"cannot read {path} ({exc.strerror or exc})") from None


@contextlib.contextmanager
def _open_regular(path: Path) -> Iterator[BinaryIO]:
    """``path`` opened for reading if it is a regular file; never blocks on a named pipe
    (the folder may have changed since it was listed)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        _file_mode(path)  # a broken link says so
        raise DatasetError(f"cannot open {path} ({exc.strerror or exc}); check its "
                           "permissions") from None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise DatasetError(f"{path} is not a regular file; remove it from the folder")
        if info.st_size == 0:
            raise DatasetError(f"{path} is empty (0 bytes), not a PNG or JPEG image; remove it "
                               "or replace it with the image")
        yield file


def _has_visible_alpha(image: Image.Image) -> bool:
    """Whether dropping the image's alpha channel or transparent colour changes any pixel."""
    if "A" not in image.getbands() and "transparency" not in image.info:
        return False
    if image.mode in SIXTEEN_BIT_MODES:  # a transparent grey level (tRNS), not a channel
        key = image.info.get("transparency")
        return isinstance(key, int) and bool((np.asarray(image) == key).any())
    alpha = (image if "A" in image.getbands() else image.convert("RGBA")).getchannel("A")
    return alpha.getextrema()[0] < 255

