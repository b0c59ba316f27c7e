"""CIFAR-10 from the original python-pickle release: all ten classes or a chosen few.

Reads the same files as ``keras.datasets.cifar10.load_data`` and shares its download cache
(a download goes through ``keras.utils.get_file``; reading a given or cached copy imports
neither TensorFlow nor Keras). With ``labels: true`` the images come with their class
labels, numbered ``0 .. len(class_names) - 1`` in the order of ``classes``. The pixels stay
uint8 in memory for training; the pipeline scales them as it reads them.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import http.client
import io
import lzma
import os
import pickle
import socket
import stat
import sys
import tarfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Any, BinaryIO

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
# An original batch is 31 MB; a bigger "batch" is another file, and is not read into memory.
MAX_BATCH_BYTES = 256 << 20
# Compressed tar formats by their first bytes; their readers check the data's own checksum.
_COMPRESSED = ((b"\x1f\x8b", "gzip", lambda raw: gzip.GzipFile(fileobj=raw)),
               (b"BZh", "bzip2", bz2.BZ2File),
               (b"\xfd7zXZ\x00", "xz", lzma.LZMAFile))
# What reading a damaged archive raises (zlib.error: the gzip reader does not wrap it).
_ARCHIVE_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError)


def keras_cache_dir() -> Path:
    """The folder Keras downloads datasets into: ``$KERAS_HOME/datasets`` or
    ``~/.keras/datasets`` (``/tmp/.keras/datasets`` if the home folder is read-only)."""
    home = os.environ.get("KERAS_HOME")
    if home is None:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    return Path(home).expanduser() / "datasets"


class Cifar10Dataset(gankit.Dataset):
    """CIFAR-10 32x32 colour images (all ten classes or a few), downloaded once like Keras."""

    name = "cifar10"
    params = {
        "path": Param(str, default=None, nullable=True, is_path=True,
                      doc=f"{_EXPECTED}; null downloads it once into the cache"),
        "cache_dir": Param(str, default=None, nullable=True,
                           doc="where the download is cached; null is Keras' ~/.keras/datasets"),
        "url": Param(str, default=ARCHIVE_URL, doc=f"where to download {ARCHIVE_NAME} from"),
        "label": Param((int, str), default=None, nullable=True,
                       doc="the one class to keep, 0-9 or a name like 'frog' (shorthand for "
                           "classes: [frog]); null keeps all"),
        "classes": Param(list, default=None, nullable=True,
                         doc="the classes to keep, names or indices 0-9 (e.g. [cat, dog]), "
                             "labelled 0, 1, ... in this order; null keeps all ten"),
        "labels": Param(bool, default=False,
                        doc="yield class labels with the images (for conditional models and "
                            "classifiers); class_names are the kept classes"),
        "split": Param(str, default="train", choices=("train", "test"),
                       doc="the 50000 training images or the 10000 test images"),
        "scale": SCALE_PARAM,
    }

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self._classes = _class_indices(self.config["label"], self.config["classes"])
        self._value_range = check_scale(self.config["scale"])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (32, 32, 3)

    @property
    def value_range(self) -> tuple[float, float]:
        return self._value_range

    @property
    def class_names(self) -> tuple[str, ...] | None:
        """With ``labels: true``, the kept classes' names: the ten in the order of
        ``batches.meta``, or those of ``classes`` (or ``label``) in the order given; None
        without labels."""
        if not self.config["labels"]:
            return None
        return tuple(CLASS_NAMES[i] for i in self._classes) if self._classes else CLASS_NAMES

    def load(self) -> gankit.Examples:
        """Return the split's images (of the kept classes only) in the original order, as
        float32 in ``value_range``, with int32 labels indexing :attr:`class_names` when
        ``labels`` is true (None otherwise).

        Raises:
            DatasetError: if the data is missing, cannot be downloaded, or is malformed.
        """
        pixels, labels = self._pixels()
        return gankit.Examples(scale_pixels(pixels, self._value_range), labels)

    def source(self) -> gankit.DataSource:
        """The images of :meth:`load`, held as uint8 pixels (a quarter of the memory) and
        scaled into ``value_range`` by the pipeline as it reads them."""
        from gankit import ArraySource

        return ArraySource(*self._pixels(), value_range=self._value_range)

    def _pixels(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The kept uint8 NHWC pixels and (with ``labels``) their int32 labels."""
        names = SPLIT_FILES[self.config["split"]]
        try:
            location = self._locate()
        except OSError as exc:  # e.g. a folder on the way that this user may not enter
            where = exc.filename or self.config["path"] or self.config["cache_dir"]
            raise DatasetError(f"cannot look for CIFAR-10 in {where} ({exc.strerror or exc}); "
                               "check its permissions") from None
        batches = [_parse_batch(data, location / name)
                   for name, data in _read_batches(location, names)]
        pixels = np.concatenate([p for p, _ in batches])
        labels = np.concatenate([lab for _, lab in batches]).astype(np.int32)
        if self._classes:
            mapping = np.full(len(CLASS_NAMES), -1, np.int32)
            mapping[list(self._classes)] = np.arange(len(self._classes), dtype=np.int32)
            labels = mapping[labels]  # 0..k-1 in the order given; -1 for the others
            kept = labels >= 0
            pixels, labels = pixels[kept], labels[kept]
        images = np.ascontiguousarray(pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        return images, (labels if self.config["labels"] else None)

    def preflight(self) -> None:
        """A given ``dataset.path`` exists and holds CIFAR-10 (nothing is read or downloaded)."""
        if self.config["path"] is not None:
            try:
                self._locate()
            except OSError as exc:
                raise DatasetError(f"cannot look for CIFAR-10 in {self.config['path']} "
                                   f"({exc.strerror or exc}); check its permissions") from None

    def _locate(self) -> Path:
        """The batches folder or archive to read, downloading it if nothing is given or cached."""
        if self.config["path"] is not None:
            path = Path(self.config["path"]).expanduser()
            try:
                mode = path.stat().st_mode
            except FileNotFoundError:
                raise DatasetError(f"dataset.path: {path} does not exist; expected "
                                   f"{_EXPECTED}") from None
            if stat.S_ISREG(mode):
                return path
            if not stat.S_ISDIR(mode):
                raise DatasetError(f"dataset.path: {path} is not a regular file or folder; "
                                   f"expected {_EXPECTED}")
            found = _find_in(path)
            if found is None:
                raise DatasetError(f"dataset.path: {path} has no CIFAR-10 batch files, "
                                   f"{BATCHES_DIR} folder or {ARCHIVE_NAME}; expected {_EXPECTED}")
            return found
        cache = Path(self.config["cache_dir"] or keras_cache_dir()).expanduser().absolute()
        found = _find_in(cache) if cache.is_dir() else None
        if found is not None:
            return found
        for name, kind in ((KERAS_ARCHIVE, "file"), (KERAS_EXTRACTED, "folder")):
            if (cache / name).exists() or (cache / name).is_symlink():  # in the way of the download
                raise DatasetError(f"{cache / name} is in the way of the CIFAR-10 download (it "
                                   f"should be a {kind} or not exist); remove it, or set "
                                   "dataset.cache_dir to another folder")
        return _download(self.config["url"], cache) / BATCHES_DIR


def _class_indices(label: int | str | None, classes: list | None) -> tuple[int, ...]:
    """The kept classes' indices in the order given; empty for all ten."""
    if label is not None and classes is not None:
        raise RecipeError("set either dataset.label (one class) or dataset.classes, not both",
                          path="dataset.label")
    if label is not None:
        return (_class_index(label, "dataset.label"),)
    if classes is None:
        return ()
    if not classes:
        raise RecipeError("expected at least one class (or null for all ten)",
                          path="dataset.classes")
    for i, item in enumerate(classes):
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            raise RecipeError(f"expected a class name or an index 0-9, got {item!r}",
                              path=f"dataset.classes[{i}]")
    indices = tuple(_class_index(c, f"dataset.classes[{i}]") for i, c in enumerate(classes))
    for i, index in enumerate(indices):
        if index in indices[:i]:
            raise RecipeError(f"class '{CLASS_NAMES[index]}' is listed twice",
                              path=f"dataset.classes[{i}]")
    return indices


def _class_index(label: int | str, path: str) -> int:
    if isinstance(label, int):
        if not 0 <= label < len(CLASS_NAMES):
            raise RecipeError(f"expected a class index 0-9 or a name, got {label}", path=path)
        return label
    if label not in CLASS_NAMES:
        raise RecipeError(f"unknown CIFAR-10 class {label!r}{did_you_mean(label, CLASS_NAMES)}; "
                          f"valid names: {', '.join(CLASS_NAMES)} (or an index 0-9)", path=path)
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
        batches = []
        for name in names:
            with _open_file(location / name) as file:
                batches.append((name, _read_limited(file, location / name)))
        return batches
    with _open_file(location) as raw:
        found, intact = _read_archive(raw, location, names)
    missing = [name for name in names if name not in found]
    if missing and not intact:
        raise _corrupt(location, f"its list of files breaks off after {len(found)} batches")
    if missing:
        raise DatasetError(f"archive {location} has no {BATCHES_DIR}/"
                           f"{', '.join(missing)}; expected the original {ARCHIVE_NAME}")
    return [(name, found[name]) for name in names]


def _read_archive(raw: BinaryIO, location: Path,
                  names: tuple[str, ...]) -> tuple[dict[str, bytes], bool]:
    """The named members of a (compressed) tar archive, read in one pass, and whether the
    archive ended cleanly. A compressed archive is read to its end, so its checksum is
    verified: damage anywhere is reported, not passed on as wrong pixels or missing batches."""
    head = raw.read(6)
    raw.seek(0)
    compression = next(((kind, reader) for magic, kind, reader in _COMPRESSED
                        if head.startswith(magic)), None)
    stream = compression[1](raw) if compression else raw
    try:
        tar = tarfile.open(fileobj=stream, mode="r|")
    except _ARCHIVE_ERRORS as exc:
        if compression is None:
            raise DatasetError(f"{location} is not a readable {ARCHIVE_NAME} archive "
                               f"({_reason(exc)}); expected {_EXPECTED}") from None
        raise _corrupt(location, f"{compression[0]} data: {_reason(exc)}") from None
    found: dict[str, bytes] = {}
    try:
        with tar:
            for member in tar:
                name = member.name.rsplit("/", 1)[-1]
                if member.isfile() and name in names and name not in found:
                    if member.size > MAX_BATCH_BYTES:
                        raise DatasetError(f"{location / name} is {member.size} bytes, not a "
                                           f"CIFAR-10 batch (about 31 MB); expected the original "
                                           f"{ARCHIVE_NAME}")
                    found[name] = tar.extractfile(member).read()
            # tarfile stops without a word at a damaged header: after the last member there
            # must be nothing but the zero blocks that end a tar archive.
            intact = _only_zeros_left(tar.fileobj)
    except _ARCHIVE_ERRORS as exc:
        raise _corrupt(location, _reason(exc)) from None
    return found, intact


def _only_zeros_left(stream: Any) -> bool:
    """Read ``stream`` to its end (checking a compressed one's checksum): only zero bytes?"""
    clean = True
    while chunk := stream.read(1 << 20):
        clean = clean and not chunk.strip(b"\0")
    return clean


def _corrupt(location: Path, reason: str) -> DatasetError:
    return DatasetError(f"{location} is corrupt or truncated ({reason}); delete it and download "
                        f"{ARCHIVE_NAME} again")


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _open_file(path: Path) -> BinaryIO:
    """``path`` opened for reading, if it is a regular file (without blocking on a pipe)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise DatasetError(f"cannot read {path} ({exc.strerror or exc}); check its "
                           "permissions") from None
    file = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        file.close()
        raise DatasetError(f"{path} is not a regular file; expected {_EXPECTED}")
    return file


def _read_limited(file: BinaryIO, path: Path) -> bytes:
    try:
        data = file.read(MAX_BATCH_BYTES + 1)
    except OSError as exc:
        raise DatasetError(f"cannot read {path} ({exc.strerror or exc})") from None
    if len(data) > MAX_BATCH_BYTES:
        raise DatasetError(f"{path} is larger than {MAX_BATCH_BYTES >> 20} MB, not a CIFAR-10 "
                           "batch (about 31 MB)")
    return data


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
    except Exception as exc:  # a corrupt pickle raises almost anything
        raise DatasetError(f"{where} is not a readable CIFAR-10 batch (a pickled dict with "
                           f"b'data' and b'labels'): {type(exc).__name__}: {exc}") from None
    if not isinstance(batch, dict) or not {b"data", b"labels"} <= batch.keys():
        got = (f"a dict with keys {sorted(map(repr, batch))[:6]}" if isinstance(batch, dict)
               else f"a pickled {type(batch).__name__}")
        raise DatasetError(f"{where} is not a CIFAR-10 batch: expected a pickled dict with "
                           f"b'data' and b'labels', got {got}")
    pixels, labels = batch[b"data"], batch[b"labels"]
    # Checked before any conversion: np.asarray of a forged nested list can take forever.
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8 or pixels.ndim != 2 \
            or pixels.shape[1] != 3072 or pixels.nbytes > len(data):
        got = (f"{pixels.dtype} {pixels.shape}" if isinstance(pixels, np.ndarray)
               else type(pixels).__name__)
        raise DatasetError(f"{where}: expected b'data' of shape (n, 3072) uint8 (a numpy array), "
                           f"got {got}")
    if not isinstance(labels, (list, np.ndarray)) or len(labels) != len(pixels) or not all(
            type(v) is int or isinstance(v, np.integer) for v in labels) \
            or any(not 0 <= v < len(CLASS_NAMES) for v in labels):
        raise DatasetError(f"{where}: expected b'labels' to be {len(pixels)} class indices "
                           f"0-9 (one per image)")
    return pixels, np.asarray(labels, dtype=np.int64)


def _download(url: str, cache: Path) -> Path:
    """Download the archive into ``cache`` and extract it there, in Keras 3's layout, with
    ``keras.utils.get_file`` (which checks the md5); returns the extracted folder."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"cannot write to the CIFAR-10 cache folder {cache} ({exc}); set "
                           "dataset.cache_dir to a writable folder or dataset.path to the "
                           "data") from None
    if not os.access(cache, os.W_OK | os.X_OK):  # get_file would quietly use /tmp instead
        raise DatasetError(f"cannot write to the CIFAR-10 cache folder {cache} (permission "
                           "denied); set dataset.cache_dir to a writable folder or "
                           "dataset.path to the data")
    print(f"Downloading CIFAR-10 from {url} into {cache}", file=sys.stderr, flush=True)
    from keras.utils import get_file

    archive = cache / KERAS_ARCHIVE
    timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)  # urlretrieve has no timeout of its own
    try:
        with contextlib.redirect_stdout(sys.stderr):  # Keras' progress bar
            folder = get_file(fname=KERAS_EXTRACTED, origin=url, extract=True,
                              file_hash=ARCHIVE_MD5, cache_dir=str(cache), cache_subdir="")
    except ValueError as exc:
        if "hash does not match" not in str(exc):
            raise _offline(url, exc, cache) from None
        digest = hashlib.md5(archive.read_bytes(), usedforsecurity=False).hexdigest()
        archive.unlink()
        raise DatasetError(f"the file downloaded from {url} has md5 {digest}, expected "
                           f"{ARCHIVE_MD5} (incomplete or altered); it was deleted, try again "
                           f"or set dataset.path to a copy of {ARCHIVE_NAME}") from None
    except _NETWORK_ERRORS as exc:
        raise _offline(url, exc, cache) from None
    except OSError as exc:
        raise DatasetError(f"cannot save the CIFAR-10 download in {cache} ({exc}); free some "
                           "space or set dataset.cache_dir to another folder") from None
    except Exception as exc:  # noqa: BLE001 - get_file reports a failed fetch as Exception
        if not str(exc).startswith("URL fetch failure"):
            raise
        raise _offline(url, exc, cache) from None
    finally:
        socket.setdefaulttimeout(timeout)
    return Path(folder)


def _offline(url: str, exc: BaseException, cache: Path) -> DatasetError:
    reason = exc if isinstance(exc, urllib.error.HTTPError) else getattr(exc, "reason", exc)
    return DatasetError(
        f"could not download CIFAR-10 from {url} ({reason}); this machine may be offline. "
        f"Download {ARCHIVE_NAME} on a connected machine and set dataset.path=/path/to/"
        f"{ARCHIVE_NAME} (or an extracted {BATCHES_DIR} folder), or put it in {cache}")
