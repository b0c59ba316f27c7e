"""`gankit train-classifier`: a small classifier for offline feature metrics, on tiny data."""

import json

import numpy as np
import pytest

from gankit.cli.main import main
from gankit.errors import DatasetError, GankitError
from gankit.evaluation.classifier import (
    ClassifierConfig,
    augment,
    build_classifier,
    labelled_dataset,
    stratified_split,
)
from gankit.plugin.manager import default_plugins
from gankit.testing import write_image_folder
from gankit.training.precision import choose

CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
               "ship", "truck"]
TINY = ["--epochs", "1", "--width", "4", "--batch-size", "16"]


def run_cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _section(folder, **extra):
    keys = "".join(f", {k}: {v}" for k, v in extra.items())
    return f"{{type: cifar10, path: '{folder}'{keys}}}"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, make_cifar_folder):
    """One tiny training run on the fake CIFAR-10 folder: (out file, stdout, the folder)."""
    root = tmp_path_factory.mktemp("classifier")
    folder = make_cifar_folder(root / "data")
    out = root / "models" / "clf.keras"  # the folder does not exist yet
    code = main(["train-classifier", "--dataset", _section(folder), "--out", str(out), *TINY])
    assert code == 0
    return out, folder


def test_writes_the_model_and_its_report_and_nothing_else(trained):
    out, _ = trained
    assert sorted(p.name for p in out.parent.iterdir()) == ["clf.json", "clf.keras"]
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["classes"] == CLASS_NAMES
    # The fake folder: 25 frogs (2 held out) and 5 each of classes 1, 3, 5, 7, 9 (1 each).
    assert report["holdout_images"] == 7 and report["train_images"] == 43
    assert report["holdout_images_per_class"]["frog"] == 2
    assert report["per_class_accuracy"]["airplane"] is None  # no airplane in the fake data
    assert set(report["per_class_accuracy"]) == set(CLASS_NAMES)
    assert 0.0 <= report["holdout_accuracy"] <= 1.0
    assert report["epochs"] == 1 and report["seed"] == 0 and report["seconds"] > 0
    assert report["dataset"]["type"] == "cifar10" and report["dataset"]["label"] is None
    assert report["features_layer"] == "features" and report["input_range"] == [0.0, 1.0]
    assert report["settings"]["precision"] == choose("auto").policy  # the default
    assert report["settings"]["precision_requested"] == "auto"
    assert len(report["history"]["val_accuracy"]) == 1


def test_the_saved_model_takes_0_1_images_and_outputs_logits(trained):
    import keras

    out, _ = trained
    model = keras.models.load_model(out, compile=False)
    assert model.input_shape == (None, 32, 32, 3)
    assert [layer.name for layer in model.layers[-2:]] == ["features", "logits"]
    assert model.layers[-1].get_config()["activation"] == "linear"  # logits, no softmax
    assert model.get_layer("features").output.shape == (None, 256)
    # trained in bfloat16, saved in float32
    assert all(layer.dtype_policy.name == "float32" for layer in model.layers[1:])
    images = np.random.default_rng(0).uniform(0, 1, (5, 32, 32, 3)).astype("float32")
    logits = np.asarray(model(images, training=False))
    assert logits.shape == (5, 10) and logits.dtype == np.float32
    assert np.isfinite(logits).all()


def test_the_reported_accuracy_is_the_saved_models_on_the_held_out_images(trained):
    import keras

    from gankit_datasets.cifar10 import Cifar10Dataset

    out, folder = trained
    images, labels = Cifar10Dataset(path=str(folder), labels=True).load()
    _, held = stratified_split(labels, 0.1, seed=0)
    model = keras.models.load_model(out, compile=False)
    predicted = np.argmax(model.predict(images[held], verbose=0), axis=1)
    report = json.loads(out.with_suffix(".json").read_text())
    assert np.mean(predicted == labels[held]) == pytest.approx(report["holdout_accuracy"])
    frogs = labels[held] == 6
    assert np.mean(predicted[frogs] == 6) == pytest.approx(report["per_class_accuracy"]["frog"])


def test_prints_the_accuracy_and_the_files(capsys, cifar_folder, tmp_path):
    out = tmp_path / "c.keras"
    code, stdout, err = run_cli(capsys, "train-classifier", "--dataset", _section(cifar_folder),
                                "--out", str(out), "--precision", "float32", "--holdout", "0.2",
                                *TINY)
    assert code == 0
    assert stdout.startswith("held-out accuracy ") and f"model:  {out}" in stdout
    assert "epoch 1/1: loss " in err and "holdout accuracy" in err
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["settings"]["precision"] == "float32" and report["holdout_images"] == 10


def test_interrupted_training_leaves_nothing(capsys, cifar_folder, tmp_path, monkeypatch):
    import keras

    from gankit.evaluation import classifier

    class StopAfterOneEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    monkeypatch.setattr(classifier, "_epoch_printer", lambda *a: StopAfterOneEpoch())
    out = tmp_path / "models" / "c.keras"
    code, stdout, err = run_cli(capsys, "train-classifier", "--dataset", _section(cifar_folder),
                                "--out", str(out), *TINY[2:], "--epochs", "2")
    assert code == 130 and "interrupted" in err
    assert list(out.parent.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["--holdout", "1.5"], "--holdout: expected a fraction between 0 and 1, exclusive (e.g. "
                           "0.1), got 1.5"),
    (["--holdout", "0"], "--holdout: expected a fraction between 0 and 1"),
    (["--epochs", "0"], "--epochs: expected an integer from 1 to 10000, got 0"),
    (["--width", "-3"], "--width: expected an integer from 1 to 1024, got -3"),
    (["--out", "{tmp}/model.h5"], "--out: expected a file name ending in .keras"),
    (["--dataset", "{{type: cifar10, pth: {data}}}"],
     "--dataset: dataset.pth: unknown key (did you mean 'path'?); valid keys here: "),
    (["--dataset", "{{type: cifar100, path: {data}}}"],
     "--dataset: dataset.type: no dataset named 'cifar100' (did you mean 'cifar10'?)"),
    (["--dataset", "{{type: cifar10, label: frogs}}"],
     "--dataset: dataset.label: unknown CIFAR-10 class 'frogs' (did you mean 'frog'?)"),
    (["--dataset", "{{type: cifar10, path: {data}, label: frog}}"],
     "the dataset has only one class (frog); a classifier needs two or more"),
    (["--dataset", "{{type: cifar10, path: {tmp}/nowhere}}"],
     "dataset.path: {tmp}/nowhere does not exist"),
    (["--dataset", "{{type: cifar10, path: [}}"], "--dataset: not valid YAML"),
    (["--dataset", "{{path: {data}}}"], "--dataset: dataset.type: missing 'type'"),
])
def test_mistakes_are_one_line_and_exit_2(capsys, cifar_folder, tmp_path, args, message):
    given = {"--dataset": _section(cifar_folder), "--out": str(tmp_path / "out" / "c.keras"),
             **dict(zip(TINY[::2], TINY[1::2]))}
    for option, value in zip(args[::2], args[1::2]):
        given[option] = value.format(tmp=tmp_path, data=cifar_folder.parent)
    argv = [x for pair in given.items() for x in pair]
    code, out, err = run_cli(capsys, "train-classifier", *argv)
    assert code == 2, err
    assert err.startswith("gankit: error: ") and message.format(tmp=tmp_path) in err, err
    assert err.count("\n") == 1 and out == ""
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("extra, message", [
    # train-classifier asks a dataset with a labels parameter for labels: here, class folders
    ("", "has no class sub-folders; with dataset.labels=true put the images of each class"),
    (", labels: false", "the dataset has no labels (dataset.labels is false); a classifier "
                        "needs class labels"),
])
def test_a_dataset_without_labels_is_refused_before_training(capsys, tmp_path, extra, message):
    folder = write_image_folder(tmp_path / "images", n=4, height=32, width=32)
    out = tmp_path / "c.keras"
    code, _, err = run_cli(capsys, "train-classifier", "--out", str(out), "--dataset",
                           f"{{type: image_folder, path: '{folder}', height: 32, width: 32"
                           f"{extra}}}")
    assert code == 2
    assert err.startswith("gankit: error: ") and message in err, err
    assert err.count("\n") == 1 and not out.exists()


def test_an_image_folder_of_class_folders_is_a_labelled_dataset(tmp_path):
    for name in ("dog", "cat"):
        write_image_folder(tmp_path / "images" / name, n=2, height=8, width=8)
    _, dataset = labelled_dataset({"type": "image_folder", "path": str(tmp_path / "images"),
                                   "height": 8, "width": 8}, default_plugins().registry)
    assert dataset.class_names == ("cat", "dog")


def test_labelled_dataset_makes_paths_absolute(cifar_folder, monkeypatch):
    monkeypatch.chdir(cifar_folder.parent.parent)
    spec, dataset = labelled_dataset({"type": "cifar10", "path": "data"},
                                     default_plugins().registry)
    assert spec.config["path"] == str(cifar_folder.parent)
    assert dataset.class_names == tuple(CLASS_NAMES)


def test_stratified_split_holds_out_the_fraction_of_each_class():
    labels = np.repeat(np.arange(4), [100, 50, 10, 2])
    train, held = stratified_split(labels, 0.1, seed=3)
    assert np.bincount(labels[held]).tolist() == [10, 5, 1, 1]
    assert len(np.intersect1d(train, held)) == 0 and len(train) + len(held) == len(labels)
    assert np.array_equal(np.sort(np.concatenate([train, held])), np.arange(len(labels)))
    again, _ = stratified_split(labels, 0.1, seed=3)
    other, _ = stratified_split(labels, 0.1, seed=4)
    assert np.array_equal(train, again) and not np.array_equal(train, other)


def test_stratified_split_needs_a_class_with_two_images():
    train, held = stratified_split(np.array([0, 1, 1]), 0.5, seed=0)
    assert train.tolist() == [0, 1] or train.tolist() == [0, 2]
    with pytest.raises(DatasetError, match="cannot hold out any of the 2 images"):
        stratified_split(np.array([0, 1]), 0.5, seed=0)


def test_augment_flips_and_shifts_each_image_by_at_most_an_eighth():
    import tensorflow as tf

    images = np.random.default_rng(0).uniform(0, 1, (6, 16, 16, 1)).astype("float32")
    out = augment(tf.constant(images), tf.constant([1, 2], tf.int64)).numpy()
    assert out.shape == images.shape
    padded = np.pad(images, [(0, 0), (2, 2), (2, 2), (0, 0)], mode="reflect")
    for image, result in zip(padded, out):
        candidates = [view[dy:dy + 16, dx:dx + 16] for view in (image, image[:, ::-1])
                      for dy in range(5) for dx in range(5)]
        assert any(np.array_equal(result, c) for c in candidates)
    assert not np.array_equal(out, images)  # something moved
    again = augment(tf.constant(images), tf.constant([1, 2], tf.int64)).numpy()
    np.testing.assert_array_equal(out, again)  # the same seed, the same augmentation


@pytest.mark.parametrize("shape", [(32, 32, 3), (8, 8, 1)])
def test_build_classifier_names_its_last_layers(shape):
    model = build_classifier(shape, 3, width=2, precision="mixed_bfloat16")
    assert [layer.name for layer in model.layers[-2:]] == ["features", "logits"]
    assert model.get_layer("logits").dtype_policy.name == "float32"
    assert model.get_layer("block1_conv1").dtype_policy.name == "mixed_bfloat16"
    assert model.output_shape == (None, 3)


def test_config_defaults_and_checks():
    assert ClassifierConfig().precision == "auto"
    with pytest.raises(GankitError,
                       match="--precision: expected auto or mixed_bfloat16 or float32"):
        ClassifierConfig(precision="float16")
    with pytest.raises(GankitError, match="--seed"):
        ClassifierConfig(seed=-1)
