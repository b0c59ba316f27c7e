"""A folder of PNG and JPEG images, read in sorted name order."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import gankit
from gankit.errors import DatasetError
from gankit.params import REQUIRED, Param
from gankit_datasets.scaling import SCALE_PARAM, check_scale, scale_pixels

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
_FORMATS = ("PNG", "JPEG")
# What Pillow raises for a truncated or malformed file, besides UnidentifiedImageError (an OSError).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


class ImageFolderDataset(gankit.Dataset):
    """The PNG and JPEG images of one folder (not its subfolders), all of one size."""

    name = "image_folder"
    params = {
        "path": Param(str, default=REQUIRED, doc="the folder of .png/.jpg/.jpeg images"),
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

        Raises:
            DatasetError: if the folder is missing or has no images, or a file is not a
                readable PNG/JPEG image or (with ``on_size_mismatch="reject"``) has another size.
        """
        files = self._image_files()
        height, width, channels = self.image_shape
        pixels = np.empty((len(files), height, width, channels), dtype=np.uint8)
        for i, file in enumerate(files):
            pixels[i] = self._read(file).reshape(height, width, channels)
        return scale_pixels(pixels, self._value_range)

    def _image_files(self) -> list[Path]:
        folder = Path(self.config["path"]).expanduser()
        if not folder.exists():
            raise DatasetError(f"dataset.path: folder {folder} does not exist; expected a folder "
                               "of .png/.jpg/.jpeg images")
        if not folder.is_dir():
            raise DatasetError(f"dataset.path: {folder} is a file; expected a folder of "
                               ".png/.jpg/.jpeg images (set dataset.path to its folder)")
        try:
            entries = sorted((e for e in os.scandir(folder) if not e.name.startswith(".")),
                             key=lambda e: e.name)
        except OSError as exc:
            raise DatasetError(f"dataset.path: cannot list folder {folder}: {exc}") from None
        skip = self.config["skip_non_images"]
        files, skipped, subfolders = [], [], []
        for entry in entries:
            if entry.is_dir():
                subfolders.append(entry.name)
            elif skip and not entry.name.lower().endswith(IMAGE_EXTENSIONS):
                skipped.append(entry.name)
            else:
                files.append(Path(entry.path))
        if not files:
            detail = f"; skipped {len(skipped)} other files such as {skipped[0]}" if skipped else ""
            if subfolders:
                detail += (f"; subfolders are not read, set dataset.path to one of them "
                           f"(e.g. {folder / subfolders[0]})")
            raise DatasetError(f"dataset.path: no .png/.jpg/.jpeg images in folder {folder}{detail}")
        return files

    def _read(self, file: Path) -> np.ndarray:
        height, width, channels = self.image_shape
        try:
            with Image.open(file, formats=_FORMATS) as image:
                if image.size != (width, height) and self.config["on_size_mismatch"] == "reject":
                    raise DatasetError(
                        f"{file} is {image.width}x{image.height} (width x height), expected "
                        f"{width}x{height}; set dataset.on_size_mismatch=resize, or "
                        f"dataset.height/dataset.width to the size of your images")
                converted = image.convert("RGB" if channels == 3 else "L")
                if converted.size != (width, height):
                    converted = converted.resize((width, height), Image.Resampling.BICUBIC)
                return np.asarray(converted)
        except _DECODE_ERRORS as exc:
            hint = ("" if self.config["skip_non_images"] or file.suffix.lower() in IMAGE_EXTENSIONS
                    else "; remove it or set dataset.skip_non_images=true")
            raise DatasetError(f"{file} is not a readable PNG or JPEG image "
                               f"({type(exc).__name__}: {exc}){hint}") from None
