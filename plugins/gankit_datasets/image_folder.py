"""A folder of PNG and JPEG images, read in sorted name order."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import warnings
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import numpy as np
from PIL import Image

import gankit
from gankit.errors import DatasetError
from gankit.images import SIXTEEN_BIT_MODES, to_eight_bits
from gankit.params import REQUIRED, Param
from gankit_datasets.scaling import SCALE_PARAM, check_scale, scale_pixels

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
_FORMATS = ("PNG", "JPEG")
# What Pillow raises for a truncated or malformed file, besides UnidentifiedImageError (an OSError).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError)
# Pillow opens 16-bit greyscale PNGs in these modes, keeping all 16 bits.
_SPECIAL_FILES = ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"),
                  (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


class DatasetWarning(UserWarning):
    """The data was loaded, but something in it was changed or dropped (e.g. transparency)."""


class ImageFolderDataset(gankit.Dataset):
    """The PNG and JPEG images of one folder (not its subfolders), all of one size."""

    name = "image_folder"
    params = {
        "path": Param(str, default=REQUIRED, is_path=True, doc="the folder of .png/.jpg/.jpeg images"),
        "height": Param(int, default=32, min=1, doc="the height every image has (or is resized to)"),
        "width": Param(int, default=32, min=1, doc="the width every image has (or is resized to)"),
        "channels": Param(int, default=3, choices=(1, 3), doc="3 for RGB, 1 for grayscale"),
        "on_size_mismatch": Param(str, default="reject", choices=("reject", "resize"),
                                  doc="what to do with an image of another size"),
        "skip_non_images": Param(bool, default=False,
                                 doc="skip files without a .png/.jpg/.jpeg extension "
                                     "instead of failing on them"),
        "scale": SCALE_PARAM,
    }

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self._value_range = check_scale(self.config["scale"])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.config["height"], self.config["width"], self.config["channels"])

    @property
    def value_range(self) -> tuple[float, float]:
        return self._value_range

    def load(self) -> np.ndarray:
        """Return every image of the folder in sorted file-name order.

        16-bit PNGs are reduced to 8 bits (greyscale ones as ``round(v / 257)``; Pillow reduces
        16-bit colour ones to their high byte, which differs from that by at most 1).
        Transparency is dropped: pixels keep the colour they store.

        Raises:
            DatasetError: if the folder is missing or has no images, or a file is not a
                readable PNG/JPEG image (a special file, a broken link, unreadable, truncated,
                too large to decode safely) or (with ``on_size_mismatch="reject"``) has
                another size.

        Warns:
            DatasetWarning: once, if images with (not fully opaque) transparency were read,
                naming how many.
        """
        files = self._image_files()
        height, width, channels = self.image_shape
        try:
            pixels = np.empty((len(files), height, width, channels), dtype=np.uint8)
        except (MemoryError, ValueError):
            raise DatasetError(f"{len(files)} images of {height}x{width}x{channels} do not fit in "
                               "memory; set smaller dataset.height/dataset.width or use fewer "
                               "images") from None
        with_alpha = []
        for i, file in enumerate(files):
            image, had_alpha = self._read(file)
            pixels[i] = image.reshape(height, width, channels)
            if had_alpha:
                with_alpha.append(file)
        if with_alpha:
            warnings.warn(f"dropped the transparency (alpha) of {len(with_alpha)} of {len(files)} "
                          f"images in {with_alpha[0].parent}, e.g. {with_alpha[0].name}: their "
                          "transparent pixels keep whatever colour they store; flatten them "
                          "onto a background first if that matters", DatasetWarning, stacklevel=2)
        return scale_pixels(pixels, self._value_range)

    def preflight(self) -> None:
        """The folder exists, is a folder and holds images (nothing is decoded)."""
        self._image_files()

    def _image_files(self) -> list[Path]:
        folder = Path(self.config["path"]).expanduser()
        try:
            mode = os.stat(folder).st_mode
        except FileNotFoundError:
            raise DatasetError(f"dataset.path: folder {folder} does not exist; expected a folder "
                               "of .png/.jpg/.jpeg images") from None
        except (OSError, ValueError) as exc:  # no permission on the way, a link loop, a NUL
            raise DatasetError(f"dataset.path: cannot read folder {folder} "
                               f"({getattr(exc, 'strerror', None) or exc})") from None
        if not stat.S_ISDIR(mode):
            kind = "a file" if stat.S_ISREG(mode) else _kind(mode)
            raise DatasetError(f"dataset.path: {folder} is {kind}; expected a folder of "
                               ".png/.jpg/.jpeg images (set dataset.path to its folder)")
        try:
            entries = sorted((e for e in os.scandir(folder) if not e.name.startswith(".")),
                             key=lambda e: e.name)
        except OSError as exc:
            raise DatasetError(f"dataset.path: cannot list folder {folder} "
                               f"({exc.strerror or exc})") from None
        skip = self.config["skip_non_images"]
        files, skipped, subfolders = [], [], []
        for entry in entries:
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
        if not files:
            detail = f"; skipped {len(skipped)} other files such as {skipped[0]}" if skipped else ""
            if subfolders:
                detail += (f"; subfolders are not read, set dataset.path to one of them "
                           f"(e.g. {folder / subfolders[0]})")
            raise DatasetError(f"dataset.path: no .png/.jpg/.jpeg images in folder {folder}{detail}")
        return files

    def _read(self, file: Path) -> tuple[np.ndarray, bool]:
        """The image's pixels at the configured shape, and whether transparency was dropped."""
        height, width, channels = self.image_shape
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
                    had_alpha = _has_visible_alpha(image)
                    if image.mode in SIXTEEN_BIT_MODES:
                        image = to_eight_bits(image)
                    converted = image.convert("RGB" if channels == 3 else "L")
                    if converted.size != (width, height):
                        converted = converted.resize((width, height), Image.Resampling.BICUBIC)
                    return np.asarray(converted), had_alpha
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                raise DatasetError(f"{file} is too large to decode safely ({exc}); remove it or "
                                   "scale it down") from None
            except _DECODE_ERRORS as exc:
                hint = ("" if self.config["skip_non_images"]
                        or file.suffix.lower() in IMAGE_EXTENSIONS
                        else "; remove it or set dataset.skip_non_images=true")
                raise DatasetError(f"{file} is not a readable PNG or JPEG image "
                                   f"({type(exc).__name__}: {exc}){hint}") from None


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

