"""CIFAR-10 from the original python-pickle release, optionally one class only.

Reads the same files as ``keras.datasets.cifar10.load_data`` and shares its download cache,
without importing TensorFlow or Keras.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import pickle
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

import gankit
from gankit.errors import DatasetError, RecipeError, did_you_mean
from gankit.params import Param
from gankit_datasets.scaling import SCALE_PARAM, check_scale, scale_pixels

ARCHIVE_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer",
               "dog", "frog", "horse", "ship", "truck")
SPLIT_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
BATCHES_DIR = "cifar-10-batches-py"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
# Where Keras 3's load_data keeps the archive and its extraction, inside the cache dir.
KERAS_ARCHIVE = "cifar-10-batches-py-target_archive"
KERAS_EXTRACTED = "cifar-10-batches-py-target"
DOWNLOAD_TIMEOUT = 30.0
# Failures of the connection (ValueError: a URL urllib cannot open), not of the local disk.
_NETWORK_ERRORS = (urllib.error.URLError, ConnectionError, TimeoutError,
                   http.client.HTTPException, ValueError)

_EXPECTED = (f"a {ARCHIVE_NAME} archive, an extracted {BATCHES_DIR} folder "
             "(data_batch_1..5, test_batch), or a folder that contains either")


def keras_cache_dir() -> Path:
    """The folder Keras downloads datasets into: ``$KERAS_HOME/datasets`` or
    ``~/.keras/datasets`` (``/tmp/.keras/datasets`` if the home folder is read-only)."""
    home = os.environ.get("KERAS_HOME")
    if home is None:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    return Path(home).expanduser() / "datasets"


class Cifar10Dataset(gankit.Dataset):
    """CIFAR-10 32x32 colour images (one class or all), downloaded once like Keras does."""

    name = "cifar10"
    params = {
        "path": Param(str, default=None, nullable=True,
                      doc=f"{_EXPECTED}; null downloads it once into the cache"),
        "cache_dir": Param(str, default=None, nullable=True,
                           doc="where the download is cached; null is Keras' ~/.keras/datasets"),
        "url": Param(str, default=ARCHIVE_URL, doc=f"where to download {ARCHIVE_NAME} from"),
        "label": Param((int, str), default=None, nullable=True,
                       doc="the class to keep, 0-9 or a name like 'frog'; null keeps all"),
        "split": Param(str, default="train", choices=("train", "test"),
                       doc="the 50000 training images or the 10000 test images"),
        "scale": SCALE_PARAM,
    }

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self._label = _label_index(self.config["label"])
        self._value_range = check_scale(self.config["scale"])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (32, 32, 3)

    @property
    def value_range(self) -> tuple[float, float]:
        return self._value_range

    def load(self) -> np.ndarray:
        """Return the split's images (of ``label`` only, if set) in the original order.

        Raises:
            DatasetError: if the data is missing, cannot be downloaded, or is malformed.
        """
        names = SPLIT_FILES[self.config["split"]]
        location = self._locate()
        batches = [_parse_batch(data, location / name)
                   for name, data in _read_batches(location, names)]
        pixels = np.concatenate([p for p, _ in batches])
        if self._label is not None:
            pixels = pixels[np.concatenate([lab for _, lab in batches]) == self._label]
        images = pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return scale_pixels(images, self._value_range)

    def _locate(self) -> Path:
        """The batches folder or archive to read, downloading it if nothing is given or cached."""
        if self.config["path"] is not None:
            path = Path(self.config["path"]).expanduser()
            if not path.exists():
                raise DatasetError(f"dataset.path: {path} does not exist; expected {_EXPECTED}")
            if path.is_file():
                return path
            found = _find_in(path)
            if found is None:
                raise DatasetError(f"dataset.path: {path} has no CIFAR-10 batch files, "
                                   f"{BATCHES_DIR} folder or {ARCHIVE_NAME}; expected {_EXPECTED}")
            return found
        cache = Path(self.config["cache_dir"] or keras_cache_dir()).expanduser().absolute()
        found = _find_in(cache) if cache.is_dir() else None
        if found is not None:
            return found
        archive = _download(self.config["url"], cache / KERAS_ARCHIVE, cache)
        return _extract(archive, cache / KERAS_EXTRACTED) / BATCHES_DIR


def _label_index(label: int | str | None) -> int | None:
    if label is None:
        return None
    if isinstance(label, int):
        if not 0 <= label < len(CLASS_NAMES):
            raise RecipeError(f"expected a class index 0-9 or a name, got {label}",
                              path="dataset.label")
        return label
    if label not in CLASS_NAMES:
        raise RecipeError(f"unknown CIFAR-10 class {label!r}{did_you_mean(label, CLASS_NAMES)}; "
                          f"valid names: {', '.join(CLASS_NAMES)} (or an index 0-9)",
                          path="dataset.label")
    return CLASS_NAMES.index(label)


def _find_in(folder: Path) -> Path | None:
    """The first batches folder or archive in ``folder``, in the layouts Keras 2 and 3 use."""
    if any((folder / name).is_file() for names in SPLIT_FILES.values() for name in names):
        return folder
    for sub in (BATCHES_DIR, f"{KERAS_EXTRACTED}/{BATCHES_DIR}"):
        if (folder / sub).is_dir():
            return folder / sub
    for name in (ARCHIVE_NAME, f"{BATCHES_DIR}.tar.gz", KERAS_ARCHIVE):
        if (folder / name).is_file():
            return folder / name
    return None


def _read_batches(location: Path, names: tuple[str, ...]) -> list[tuple[str, bytes]]:
    """The raw bytes of the named batch files, from a folder or (in one pass) an archive."""
    if location.is_dir():
        missing = [name for name in names if not (location / name).is_file()]
        if missing:
            raise DatasetError(f"{location} has no {', '.join(missing)}; expected "
                               f"a complete {BATCHES_DIR} folder (data_batch_1..5, test_batch)")
        try:
            return [(name, (location / name).read_bytes()) for name in names]
        except OSError as exc:
            raise DatasetError(f"cannot read CIFAR-10 batches in {location}: {exc}") from None
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(location, "r|*") as tar:
            for member in tar:
                name = member.name.rsplit("/", 1)[-1]
                if member.isfile() and name in names and name not in found:
                    found[name] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DatasetError(f"{location} is not a readable {ARCHIVE_NAME} archive "
                           f"({exc}); expected {_EXPECTED}") from None
    missing = [name for name in names if name not in found]
    if missing:
        raise DatasetError(f"archive {location} has no {BATCHES_DIR}/"
                           f"{', '.join(missing)}; expected the original {ARCHIVE_NAME}")
    return [(name, found[name]) for name in names]


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and plain data only, so a batch file cannot run code."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
               *((f"numpy.{core}.{module}", name) for core in ("core", "_core") for module, name
                 in (("multiarray", "_reconstruct"), ("numeric", "_frombuffer")))}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name}")
        return super().find_class(module, name)


def _parse_batch(data: bytes, where: Path) -> tuple[np.ndarray, np.ndarray]:
    """(pixels ``(n, 3072)`` uint8 channel-major, labels ``(n,)``) of one pickled batch."""
    try:
        batch = _BatchUnpickler(io.BytesIO(data), encoding="bytes").load()
        pixels = np.asarray(batch[b"data"])
        labels = np.asarray(batch[b"labels"]).reshape(-1)
    except Exception as exc:  # a corrupt pickle raises almost anything
        raise DatasetError(f"{where} is not a readable CIFAR-10 batch (a pickled dict with "
                           f"b'data' and b'labels'): {type(exc).__name__}: {exc}") from None
    if pixels.dtype != np.uint8 or pixels.ndim != 2 or pixels.shape[1] != 3072 \
            or labels.shape != (len(pixels),):
        raise DatasetError(f"{where}: expected b'data' of shape (n, 3072) uint8 and n labels, got "
                           f"{pixels.dtype} {pixels.shape} and {labels.shape[0]} labels")
    return pixels, labels


def _download(url: str, target: Path, cache: Path) -> Path:
    """Download ``url`` to ``target`` (atomically), checking the archive's md5."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = tempfile.NamedTemporaryFile(dir=cache, prefix=target.name, suffix=".part",
                                          delete=False)
    except OSError as exc:
        raise DatasetError(f"cannot write to the CIFAR-10 cache folder {cache} ({exc}); set "
                           "dataset.cache_dir to a writable folder or dataset.path to the data")
    md5 = hashlib.md5(usedforsecurity=False)
    try:
        with tmp, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
            total, done = int(response.headers.get("Content-Length") or 0), 0
            print(f"Downloading CIFAR-10 from {url}", file=sys.stderr)
            while chunk := response.read(1 << 20):
                tmp.write(chunk)
                md5.update(chunk)
                done += len(chunk)
                _show_progress(done, total)
        print(file=sys.stderr)
        if md5.hexdigest() != ARCHIVE_MD5:
            raise DatasetError(f"the file downloaded from {url} has md5 {md5.hexdigest()}, "
                               f"expected {ARCHIVE_MD5} (incomplete or altered); it was deleted, "
                               "try again or set dataset.path to a copy of " + ARCHIVE_NAME)
        os.replace(tmp.name, target)
    except _NETWORK_ERRORS as exc:
        os.unlink(tmp.name)
        reason = exc if isinstance(exc, urllib.error.HTTPError) else getattr(exc, "reason", exc)
        raise DatasetError(
            f"could not download CIFAR-10 from {url} ({reason}); this machine may be offline. "
            f"Download {ARCHIVE_NAME} on a connected machine and set dataset.path=/path/to/"
            f"{ARCHIVE_NAME} (or an extracted {BATCHES_DIR} folder), or put it in {cache}"
        ) from None
    except OSError as exc:
        os.unlink(tmp.name)
        raise DatasetError(f"cannot save the CIFAR-10 download in {cache} ({exc}); free some "
                           "space or set dataset.cache_dir to another folder") from None
    except BaseException:
        os.unlink(tmp.name)
        raise
    return target


def _show_progress(done: int, total: int) -> None:
    mb = 1 << 20
    of_total = f" / {total / mb:.1f} MB ({100 * done // total}%)" if total else " MB"
    print(f"\r  {done / mb:.1f}{of_total}", end="", file=sys.stderr, flush=True)


def _extract(archive: Path, target: Path) -> Path:
    """Extract ``archive`` into the folder ``target`` (via a temporary folder, atomically)."""
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=target.name + "."))
    try:
        with tarfile.open(archive, "r:*") as tar:
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(tmp, **safe)
        if target.is_dir():  # another process got there first
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, target)
    except (tarfile.TarError, OSError, EOFError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DatasetError(f"cannot extract the CIFAR-10 archive {archive} into {target} "
                           f"({exc}); delete it to download again, or set dataset.path") from None
    return target
