"""A small image classifier trained on a labelled dataset, saved for offline feature metrics.

``gankit train-classifier`` trains it. The saved ``.keras`` file takes images in [0, 1]
(it normalises them itself) and ends in two named layers: ``features`` (a 256-d ReLU layer)
and ``logits`` (one score per class, no softmax). A ``keras_model`` feature extractor reads
``features``, the layer before the last; the logits serve metrics that need class
predictions. Nothing here needs ImageNet weights or a network connection.

The network is a plain convolutional net in the style of fast CIFAR-10 trainers: a stem
convolution, then three blocks of ``conv -> max-pool -> batch norm -> ReLU -> conv -> batch
norm -> ReLU`` at widths ``width, 2 width, 4 width``, global average pooling, ``features``,
``logits``. It trains with SGD (Nesterov momentum, decoupled weight decay, a linear warm-up
then cosine decay of the learning rate) on random flips and translations of up to 1/8 of
the image, and is checked on a stratified held-out part of the data it never trains on.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from gankit.errors import DatasetError, GankitError, RecipeError
from gankit.interfaces import Dataset
from gankit.plugin.registry import ComponentSpec, Registry, resolve
from gankit.rundir.owned import refuse_owned_output
from gankit.util import atomic

FEATURES_LAYER = "features"
LOGITS_LAYER = "logits"
FEATURE_DIM = 256
PRECISIONS = ("auto", "mixed_bfloat16", "float32")
_EVAL_BATCH = 500


@dataclass(frozen=True)
class ClassifierConfig:
    """The settings of a training run (the options of ``gankit train-classifier``).

    Raises:
        GankitError: for a value out of range, naming the option.
    """

    holdout: float = 0.1
    """Fraction of each class held out to measure accuracy (never trained on)."""
    epochs: int = 10
    batch_size: int = 256
    seed: int = 0
    """Seeds the split, the weights, the order of the examples and the augmentation."""
    width: int = 48
    """Channels of the first block; the second and third have twice and four times as many."""
    precision: str = "auto"
    """``mixed_bfloat16`` computes in bfloat16 with float32 weights (on a CPU with AMX,
    convolutions run several times faster, a whole run about 1.4x); ``float32`` computes in
    float32; ``auto`` picks the faster of the two on this machine, as ``train.precision:
    auto`` does (``gankit.training.precision``). The saved model is float32 either way."""
    learning_rate: float = 0.2
    """The peak learning rate, reached after the warm-up (for batch_size 256)."""
    weight_decay: float = 5e-3

    def __post_init__(self) -> None:
        def fail(option: str, expected: str, got: Any) -> None:
            raise GankitError(f"--{option}: expected {expected}, got {got!r}")

        if not (isinstance(self.holdout, (int, float)) and 0 < self.holdout < 1):
            fail("holdout", "a fraction between 0 and 1, exclusive (e.g. 0.1)", self.holdout)
        for option, value, top in (("epochs", self.epochs, 10_000),
                                   ("batch-size", self.batch_size, 65_536),
                                   ("width", self.width, 1024)):
            if not (isinstance(value, int) and 1 <= value <= top):
                fail(option, f"an integer from 1 to {top}", value)
        if not (isinstance(self.seed, int) and 0 <= self.seed < 2 ** 32):
            fail("seed", "an integer from 0 to 2**32 - 1", self.seed)
        if self.precision not in PRECISIONS:
            fail("precision", " or ".join(PRECISIONS), self.precision)


def _precision(requested: str):
    """What ``--precision`` resolves to here: float16 is not offered (its loss scaling is
    the trainer's), so ``auto`` on a float16 GPU computes in float32."""
    from gankit.training.precision import Choice, choose

    choice = choose(requested)
    if choice.policy == "mixed_float16":
        return Choice(requested, "float32", choice.reason + "; train-classifier offers no "
                      "float16 (it has no loss scaling)")
    return choice


@dataclass(frozen=True)
class ClassifierResult:
    """What :func:`train_classifier` wrote and measured."""

    model_file: Path
    report_file: Path
    holdout_accuracy: float
    per_class_accuracy: dict[str, float | None]
    """By class name; None for a class with no held-out image."""
    seconds: float
    report: dict[str, Any] = field(repr=False, default_factory=dict)
    """Everything written to ``report_file``."""


def report_path(model_file: str | Path) -> Path:
    """The JSON written beside a classifier: ``NAME.keras`` -> ``NAME.json``."""
    return Path(model_file).with_suffix(".json")


def check_output(model_file: str | Path) -> Path:
    """Check, before anything slow, that the classifier can be saved at ``model_file``.

    Raises:
        GankitError: if it does not end in ``.keras``, is a folder, or its folder cannot be
            created or written.
    """
    path = Path(model_file).expanduser()
    if path.suffix != ".keras":
        raise GankitError(f"--out: expected a file name ending in .keras, got '{model_file}'")
    if path.is_dir():
        raise GankitError(f"--out: {path} is a folder; name the .keras file to write")
    refuse_owned_output(path)
    refuse_owned_output(path.with_suffix(".json"), "--out's report")
    folder = path.absolute().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GankitError(f"--out: cannot create the folder {folder} ({exc.strerror or exc})") \
            from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise GankitError(f"--out: cannot write in {folder} (permission denied)")
    return path.absolute()


def labelled_dataset(section: Any, registry: Registry, *,
                     source: str = "--dataset") -> tuple[ComponentSpec, Dataset]:
    """Check a dataset section (``{type: NAME, ...}``) as a recipe would and build it.

    Relative paths in it are made absolute (against the current folder). Nothing is read.

    Raises:
        RecipeError: an unknown dataset or key, or a bad value, naming ``dataset.KEY``.
        DatasetError: if the dataset has no labels, or its data is missing (preflight).
    """
    spec = resolve(registry, "dataset", section, "dataset", source=source)
    params = spec.registration.component.params
    config = {key: (os.path.abspath(os.path.expanduser(value))
                    if params[key].is_path and isinstance(value, str) and value else value)
              for key, value in spec.config.items()}
    if "labels" in params and not (isinstance(section, dict) and "labels" in section):
        config["labels"] = True  # the built-in datasets yield labels only when asked to
    spec = ComponentSpec(spec.kind, spec.type, spec.registration, config, spec.path,
                         spec.registry)
    try:
        dataset = spec.create()
    except RecipeError as err:
        err.source = err.source or source
        raise
    if not dataset.class_names and "labels" in params:
        raise DatasetError("the dataset has no labels (dataset.labels is false); a classifier "
                           "needs class labels: leave dataset.labels unset or set it to true")
    if not dataset.class_names:
        raise DatasetError(f"the dataset has no labels; the '{spec.type}' dataset yields images "
                           f"only, and a classifier needs a dataset with class labels (e.g. "
                           f"{{type: cifar10, path: cifar-10-python.tar.gz}})")
    if len(dataset.class_names) < 2:
        raise DatasetError(f"the dataset has only one class ({dataset.class_names[0]}); a "
                           f"classifier needs two or more (for cifar10: leave label unset)")
    dataset.preflight()
    return spec, dataset


def load_labelled(dataset: Dataset) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Load the dataset's images, scaled to [0, 1], their labels and the class names.

    Raises:
        DatasetError: if it loads no labels, or labels outside its class names.
    """
    from gankit.interfaces.data import as_examples

    loaded = dataset.load()
    names = tuple(dataset.class_names or ())
    examples = as_examples(loaded, dataset.image_shape)
    if examples.labels is None or not names:
        raise DatasetError("the dataset has no labels; a classifier needs a dataset that "
                           "loads class labels with its images")
    if len(examples.labels) and not 0 <= examples.labels.min() <= examples.labels.max() \
            < len(names):
        raise DatasetError(f"the dataset's labels range over {examples.labels.min()} .. "
                           f"{examples.labels.max()}, expected 0 .. {len(names) - 1} (one per "
                           f"class name)")
    low, high = (float(v) for v in dataset.value_range)
    images = examples.images
    if (low, high) != (0.0, 1.0):
        images = (images - np.float32(low)) * np.float32(1.0 / (high - low))
    return np.clip(images, 0.0, 1.0, out=images), examples.labels, names


def stratified_split(labels: np.ndarray, holdout: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, held_out)``: ``holdout`` of each class, drawn with ``seed``.

    Every class with two or more examples gives at least one to each side; a class with a
    single example is trained on. Both index arrays are sorted.

    Raises:
        DatasetError: if nothing can be held out (every class has one example).
    """
    rng = np.random.default_rng(seed)
    train, held = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = min(max(round(len(members) * holdout), 1), len(members) - 1)
        held.append(members[:count])
        train.append(members[count:])
    held_out = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
    if not len(held_out):
        raise DatasetError(f"cannot hold out any of the {len(labels)} images: every class has "
                           "fewer than two")
    return np.sort(np.concatenate(train)), held_out


def build_classifier(image_shape: tuple[int, int, int], num_classes: int, *, width: int,
                     mean: Any = 0.5, variance: Any = 0.25, precision: str = "float32"):
    """The classifier network (uncompiled) for images in [0, 1].

    Args:
        image_shape: ``(height, width, channels)``.
        num_classes: outputs of the ``logits`` layer.
        width: channels of the first block.
        mean, variance: per-channel statistics of the training images, baked into the
            model's first layer.
        precision: the dtype policy of the hidden layers; normalisation and logits stay
            float32.
    """
    import keras
    from keras import layers

    def conv(x, channels, name):
        return layers.Conv2D(channels, 3, padding="same", use_bias=False, dtype=precision,
                             name=name)(x)

    def norm_relu(x, name):
        x = layers.BatchNormalization(dtype=precision, name=f"{name}_bn")(x)
        return layers.ReLU(dtype=precision, name=f"{name}_relu")(x)

    inputs = keras.Input(image_shape, name="images")
    x = layers.Normalization(mean=mean, variance=variance, dtype="float32",
                             name="normalize")(inputs)
    x = norm_relu(conv(x, max(width // 2, 1), "stem"), "stem")
    for block, channels in enumerate((width, 2 * width, 4 * width), start=1):
        # Pooling right after the first convolution quarters the cost of the second.
        x = conv(x, channels, f"block{block}_conv1")
        x = layers.MaxPooling2D(padding="same", dtype=precision, name=f"block{block}_pool")(x)
        x = norm_relu(x, f"block{block}_1")
        x = norm_relu(conv(x, channels, f"block{block}_conv2"), f"block{block}_2")
    x = layers.GlobalAveragePooling2D(dtype=precision, name="pool")(x)
    x = layers.Dense(FEATURE_DIM, activation="relu", dtype=precision, name=FEATURES_LAYER)(x)
    logits = layers.Dense(num_classes, dtype="float32", name=LOGITS_LAYER)(x)
    return keras.Model(inputs, logits, name="gankit_classifier")


def augment(images, seed):
    """Random horizontal flips and translations by up to 1/8 of the size (reflected at the
    border) of a batch ``(n, h, w, c)``, drawn from the stateless ``seed`` (shape ``(2,)``)."""
    import tensorflow as tf

    flip_seed, y_seed, x_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    n = tf.shape(images)[0]
    flip = tf.random.stateless_uniform([n, 1, 1, 1], flip_seed) < 0.5
    images = tf.where(flip, tf.reverse(images, axis=[2]), images)
    height, width = images.shape[1], images.shape[2]
    pad_y, pad_x = height // 8, width // 8
    if not (pad_y or pad_x):
        return images
    padded = tf.pad(images, [[0, 0], [pad_y, pad_y], [pad_x, pad_x], [0, 0]], mode="REFLECT")
    dy = tf.random.stateless_uniform([n], y_seed, 0, 2 * pad_y + 1, dtype=tf.int32)
    dx = tf.random.stateless_uniform([n], x_seed, 0, 2 * pad_x + 1, dtype=tf.int32)
    rows = dy[:, None] + tf.range(height)[None, :]
    cols = dx[:, None] + tf.range(width)[None, :]
    shifted = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(shifted, cols, axis=2, batch_dims=1)


def _batches(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int | None):
    """A ``tf.data`` pipeline over the arrays; with a seed: reshuffled and augmented each
    epoch."""
    import tensorflow as tf

    x, y = tf.constant(images), tf.constant(labels)
    order = tf.data.Dataset.range(len(images))

    def pick(index):
        return tf.gather(x, index), tf.gather(y, index)

    def pick_augmented(index, augment_seed):
        return augment(tf.gather(x, index), augment_seed), tf.gather(y, index)

    if seed is None:
        return order.batch(batch_size).map(pick).prefetch(2)
    order = order.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    return (tf.data.Dataset.zip(order.batch(batch_size), seeds)
            .map(pick_augmented, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .prefetch(2))


def _epoch_printer(epochs: int, show: Callable[[str], None]):
    import keras

    class EpochProgress(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            held = (f", holdout accuracy {logs['val_accuracy']:.4f}"
                    if "val_accuracy" in logs else "")
            show(f"epoch {epoch + 1}/{epochs}: loss {logs.get('loss', math.nan):.4f}, "
                 f"accuracy {logs.get('accuracy', math.nan):.4f}{held} "
                 f"({time.perf_counter() - self.started:.0f} s)")

    return EpochProgress()


def train_classifier(dataset: Dataset, out: str | Path,
                     config: ClassifierConfig = ClassifierConfig(), *,
                     description: dict[str, Any] | None = None,
                     show: Callable[[str], None] | None = None) -> ClassifierResult:
    """Train a classifier on ``dataset``, measure it on a held-out part, and save it.

    The model is written to ``out`` and a JSON report to :func:`report_path` only when
    training has finished (each through a temporary file renamed into place), so an
    interrupted run leaves nothing behind.

    Args:
        dataset: a dataset with labels (``class_names`` set, ``load()`` giving labels).
        out: the ``.keras`` file to write (its folder must exist).
        config: the training settings.
        description: what to record about the dataset in the report (e.g. its section).
        show: called with each progress line (default: print to stderr).

    Returns:
        The files written and the held-out accuracy, overall and per class.

    Raises:
        DatasetError: if the data is missing or has no labels, or too few images to split.
        GankitError: if the files cannot be written.
    """
    import keras

    show = show or (lambda line: print(line, file=sys.stderr, flush=True))
    started = time.perf_counter()
    out = Path(out)
    images, labels, names = load_labelled(dataset)
    train_idx, held_idx = stratified_split(labels, config.holdout, config.seed)
    train_x, train_y = images[train_idx], labels[train_idx]
    held_x, held_y = images[held_idx], labels[held_idx]
    del images
    precision = _precision(config.precision)
    show(f"training on {len(train_idx)} images of {len(names)} classes, holding out "
         f"{len(held_idx)} ({config.holdout:g} of each class); {precision.describe()}")

    keras.utils.set_random_seed(config.seed)
    statistics = dict(mean=train_x.mean(axis=(0, 1, 2), dtype=np.float64).tolist(),
                      variance=np.maximum(train_x.var(axis=(0, 1, 2), dtype=np.float64),
                                          1e-6).tolist())
    model = build_classifier(train_x.shape[1:], len(names), width=config.width,
                             precision=precision.policy, **statistics)
    _compile(model, config, steps=config.epochs * math.ceil(len(train_x) / config.batch_size))
    fit_started = time.perf_counter()
    history = model.fit(_batches(train_x, train_y, config.batch_size, config.seed),
                        validation_data=_batches(held_x, held_y, _EVAL_BATCH, None),
                        epochs=config.epochs, verbose=0, shuffle=False,
                        callbacks=[_epoch_printer(config.epochs, show)])
    fit_seconds = time.perf_counter() - fit_started

    # Saved in float32 whatever it trained in: features a metric can trust to float32
    # precision, on any machine.
    saved = build_classifier(train_x.shape[1:], len(names), width=config.width, **statistics)
    saved.set_weights(model.get_weights())
    logits = saved.predict(held_x, batch_size=_EVAL_BATCH, verbose=0)
    correct = np.argmax(logits, axis=1) == held_y
    per_class = {name: (float(correct[held_y == k].mean()) if np.any(held_y == k) else None)
                 for k, name in enumerate(names)}
    accuracy = float(correct.mean())
    seconds = time.perf_counter() - started
    report = {
        "model": out.name,
        "classes": list(names),
        "holdout_accuracy": accuracy,
        "per_class_accuracy": per_class,
        "holdout_images": int(len(held_idx)),
        "train_images": int(len(train_idx)),
        "holdout_images_per_class": {name: int(np.sum(held_y == k))
                                     for k, name in enumerate(names)},
        "input_shape": list(train_x.shape[1:]),
        "input_range": [0.0, 1.0],
        "features_layer": FEATURES_LAYER,
        "feature_dim": FEATURE_DIM,
        "logits_layer": LOGITS_LAYER,
        "dataset": description or {"type": type(dataset).__name__, **dataset.get_config()},
        "settings": {**asdict(config), "precision": precision.policy,
                     "precision_requested": config.precision,
                     "precision_reason": precision.reason},
        "epochs": config.epochs,
        "seed": config.seed,
        "seconds": round(seconds, 1),
        "training_seconds": round(fit_seconds, 1),
        "history": {key: [round(float(v), 5) for v in values]
                    for key, values in history.history.items()},
        "versions": {"keras": keras.__version__, "tensorflow": _tensorflow_version()},
    }
    _write_atomically(out, report, saved)
    return ClassifierResult(out, report_path(out), accuracy, per_class, seconds, report)


def _compile(model, config: ClassifierConfig, steps: int) -> None:
    """SGD with Nesterov momentum and decoupled weight decay (not on batch norm and biases);
    the learning rate rises linearly for the first sixth of the steps, then decays as a
    cosine to zero."""
    import keras

    warmup = max(1, steps // 6)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(1, steps - warmup), warmup_steps=warmup,
        warmup_target=config.learning_rate * config.batch_size / 256)
    optimizer = keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True,
                                     weight_decay=config.weight_decay)
    optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    # No XLA: on CPU its convolutions are slower than oneDNN's (docs/performance.md).
    model.compile(optimizer=optimizer, jit_compile=False, metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))


def _tensorflow_version() -> str:
    import tensorflow as tf

    return tf.__version__


def _write_atomically(out: Path, report: dict[str, Any], model) -> None:
    """Save the model, then its report, each atomically (:mod:`gankit.util.atomic`)."""
    try:
        atomic.save_model(model, out)
        atomic.write_text(report_path(out), json.dumps(report, indent=2) + "\n")
    except OSError as exc:
        raise GankitError(f"cannot save the classifier as {out} ({exc.strerror or exc})") \
            from None


def describe(result: ClassifierResult) -> str:
    """The result as lines for a terminal: overall and per-class held-out accuracy."""
    lines = [f"held-out accuracy {result.holdout_accuracy:.4f} on "
             f"{result.report['holdout_images']} images, in {result.seconds:.0f} s"]
    for name, value in result.per_class_accuracy.items():
        lines.append(f"  {name:<16} {'-' if value is None else f'{value:.4f}'}")
    lines += [f"model:  {result.model_file}", f"report: {result.report_file}"]
    return "\n".join(lines)

