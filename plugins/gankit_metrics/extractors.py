"""Feature extractors: Keras' ImageNet InceptionV3, or any ``.keras`` model the user names.

Both load their network lazily, once per instance, on the first :meth:`protocol` or
:meth:`extract` call; constructing one (recipe validation, ``gankit plugins``) imports no
TensorFlow.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

import gankit
from gankit.errors import GankitError, RecipeError, did_you_mean
from gankit.interfaces import FeatureExtractor, Features
from gankit.params import REQUIRED, Param

WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"
WEIGHTS_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
               + WEIGHTS_FILE)
WEIGHTS_MD5 = "9a0d58056eeedaa3f26cb7ebd46da564"  # the hash keras.applications checks
RESIZE = "bilinear"


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class _Network:
    """A loaded network cut into what an extractor returns."""

    run: Any                       # [0, 1] images -> (features, logits source or None)
    input_size: tuple[int, int, int]
    dense: tuple[np.ndarray, np.ndarray] | None  # kernel, bias of a softmax Dense: its logits


class _KerasExtractor(FeatureExtractor):
    """Shared by both extractors: resize, rescale, run, split into features and logits."""

    input_range: tuple[float, float] = (0.0, 1.0)

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self._network: _Network | None = None
        self._protocol: dict[str, Any] | None = None

    def _load(self) -> tuple[Any, str | None, str | None, dict[str, Any]]:
        """(model, feature layer or None, logits layer or None, protocol entries)."""
        raise NotImplementedError

    def preflight(self) -> None:
        """Checks that need no TensorFlow (do the named files exist?).

        Raises:
            GankitError: naming the parameter and the file.
        """

    def protocol(self) -> Mapping[str, Any]:
        self._ensure_loaded()
        return dict(self._protocol)

    def extract(self, images: np.ndarray) -> Features:
        network = self._ensure_loaded()
        images = _fit_channels(np.asarray(images, dtype=np.float32), network.input_size[2])
        features, source = network.run(images)
        features = np.asarray(features, dtype=np.float32).reshape(len(images), -1)
        if source is None:
            return Features(features)
        source = np.asarray(source, dtype=np.float32).reshape(len(images), -1)
        if network.dense is not None:
            kernel, bias = network.dense
            source = source @ kernel + bias
        return Features(features, source)

    def _ensure_loaded(self) -> _Network:
        if self._network is None:
            self.preflight()
            model, layer, logits_layer, entries = self._load()
            self._network, described = _split(model, layer, logits_layer, self.input_range)
            self._protocol = {"type": self.name, **entries, **described,
                              "input_range": list(self.input_range), "resize": RESIZE}
        return self._network


class InceptionV3Extractor(_KerasExtractor):
    """keras.applications.InceptionV3 on ImageNet: 2048-d pool features and 1000 logits.

    These are Keras' ImageNet weights, not the TF-slim graph the published FIDs used, so
    absolute values differ from papers; compare numbers made with the same extractor.
    """

    name = "inception_v3"
    params = {
        "weights_path": Param(str, None, nullable=True, is_path=True,
                              doc=f"the ImageNet weights file ({WEIGHTS_FILE}); null: "
                                  "download once into ~/.keras/models, as Keras does"),
    }
    input_range = (-1.0, 1.0)  # keras.applications.inception_v3.preprocess_input

    def preflight(self) -> None:
        path = self.config["weights_path"]
        if path is not None and not Path(path).is_file():
            what = "is not a file" if Path(path).exists() else "does not exist"
            raise GankitError(f"extractor.weights_path: {path} {what}; expected the InceptionV3 "
                              f"weights file {WEIGHTS_FILE}")

    def _load(self):
        import keras

        path = self.config["weights_path"] or _imagenet_weights()
        model = keras.applications.InceptionV3(include_top=True, weights=None)
        try:
            model.load_weights(path)
        except Exception as exc:  # noqa: BLE001 - h5py and Keras raise many types
            raise GankitError(f"extractor.weights_path: cannot load {path} into InceptionV3 "
                              f"({_first_line(exc)}); expected {WEIGHTS_FILE}") from None
        entries = {"network": "keras.applications.InceptionV3 (ImageNet)",
                   "weights_file": Path(path).name, "weights_sha256": file_sha256(path)}
        return model, "avg_pool", "predictions", entries


def _imagenet_weights() -> str:
    """The path of Keras' cached ImageNet weights, downloading them if needed."""
    import keras

    chatter = io.StringIO()  # Keras' download messages: a failure must stay one line
    try:
        with contextlib.redirect_stdout(chatter):
            path = keras.utils.get_file(WEIGHTS_FILE, WEIGHTS_URL, cache_subdir="models",
                                        file_hash=WEIGHTS_MD5)
        if "Downloading" in chatter.getvalue():
            print(f"gankit: downloaded the InceptionV3 ImageNet weights to {path}",
                  file=sys.stderr)
        return path
    except Exception as exc:  # noqa: BLE001 - get_file raises a bare Exception when offline
        home = _keras_home()
        raise GankitError(
            f"inception_v3: cannot download the ImageNet weights ({_first_line(exc)}); fetch "
            f"{WEIGHTS_FILE} from {WEIGHTS_URL} on a machine with internet access and either "
            f"put it in {home}/models/ or pass --set extractor.weights_path=FILE "
            f"(or use --extractor keras_model with a classifier of your own)") from None


def _keras_home() -> str:
    try:
        from keras.src.backend.config import keras_home  # where get_file caches (KERAS_HOME)
        return keras_home()
    except Exception:  # noqa: BLE001 - a private helper of Keras that may move
        return os.environ.get("KERAS_HOME", "~/.keras")


class KerasModelExtractor(_KerasExtractor):
    """Any saved .keras model: a named layer's output as features, its classifier as logits."""

    name = "keras_model"
    params = {
        "path": Param(str, REQUIRED, is_path=True, doc="the .keras model file"),
        "layer": Param(str, None, nullable=True,
                       doc="the layer whose output are the features (flattened); null: the "
                           "layer before the last"),
        "input_range": Param(list, [0.0, 1.0], item_type=float, length=2,
                             doc="the pixel range the model expects, e.g. [0, 255] or [-1, 1]"),
        "logits_layer": Param(str, None, nullable=True,
                              doc="the layer whose output are class logits (a softmax is "
                                  "undone); null: the last layer, if it outputs one value "
                                  "per class"),
        "class_names": Param(list, None, nullable=True, item_type=str,
                             doc="the names of the logits' classes, in order (class_accuracy "
                                 "matches them with a generator's classes); null: those of "
                                 "the classifier's report NAME.json beside the file, if any"),
    }

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        low, high = self.config["input_range"]
        if not low < high:
            raise RecipeError(f"expected [low, high] with low < high, got [{low}, {high}]",
                              path="extractor.input_range")
        self.input_range = (low, high)
        names = self.config["class_names"]
        if names is not None and (not names or len(set(names)) != len(names)):
            raise RecipeError(f"expected distinct class names, one per logit, got {names}",
                              path="extractor.class_names")

    def class_names(self) -> tuple[str, ...] | None:
        if self.config["class_names"] is not None:
            return tuple(self.config["class_names"])
        return _report_classes(Path(self.config["path"]).expanduser().with_suffix(".json"))

    def preflight(self) -> None:
        path = Path(self.config["path"]).expanduser()
        if not path.is_file():
            what = "is not a file" if path.exists() else "does not exist"
            raise GankitError(f"extractor.path: {path} {what}; expected a .keras model file "
                              f"(gankit train-classifier makes one)")
        if not zipfile.is_zipfile(path):
            raise GankitError(f"extractor.path: {path} is not a .keras model file (a Keras 3 "
                              f"zip archive); save the model with model.save('NAME.keras')")

    def _load(self):
        path = Path(self.config["path"]).expanduser()
        try:  # with the Keras objects the plugins declare (their gankit_keras_objects hooks)
            model = gankit.load_keras_model(path)
        except GankitError as exc:  # "cannot load PATH: reason", naming a missing class
            raise GankitError(f"extractor.path: {exc}") from None
        layer = self.config["layer"]
        logits = self.config["logits_layer"]
        layers = _layers(model, path)
        if layer is None:
            if len(layers) < 2:
                raise GankitError(f"extractor.layer: {path} has only {len(layers)} layer(s); "
                                  f"name the layer to use")
            layer = layers[-2].name
        _check_layer(model, layers, layer, "extractor.layer", path)
        if logits is not None:
            _check_layer(model, layers, logits, "extractor.logits_layer", path)
        else:
            last = layers[-1]
            shape = tuple(last.output.shape)
            logits = last.name if len(shape) == 2 and (shape[1] or 0) > 1 else None
        entries = {"file": path.name, "file_sha256": file_sha256(path)}
        classes = self.class_names()
        if classes is not None:
            entries["classes"] = list(classes)
        return model, layer, logits, entries


def _report_classes(report: Path) -> tuple[str, ...] | None:
    """The ``classes`` of a ``gankit train-classifier`` report, or None (no readable report,
    or one without a list of distinct names)."""
    import json

    try:
        classes = json.loads(report.read_bytes()).get("classes")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(classes, list) or not classes or \
            not all(isinstance(c, str) for c in classes) or len(set(classes)) != len(classes):
        return None
    return tuple(classes)


def _layers(model, path: Path) -> list:
    if not getattr(model, "inputs", None):
        raise GankitError(f"extractor.path: {path} is a subclassed model without a graph of "
                          f"layers; save a functional or Sequential model")
    return [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]


def _check_layer(model, layers: list, name: str, key: str, path: Path) -> None:
    names = [layer.name for layer in layers]
    if name not in names:
        shown = ", ".join(names[-8:])
        raise GankitError(f"{key}: {path} has no layer named '{name}'"
                          f"{did_you_mean(name, names)}; its last layers: {shown}")


def _split(model, layer: str, logits_layer: str | None,
           input_range: tuple[float, float]) -> tuple[_Network, dict[str, Any]]:
    """A function from [0, 1] images to (features, logits source), and how it was cut."""
    import keras
    import tensorflow as tf

    feature_output = model.get_layer(layer).output
    dense = None
    logits_output = None
    described: dict[str, Any] = {"layer": layer, "logits_layer": logits_layer}
    if logits_layer is not None:
        target = model.get_layer(logits_layer)
        activation = getattr(getattr(target, "activation", None), "__name__", None)
        if isinstance(target, keras.layers.Dense) and activation == "softmax":
            # the logits are the Dense layer's pre-activation: its input times its weights
            logits_output = target.input
            dense = (np.asarray(target.kernel, np.float32), np.asarray(target.bias, np.float32)
                     if target.use_bias else np.zeros(target.units, np.float32))
            described["logits_layer"] = f"{logits_layer} (before its softmax)"
        elif isinstance(target, keras.layers.Softmax) or activation == "softmax":
            logits_output = target.input
            described["logits_layer"] = f"{logits_layer} (its input, before the softmax)"
        else:
            logits_output = target.output
    if len(model.inputs) != 1:
        raise GankitError(f"the extractor's model takes {len(model.inputs)} inputs; expected "
                          f"one: the images")
    outputs = [feature_output] + ([logits_output] if logits_output is not None else [])
    cut = keras.Model(model.inputs[0], outputs)
    shape = tuple(model.inputs[0].shape[1:])
    if len(shape) != 3 or None in shape:
        raise GankitError(f"the extractor's model takes inputs of shape {shape}; expected "
                          f"images of a fixed (height, width, channels)")
    height, width, _ = shape
    low, high = input_range

    @tf.function(reduce_retracing=True)
    def forward(images, resize: bool):
        if resize:
            images = tf.image.resize(images, (height, width), method=RESIZE)
        result = cut(images * (high - low) + low, training=False)
        result = list(result) if isinstance(result, (list, tuple)) else [result]
        return result[0], (result[1] if len(result) > 1 else None)

    def run(images: np.ndarray):
        return forward(tf.constant(images), images.shape[1:3] != (height, width))

    network = _Network(run, shape, dense)
    described["input_size"] = list(shape)
    return network, described


def _fit_channels(images: np.ndarray, channels: int) -> np.ndarray:
    have = images.shape[-1]
    if have == channels:
        return images
    if have == 1 and channels == 3:
        return np.repeat(images, 3, axis=-1)
    if have == 3 and channels == 1:  # ITU-R 601 luma, as Pillow's convert("L")
        return images @ np.array([[0.299], [0.587], [0.114]], np.float32)
    raise GankitError(f"the extractor takes images with {channels} channel(s), got {have}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


EXTRACTORS = (InceptionV3Extractor, KerasModelExtractor)
