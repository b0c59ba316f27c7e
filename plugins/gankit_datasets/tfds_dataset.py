"""Any TensorFlow Datasets (TFDS) dataset of images, read from a local, prepared ``data_dir``.

Needs the optional ``tensorflow-datasets`` package (``pip install "gankit[tfds]"``) and a
dataset prepared in a random-access format (``array_record``, TFDS' default for new
preparations, or ``parquet``): examples are read by index through ``tfds.data_source``, their
encoded images decoded in the ``tf.data`` pipeline. Nothing is downloaded. The dataset's
folder, its features and class names are read from TFDS' JSON and text files, so recipe
validation and preflight need neither TFDS nor TensorFlow.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

import gankit
from gankit.errors import DatasetError
from gankit.params import REQUIRED, Param
from gankit_datasets.scaling import SCALE_PARAM, ScaledDataset

_NAME = re.compile(r"^[a-z0-9_]+(/[A-Za-z0-9_.\-]+)?(:[0-9]+\.[0-9]+\.[0-9]+)?$")
_IMAGE_FEATURE = "tensorflow_datasets.core.features.image_feature.Image"
_LABEL_FEATURE = "tensorflow_datasets.core.features.class_label_feature.ClassLabel"
_INSTALL = 'pip install "gankit[tfds]" (or pip install tensorflow-datasets)'


class TfdsDataset(ScaledDataset):
    """The images (and class labels) of a TFDS dataset prepared in a local folder."""

    name = "tfds"
    params = {
        "name": Param(str, default=REQUIRED,
                      doc="the TFDS dataset: NAME, NAME/CONFIG, optionally :VERSION "
                          "(e.g. mnist, cifar10:3.0.2); the newest prepared version by default"),
        "data_dir": Param(str, default=None, nullable=True, is_path=True,
                          doc="the folder TFDS prepared the dataset in; null is $TFDS_DATA_DIR "
                              "or ~/tensorflow_datasets"),
        "split": Param(str, default="train",
                       doc="the TFDS split, slicing allowed (e.g. train, test, train[:10%])"),
        "image_key": Param(str, default="image", doc="the Image feature to read"),
        "label_key": Param(str, default="label",
                           doc="the ClassLabel feature giving the labels (with labels: true)"),
        "labels": Param(bool, default=False,
                        doc="yield the class labels of label_key with the images"),
        "height": Param(int, default=32, min=1, doc="the height of the dataset's images"),
        "width": Param(int, default=32, min=1, doc="the width of the dataset's images"),
        "channels": Param(int, default=3, choices=(1, 3), doc="3 for RGB, 1 for grayscale"),
        "scale": SCALE_PARAM,
    }

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        if not _NAME.match(self.config["name"]):
            from gankit.errors import RecipeError

            raise RecipeError(f"expected a TFDS name like mnist, NAME/CONFIG or NAME:1.0.0, got "
                              f"{self.config['name']!r}", path="dataset.name")
        self._class_names: tuple[str, ...] | None = None

    @property
    def class_names(self) -> tuple[str, ...] | None:
        """With ``labels: true``, the names of ``label_key``'s classes (from the prepared
        folder's ``LABEL_KEY.labels.txt``); None otherwise.

        Raises:
            DatasetError: if the dataset is not prepared in ``data_dir``, or has no such
                ClassLabel feature.
        """
        if not self.config["labels"]:
            return None
        if self._class_names is None:
            folder = self._folder()
            key = self.config["label_key"]
            feature = self._features(folder).get(key)
            if feature is None or feature.get("pythonClassName") != _LABEL_FEATURE:
                raise DatasetError(f"dataset.label_key: {self.config['name']} has no ClassLabel "
                                   f"feature {key!r}{self._feature_list(folder)}")
            names_file = folder / f"{key}.labels.txt"
            if names_file.is_file():
                names = tuple(line.strip() for line in names_file.read_text().splitlines()
                              if line.strip())
            else:  # a ClassLabel given only its number of classes
                count = int(feature.get("classLabel", {}).get("numClasses", 0))
                names = tuple(str(i) for i in range(count))
            if not names:
                raise DatasetError(f"{names_file} names no classes")
            self._class_names = names
        return self._class_names

    def preflight(self) -> None:
        """tensorflow-datasets is installed, the dataset is prepared in ``data_dir`` and has
        the image feature, of this shape (nothing is imported or read but TFDS' metadata)."""
        if importlib.util.find_spec("tensorflow_datasets") is None:
            raise DatasetError(f"the tfds dataset needs the tensorflow-datasets package: {_INSTALL}")
        self._check_image_feature(self._folder())
        self.class_names  # noqa: B018 - checks the label feature

    def source(self) -> TfdsSource:
        """Random access to the split through ``tfds.data_source`` (no image is decoded
        until the pipeline reads it).

        Raises:
            DatasetError: tensorflow-datasets is missing, the dataset is not prepared, not in
                a random-access format, or has no such split or features.
        """
        self.preflight()
        tfds = _import_tfds()
        name, data_dir = self.config["name"], str(self._data_dir())
        key = self.config["image_key"]
        try:
            records = tfds.data_source(name, split=self.config["split"], data_dir=data_dir,
                                       download=False,
                                       decoders={key: tfds.decode.SkipDecoding()})
        except NotImplementedError:
            raise DatasetError(
                f"{name} in {data_dir} is prepared in a format without random access (e.g. "
                f"tfrecord); prepare it again as array_record: tfds build {name} --data_dir "
                f"{data_dir} --file_format array_record") from None
        except ValueError as exc:  # an unknown split, a bad slice
            raise DatasetError(f"dataset.split: {_first_line(exc)}") from None
        except Exception as exc:  # noqa: BLE001 - TFDS raises many kinds for a missing dataset
            raise DatasetError(f"cannot open {name} in {data_dir} ({_first_line(exc)}); "
                               f"{_how_to_prepare(name, data_dir)}") from None
        labels = None
        if self.config["labels"]:
            labels = _read_labels(records, self.config["label_key"], len(self.class_names))
        return TfdsSource(records, key, labels, self.image_shape, self._value_range)

    def load(self) -> gankit.Examples:
        """Every image of the split (decoded as in training) and, with ``labels``, its labels.

        Raises:
            DatasetError: as :meth:`source`, or if an image cannot be decoded.
        """
        import tensorflow as tf

        from gankit import dataset_error

        source = self.source()
        chunk = 256
        pipeline = (tf.data.Dataset.range(0, source.size, chunk)
                    .map(lambda start: source.read(tf.range(
                        start, tf.minimum(start + chunk, source.size))))
                    .prefetch(2))
        try:
            images = np.concatenate([part.numpy() for part in pipeline])
        except tf.errors.OpError as exc:
            raise dataset_error(exc) or DatasetError(
                f"cannot decode the images of {self.config['name']} "
                f"({_first_line(exc)})") from None
        return gankit.Examples(images, source.labels)

    def _data_dir(self) -> Path:
        given = self.config["data_dir"] or os.environ.get("TFDS_DATA_DIR")
        return Path(given or "~/tensorflow_datasets").expanduser()

    def _folder(self) -> Path:
        """The prepared version folder (with ``dataset_info.json``) of the dataset."""
        data_dir = self._data_dir()
        base, _, version = self.config["name"].partition(":")
        folder = data_dir / base
        if version:
            found = folder / version if (folder / version / "dataset_info.json").is_file() else None
        else:
            versions = sorted((tuple(int(p) for p in v.name.split(".")), v)
                              for v in (folder.iterdir() if folder.is_dir() else ())
                              if re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", v.name)
                              and (v / "dataset_info.json").is_file())
            found = versions[-1][1] if versions else None
        if found is None:
            if importlib.util.find_spec("tensorflow_datasets") is None:  # first things first
                raise DatasetError(f"the tfds dataset needs the tensorflow-datasets package: "
                                   f"{_INSTALL}; then prepare {self.config['name']} in "
                                   f"{data_dir} (docs/recipes.md, dataset tfds)")
            raise DatasetError(f"no prepared TFDS dataset {self.config['name']} in {data_dir}; "
                               f"{_how_to_prepare(self.config['name'], data_dir)}")
        return found

    def _features(self, folder: Path) -> dict[str, Any]:
        try:
            info = json.loads((folder / "features.json").read_text())
            return dict(info["featuresDict"]["features"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DatasetError(f"cannot read the features of {self.config['name']} from "
                               f"{folder / 'features.json'} ({exc}); expected a dictionary of "
                               "features prepared by TFDS") from None

    def _feature_list(self, folder: Path) -> str:
        return f" (its features: {', '.join(sorted(self._features(folder)))})"

    def _check_image_feature(self, folder: Path) -> None:
        key = self.config["image_key"]
        feature = self._features(folder).get(key)
        if feature is None or feature.get("pythonClassName") != _IMAGE_FEATURE:
            raise DatasetError(f"dataset.image_key: {self.config['name']} has no Image feature "
                               f"{key!r}{self._feature_list(folder)}")
        dims = feature.get("image", {}).get("shape", {}).get("dimensions", [])
        shape = tuple(int(d) for d in dims)
        expected = self.image_shape
        if len(shape) == 3 and any(got not in (-1, want) for got, want in zip(shape, expected)):
            raise DatasetError(
                f"{self.config['name']}'s {key!r} images are {shape[0]}x{shape[1]}x{shape[2]} "
                f"(height x width x channels), expected {expected[0]}x{expected[1]}x"
                f"{expected[2]}; set dataset.height, dataset.width and dataset.channels to match")


class TfdsSource(gankit.DataSource):
    """Examples of a ``tfds.data_source`` read by index: the encoded images are fetched in
    Python (``tf.numpy_function``) and decoded by TensorFlow."""

    def __init__(self, records: Any, image_key: str, labels: np.ndarray | None,
                 image_shape: tuple[int, int, int], value_range: tuple[float, float]) -> None:
        self.records, self.image_key, self._labels = records, image_key, labels
        self.image_shape, self.value_range = tuple(image_shape), value_range

    @property
    def size(self) -> int:
        return len(self.records)

    @property
    def labels(self) -> np.ndarray | None:
        return self._labels

    def _encoded(self, indices: np.ndarray) -> np.ndarray:
        found = self.records.__getitems__([int(i) for i in indices])
        return np.array([record[self.image_key] for record in found] or [b""], dtype=object)[
            :len(indices)]

    def read(self, indices):
        import tensorflow as tf

        from gankit import fail_unless, scale_uint8

        encoded = tf.numpy_function(self._encoded, [indices], tf.string, stateful=False)
        encoded.set_shape([None])
        channels = self.image_shape[2]

        def decode(data):
            image = tf.io.decode_image(data, channels=channels, expand_animations=False)
            fits = tf.reduce_all(tf.equal(tf.shape(image), self.image_shape))
            with tf.control_dependencies([fail_unless(
                    fits, "an image of the TFDS dataset is ",
                    tf.strings.reduce_join(tf.strings.as_string(tf.shape(image)), separator="x"),
                    f" (height x width x channels), expected "
                    f"{'x'.join(map(str, self.image_shape))}; set dataset.height, "
                    "dataset.width and dataset.channels to match")]):
                return tf.identity(image)

        pixels = tf.map_fn(decode, encoded,
                           fn_output_signature=tf.TensorSpec(self.image_shape, tf.uint8))
        return scale_uint8(pixels, self.value_range)


def _import_tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise DatasetError(f"the tfds dataset needs the tensorflow-datasets package: "
                           f"{_INSTALL}") from None
    return tfds


def _read_labels(records: Any, key: str, classes: int) -> np.ndarray:
    labels = np.empty(len(records), np.int32)
    for start in range(0, len(records), 1024):
        found = records.__getitems__(list(range(start, min(start + 1024, len(records)))))
        labels[start:start + len(found)] = [int(record[key]) for record in found]
    if len(labels) and not 0 <= labels.min() <= labels.max() < classes:
        raise DatasetError(f"the labels of {key!r} range over {labels.min()} .. {labels.max()}, "
                           f"expected 0 .. {classes - 1}")
    return labels


def _how_to_prepare(name: str, data_dir: Any) -> str:
    return (f"prepare it on a machine with internet access with: tfds build {name} --data_dir "
            f"{data_dir} --file_format array_record (or tfds.builder(...).download_and_prepare), "
            "then copy that folder here and set dataset.data_dir to it")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
