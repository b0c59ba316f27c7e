"""Feature extractors: a saved .keras classifier, and InceptionV3's wiring and offline error
(with a tiny stand-in network: the real one takes ten seconds to build and cannot be
downloaded here)."""

import hashlib
import subprocess
import sys
import urllib.error

import numpy as np
import pytest

from gankit.errors import GankitError, RecipeError
from gankit_metrics import extractors
from gankit_metrics.extractors import WEIGHTS_FILE, InceptionV3Extractor, KerasModelExtractor

keras = pytest.importorskip("keras")


def _classifier(size=8, channels=3, classes=5, name_pool="pool"):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, channels))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name=name_pool)(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("clf") / "clf.keras"
    model = _classifier()
    model.save(path)
    return path, model


def _images(n, size, seed=0, channels=3):
    return np.random.default_rng(seed).random((n, size, size, channels), dtype=np.float32)


def test_constructing_and_registering_imports_no_tensorflow():
    code = ("import sys; from gankit.plugin.manager import default_plugins; "
            "from gankit_metrics.extractors import KerasModelExtractor; "
            "KerasModelExtractor(path='x.keras'); default_plugins(); "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_keras_model_features_are_the_layer_before_the_last_and_logits_undo_the_softmax(saved):
    path, model = saved
    extractor = KerasModelExtractor(path=str(path))
    images = _images(6, 8)
    out = extractor.extract(images)
    pool = keras.Model(model.inputs[0], model.get_layer("pool").output)
    np.testing.assert_allclose(out.features, np.asarray(pool(images)), rtol=1e-5, atol=1e-6)
    assert out.logits.shape == (6, 5)
    probs = np.exp(out.logits) / np.exp(out.logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, np.asarray(model(images)), rtol=1e-5, atol=1e-6)


def test_keras_model_resizes_bilinearly_and_maps_to_its_input_range(saved):
    import tensorflow as tf

    path, model = saved
    extractor = KerasModelExtractor(path=str(path), input_range=[0, 255], layer="probs",
                                    logits_layer=None)
    images = _images(3, 16, seed=1)
    expected = model(tf.image.resize(images, (8, 8), method="bilinear") * 255.0)
    out = extractor.extract(images)
    np.testing.assert_allclose(out.features, np.asarray(expected), rtol=1e-5, atol=1e-6)
    grey = extractor.extract(images[..., :1])  # one channel is repeated into three
    np.testing.assert_allclose(grey.features, extractor.extract(
        np.repeat(images[..., :1], 3, axis=-1)).features, rtol=1e-6)


def test_keras_model_protocol_names_the_file_digest_layer_and_size(saved):
    path, _ = saved
    protocol = KerasModelExtractor(path=str(path), input_range=[-1, 1]).protocol()
    assert protocol == {
        "type": "keras_model", "file": "clf.keras",
        "file_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "layer": "pool", "logits_layer": "probs (before its softmax)",
        "input_size": [8, 8, 3], "input_range": [-1.0, 1.0], "resize": "bilinear"}


def test_keras_model_loads_once(saved, monkeypatch):
    path, _ = saved
    calls = []
    real_load = keras.models.load_model
    monkeypatch.setattr(keras.models, "load_model",
                        lambda *a, **k: calls.append(a) or real_load(*a, **k))
    extractor = KerasModelExtractor(path=str(path))
    extractor.protocol()
    extractor.extract(_images(2, 8))
    extractor.extract(_images(3, 8))
    assert len(calls) == 1


def test_keras_model_mistakes_are_one_line(saved, tmp_path):
    path, _ = saved
    with pytest.raises(GankitError, match=r"extractor.layer: .* has no layer named 'pol' "
                                          r"\(did you mean 'pool'\?\)") as err:
        KerasModelExtractor(path=str(path), layer="pol").protocol()
    assert "\n" not in str(err.value)
    with pytest.raises(GankitError, match="extractor.path: .*missing.keras does not exist"):
        KerasModelExtractor(path=str(tmp_path / "missing.keras")).preflight()
    (tmp_path / "bad.keras").write_text("not a zip")
    with pytest.raises(GankitError, match="is not a .keras model file"):
        KerasModelExtractor(path=str(tmp_path / "bad.keras")).extract(_images(1, 8))
    with pytest.raises(RecipeError, match=r"extractor.input_range: expected \[low, high\]"):
        KerasModelExtractor(path="x.keras", input_range=[1, 0])


# --- InceptionV3 --------------------------------------------------------------------------

def _tiny_inception(include_top=True, weights=None):
    """A stand-in with the real one's interface: 299x299x3 in, avg_pool, predictions."""
    assert include_top and weights is None
    keras.utils.set_random_seed(1)
    inputs = keras.Input((299, 299, 3))
    x = keras.layers.Conv2D(6, 5, strides=8)(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="predictions")(x))


def test_inception_wiring_pool_features_logits_and_its_input_range(tmp_path, monkeypatch):
    import tensorflow as tf

    weights = tmp_path / "stand_in.weights.h5"
    _tiny_inception().save_weights(weights)
    monkeypatch.setattr(keras.applications, "InceptionV3", _tiny_inception)
    extractor = InceptionV3Extractor(weights_path=str(weights))
    images = _images(2, 32)
    out = extractor.extract(images)
    reference = _tiny_inception()
    reference.load_weights(weights)
    # keras.applications.inception_v3.preprocess_input: x / 127.5 - 1 on 0..255 pixels
    x = keras.applications.inception_v3.preprocess_input(
        tf.image.resize(images, (299, 299), method="bilinear").numpy() * 255.0)
    pool = keras.Model(reference.inputs[0], reference.get_layer("avg_pool").output)
    np.testing.assert_allclose(out.features, np.asarray(pool(x)), rtol=1e-4, atol=1e-5)
    probs = np.exp(out.logits) / np.exp(out.logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, np.asarray(reference(x)), rtol=1e-4, atol=1e-6)
    protocol = extractor.protocol()
    assert protocol["layer"] == "avg_pool" and protocol["input_size"] == [299, 299, 3]
    assert protocol["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert protocol["input_range"] == [-1.0, 1.0]


def test_inception_offline_with_nothing_cached_is_one_line_saying_how(tmp_path, monkeypatch,
                                                                      capsys):
    from keras.src.backend import config
    from keras.src.utils import file_utils

    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path / "keras_home"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(file_utils, "urlretrieve", offline)
    with pytest.raises(GankitError) as err:
        InceptionV3Extractor().protocol()
    message = str(err.value)
    assert "\n" not in message
    assert "cannot download the ImageNet weights" in message
    assert WEIGHTS_FILE in message and "extractor.weights_path=FILE" in message
    assert f"{tmp_path / 'keras_home'}/models/" in message
    assert not (tmp_path / "keras_home" / "models" / WEIGHTS_FILE).exists()
    assert capsys.readouterr() == ("", "")  # nothing but the error: Keras' chatter is held back


def test_inception_missing_weights_file_is_named(tmp_path):
    with pytest.raises(GankitError, match=f"extractor.weights_path: .*nope.h5 does not exist; "
                                          f"expected the InceptionV3 weights file {WEIGHTS_FILE}"):
        InceptionV3Extractor(weights_path=str(tmp_path / "nope.h5")).preflight()


def test_the_extractors_are_registered():
    from gankit.testing import check_plugin

    check_plugin("metrics", provides={"feature_extractor": ["inception_v3", "keras_model"],
                                      "metric": ["fid", "kid", "inception_score",
                                                 "precision_recall"]})
    assert extractors.EXTRACTORS == (InceptionV3Extractor, KerasModelExtractor)


@pytest.mark.parametrize("component", [
    InceptionV3Extractor(weights_path="/x/w.h5"),
    KerasModelExtractor(path="/x/m.keras", layer="pool", input_range=[0, 255])])
def test_extractor_configs_round_trip(component):
    from gankit.testing import check_config

    check_config(component)
