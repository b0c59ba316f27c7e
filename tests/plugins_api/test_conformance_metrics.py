"""The conformance kit for metrics and feature extractors: every built-in passes, the docs'
examples pass, and each deliberately broken one fails the check that covers its defect
(issue 21, item 7). No TensorFlow at the top: the `preflight` check imports this module in
a new process."""

import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

import gankit
from gankit import FeatureExtractor, Features, GankitError, Metric, Param
from gankit.testing import (
    FEATURE_EXTRACTOR_CHECKS,
    METRIC_CHECKS,
    ConformanceError,
    check_component,
    check_feature_extractor,
    check_metric,
)
from gankit_metrics.extractors import InceptionV3Extractor, KerasModelExtractor
from gankit_metrics.metrics import (
    ClassAccuracyMetric,
    FIDMetric,
    InceptionScoreMetric,
    IntraFIDMetric,
    KIDMetric,
    PrecisionRecallMetric,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "examples" / "gankit-example"


def _example(module: str):
    """A module of the example plugin, loaded from its file: putting the example's folder on
    sys.path would also show an egg-info an editable install left there (and with it the
    plugin's entry point) to every later test of this process."""
    import importlib.util

    name = f"metrics_test_example_{module}"
    spec = importlib.util.spec_from_file_location(name, EXAMPLE / "gankit_example" /
                                                  f"{module}.py")
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[name] = loaded
    spec.loader.exec_module(loaded)
    return loaded


ThumbnailExtractor = _example("extractors").ThumbnailExtractor
DensityCoverage = _example("metrics").DensityCoverage

WITH_REAL = ("interface", "config", "values", "determinism", "identical", "shifted", "scaled")


def _fails(check, match, call, *args, **kwargs):
    with pytest.raises(ConformanceError) as caught:
        call(*args, **kwargs)
    assert caught.value.check == check, str(caught.value)
    assert match in str(caught.value), str(caught.value)
    return str(caught.value)


def test_metric_and_feature_extractor_are_importable_from_gankit():
    code = ("import sys, gankit; from gankit import Metric, FeatureExtractor, Features; "
            "assert {'Metric', 'FeatureExtractor', 'Features'} <= set(gankit.__all__); "
            "assert Metric.kind == 'metric' and FeatureExtractor.kind == 'feature_extractor'; "
            "print([m for m in ('tensorflow', 'keras') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    assert gankit.Metric is Metric and gankit.FeatureExtractor is FeatureExtractor


# --- every built-in passes ---------------------------------------------------------------

@pytest.mark.parametrize("metric", [FIDMetric(), KIDMetric(subsets=10), KIDMetric(),
                                    PrecisionRecallMetric(),
                                    PrecisionRecallMetric(rank_by="recall", k=5)], ids=repr)
def test_builtin_metrics_with_a_reference_pass(metric):
    assert check_metric(metric).passed == WITH_REAL


def test_builtin_metrics_of_the_generated_images_alone_and_per_class_pass():
    assert check_metric(InceptionScoreMetric()).passed == (
        "interface", "config", "values", "determinism", "collapsed")
    for per_class in (True, False):
        assert check_metric(IntraFIDMetric(per_class=per_class)).passed == WITH_REAL + ("labels",)
        assert check_metric(ClassAccuracyMetric(per_class=per_class)).passed == (
            "interface", "config", "values", "determinism", "labels", "collapsed")


def test_a_higher_is_better_metric_without_a_declared_best_gets_a_note():
    report = check_metric(PrecisionRecallMetric())
    assert report.notes == ("identical: two identical sets give 1, not compared with a best "
                            "value (declare best_value to have it checked)",)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(5, activation="softmax", name="probs")(x)
    path = tmp_path_factory.mktemp("clf") / "clf.keras"
    keras.Model(inputs, outputs).save(path)
    return path


def test_the_keras_model_extractor_passes(classifier):
    extractor = KerasModelExtractor(path=str(classifier), class_names=list("abcde"))
    assert check_feature_extractor(extractor).passed == FEATURE_EXTRACTOR_CHECKS
    grey = KerasModelExtractor(path=str(classifier), layer="probs", logits_layer=None)
    assert check_feature_extractor(grey, image_shape=(6, 10, 1), batch_size=3).passed == \
        FEATURE_EXTRACTOR_CHECKS


def test_the_inception_extractor_passes_with_a_tiny_stand_in(tmp_path, monkeypatch):
    """The real network needs weights that cannot be downloaded here (as in
    tests/plugins/test_extractors.py)."""
    import keras

    def tiny_inception(include_top=True, weights=None):
        keras.utils.set_random_seed(1)
        inputs = keras.Input((299, 299, 3))
        x = keras.layers.Conv2D(6, 5, strides=8)(inputs)
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        return keras.Model(inputs, keras.layers.Dense(10, activation="softmax",
                                                      name="predictions")(x))

    weights = tmp_path / "stand_in.weights.h5"
    tiny_inception().save_weights(weights)
    monkeypatch.setattr(keras.applications, "InceptionV3", tiny_inception)
    extractor = InceptionV3Extractor(weights_path=str(weights))
    assert check_feature_extractor(extractor).passed == FEATURE_EXTRACTOR_CHECKS


def test_the_docs_examples_pass_quickly():
    started = time.perf_counter()
    assert check_metric(DensityCoverage()).passed == WITH_REAL
    assert check_metric(DensityCoverage(k=2), n=32, dim=4).passed == WITH_REAL
    assert check_feature_extractor(ThumbnailExtractor()).passed == FEATURE_EXTRACTOR_CHECKS
    assert check_feature_extractor(ThumbnailExtractor(grid=2), image_shape=(5, 7, 1)).passed \
        == FEATURE_EXTRACTOR_CHECKS
    assert time.perf_counter() - started < 20


def test_the_docs_examples_compute_what_they_say():
    rng = np.random.default_rng(0)
    real = Features(rng.standard_normal((40, 3)))
    same = DensityCoverage(k=3).compute(real, real, rng)
    assert same["coverage"] == 1.0 and same["density"] >= 1.0
    half = Features(real.features[:20])  # covers its own half of the real balls, at least
    assert 0.5 <= DensityCoverage(k=3).compute(half, real, rng)["coverage"] < 1.0
    images = np.zeros((1, 4, 4, 3), np.float32)
    images[:, :2, :, 0] = 1.0  # the top half red
    out = ThumbnailExtractor(grid=2).extract(images).features[0]
    np.testing.assert_allclose(out[:4], [1 / 3, 1 / 3, 0.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(out[4:], [0.5, 0.0, 0.0, 0.5, 0.0, 0.0], rtol=1e-6)
    with pytest.raises(GankitError, match="smaller than its grid of 8"):
        ThumbnailExtractor(grid=8).extract(images)


@pytest.mark.parametrize("name, cls", [("metrics.py", DensityCoverage),
                                       ("extractors.py", ThumbnailExtractor)])
def test_writing_plugins_shows_the_examples_very_code(name, cls):
    code = (EXAMPLE / "gankit_example" / name).read_text()
    guide = (REPO / "docs" / "writing-plugins.md").read_text()
    assert code in guide, f"docs/writing-plugins.md no longer shows gankit_example/{name} as is"
    heading = {"metrics.py": "### Metric\n", "extractors.py": "### Feature extractor\n"}[name]
    section = guide[guide.index(heading):]
    assert section.index(code) < section.index("\n## "), "the code is not in its section"


def test_check_component_picks_the_metric_and_extractor_checks():
    assert check_component(FIDMetric()).passed == WITH_REAL
    assert check_component(ThumbnailExtractor()).kind == "feature_extractor"
    assert check_component(DensityCoverage(), n=32).passed == WITH_REAL
    assert check_component(ThumbnailExtractor(), skip=["sensitivity"]).skipped == (
        "sensitivity",)


def test_misuse_of_the_kit_is_a_type_or_value_error():
    with pytest.raises(TypeError, match=r"check_metric\(\) takes a gankit.Metric, got "
                                        "ThumbnailExtractor"):
        check_metric(ThumbnailExtractor())
    with pytest.raises(TypeError, match="not the class"):
        check_feature_extractor(ThumbnailExtractor)
    with pytest.raises(ValueError, match="unknown check 'colapsed'"):
        check_metric(InceptionScoreMetric(), skip=["colapsed"])
    with pytest.raises(ValueError, match="unknown check 'collapsed'.*identical"):
        check_metric(FIDMetric(), skip=["collapsed"])  # only for metrics without a reference
    with pytest.raises(ValueError, match="batch_size must be at least 3"):
        check_feature_extractor(ThumbnailExtractor(), batch_size=2)
    assert set(METRIC_CHECKS) >= set(WITH_REAL) | {"labels", "collapsed"}
    # before issue 21 a metric got this: "takes a gankit component instance, got FIDMetric"
    # every kind now has a check of its own: an optimizer gets check_optimizer
    assert check_component(gankit.create("optimizer", "Adam")).kind == "optimizer"
    with pytest.raises(TypeError, match="takes a gankit component instance, got str"):
        check_component("fid")


# --- planted bugs: metrics ---------------------------------------------------------------

def _fid(fake, real):
    return FIDMetric().compute(fake, real, np.random.default_rng(0))["fid"]


class OffsetFID(Metric):
    """FID plus 1: not 0 on identical sets."""

    name = "offset_fid"

    def compute(self, fake, real, rng):
        return {"fid": _fid(fake, real) + 1.0}


class SimilarityDeclaredLower(Metric):
    """exp(-FID): highest on identical sets, with the direction left at lower is better."""

    name = "similarity"
    best_value = 1.0

    def compute(self, fake, real, rng):
        return {"similarity": float(np.exp(-_fid(fake, real)))}


class CovarianceOnly(Metric):
    """Compares the spreads only: blind to generated images that are all off."""

    name = "covariance_only"

    def compute(self, fake, real, rng):
        a, b = np.cov(fake.features.T), np.cov(real.features.T)
        return {"cov": float(np.sum((a - b) ** 2))}


class MeansOnly(Metric):
    """Compares the means only: blind to too little variety."""

    name = "means_only"

    def compute(self, fake, real, rng):
        diff = fake.features.mean(axis=0) - real.features.mean(axis=0)
        return {"means": float(diff @ diff)}


class Nondeterministic(Metric):
    """Subsamples with NumPy's global generator instead of rng."""

    name = "nondeterministic"

    def compute(self, fake, real, rng):
        pick = np.random.choice(len(fake.features), len(fake.features) // 2, replace=False)
        return {"fid": _fid(Features(fake.features[pick]), real)}


class NamesByCount(Metric):
    """Adds a value only for larger sets: its names depend on the features."""

    name = "names_by_count"

    def compute(self, fake, real, rng):
        values = {"fid": _fid(fake, real)}
        if len(fake.features) > 20:
            values["fid_large"] = values["fid"]
        return values


class NotFinite(Metric):
    name = "not_finite"

    def compute(self, fake, real, rng):
        return {"fid": _fid(fake, real), "log_zero": float(np.log(np.float64(0.0)))}


class CentresInPlace(Metric):
    """Centres the features it was given: the next metric sees other features."""

    name = "centres_in_place"

    def compute(self, fake, real, rng):
        features = fake.features
        features -= features.mean(axis=0)
        return {"fid": _fid(fake, real)}


class UndeclaredLogits(Metric):
    """Reads the logits without needs_logits: they are None then."""

    name = "undeclared_logits"

    def compute(self, fake, real, rng):
        return {"entropy": float(-np.mean(fake.logits))}


class ClassBlind(Metric):
    """Declares needs_labels and ignores the classes."""

    name = "class_blind"
    needs_labels = True

    def compute(self, fake, real, rng):
        return {"class_blind": _fid(fake, real)}


class ConstantScore(Metric):
    """A metric of the generated images alone that says the same whatever they are."""

    name = "constant_score"
    needs_real = False
    lower_is_better = False

    def compute(self, fake, real, rng):
        return {"score": 3.0}


class StringDirection(Metric):
    name = "string_direction"
    lower_is_better = "yes"

    def compute(self, fake, real, rng):
        return {"fid": _fid(fake, real)}


@pytest.mark.parametrize("metric, check, match", [
    (OffsetFID(), "identical", "two identical sets of features give 1, expected 0 (a "
                               "distance's best: lower_is_better is True and no best_value"),
    (SimilarityDeclaredLower(), "shifted", "it falls as the sets move apart, so set "
                                           "lower_is_better = False"),
    (CovarianceOnly(), "shifted", "moved by 1 standard deviation in every dimension give"),
    (MeansOnly(), "scaled", "neither is worse (lower is better)"),
    (Nondeterministic(), "determinism", "draw randomness only from rng"),
    (NamesByCount(), "values", "compute() names its values ['fid', 'fid_large'] here but "
                               "['fid'] on gankit's made-up features"),
    (NotFinite(), "values", "compute()['log_zero'] is -inf"),
    (CentresInPlace(), "values", "compute() changed the generated Features.features"),
    (UndeclaredLogits(), "values", "raised TypeError"),
    (ClassBlind(), "labels", "a per-class metric must compare each class's images with that "
                             "class's"),
    (ConstantScore(), "collapsed", "a collapsed generator's (one image's features and logits "
                                   "for all) 3"),
    (StringDirection(), "interface", "lower_is_better must be a bool, got 'yes'"),
], ids=lambda x: type(x).__name__ if isinstance(x, Metric) else "")
def test_a_broken_metric_fails_the_check_that_covers_it(metric, check, match):
    with np.errstate(divide="ignore"):
        _fails(check, match, check_metric, metric)


def test_a_reversed_higher_is_better_metric_is_told_its_direction():
    class DistanceDeclaredHigher(OffsetFID):
        lower_is_better = False
        best_value = 1.0

    _fails("shifted", "it rises as the sets move apart, so set lower_is_better = True",
           check_metric, DistanceDeclaredHigher())


# --- planted bugs: feature extractors ----------------------------------------------------

class _Pixels(FeatureExtractor):
    """The mean of each 2x2 grey cell of a 4x4 grid: a correct base for the broken ones."""

    name = "pixels"

    def protocol(self):
        return {"type": self.name}

    def extract(self, images):
        return Features(ThumbnailExtractor(grid=2).extract(images).features)


class ConstantFeatures(_Pixels):
    """Ignores the images."""

    def extract(self, images):
        return Features(np.ones((len(images), 4), np.float32))


class FlatFeatures(_Pixels):
    """Returns one row for the whole batch."""

    def extract(self, images):
        return Features(super().extract(images).features.ravel())


class NoResize(_Pixels):
    """Flattens the pixels as they come: the width follows the image size."""

    def extract(self, images):
        return Features(np.asarray(images, np.float32).reshape(len(images), -1))


class RGBOnly(_Pixels):
    """Keeps the channels as they come: a greyscale batch gives fewer numbers."""

    def extract(self, images):
        images = np.asarray(images, np.float32)
        return Features(images.mean(axis=(1, 2)))


class BatchStatistics(_Pixels):
    """Normalises over the batch, as a BatchNormalization layer in training mode does."""

    def extract(self, images):
        features = super().extract(images).features
        return Features(features - features.mean(axis=0))


class RandomWeights(_Pixels):
    """Draws a random projection per instance instead of loading weights."""

    def __init__(self, **config):
        super().__init__(**config)
        self.weights = np.random.default_rng().standard_normal((10, 4))

    def extract(self, images):
        return Features(super().extract(images).features @ self.weights)


class TimedProtocol(_Pixels):
    def protocol(self):
        return {"type": self.name, "made": time.time()}


class NumpyProtocol(_Pixels):
    def protocol(self):
        return {"type": self.name, "scale": np.float32(0.5)}


class MislabelledLogits(_Pixels):
    """Names three classes and gives two logits."""

    def class_names(self):
        return ("cat", "dog", "frog")

    def extract(self, images):
        features = super().extract(images).features
        return Features(features, features[:, :2])


class DuplicateClassNames(_Pixels):
    def class_names(self):
        return ("cat", "cat")


class PreflightLoadsTensorFlow(_Pixels):
    """Checks its weights by loading TensorFlow: slow at the start of every run."""

    def preflight(self):
        # What `import tensorflow` leaves in sys.modules, without its seconds in the new
        # process (where the check runs it; here TensorFlow is loaded and stays as it is).
        sys.modules.setdefault("tensorflow", types.ModuleType("tensorflow"))


class PreflightFails(_Pixels):
    def preflight(self):
        raise GankitError("extractor.path: /nowhere.keras does not exist")


@pytest.mark.parametrize("extractor, check, match", [
    (ConstantFeatures(), "sensitivity", "images 0 and 1 (different seeded noise) give the same "
                                        "features"),
    (FlatFeatures(), "features", "extract() gave features of shape (40,) for 4 images"),
    (NoResize(), "inputs", "images of shape (16, 16, 3) give features and logits of widths "
                           "(768, None), images of shape (8, 8, 3) (192, None)"),
    (RGBOnly(), "inputs", "images of shape (8, 8, 1) give features and logits of widths (1, "
                          "None)"),
    (BatchStatistics(), "batching", "the features of image 0 computed alone differ from those "
                                    "computed in a batch of 4"),
    (RandomWeights(), "determinism", "a new instance built from the same config gives other "
                                     "features"),
    (TimedProtocol(), "protocol", "a second call gives another protocol ('made'"),
    (NumpyProtocol(), "protocol", "protocol() must be plain JSON data"),
    (MislabelledLogits(), "features", "class_names() names 3 classes and the logits have 2 "
                                      "columns"),
    (DuplicateClassNames(), "interface", "class_names() must be None or a tuple of distinct"),
    (PreflightFails(), "preflight", "raised GankitError: extractor.path: /nowhere.keras"),
], ids=lambda x: type(x).__name__ if isinstance(x, FeatureExtractor) else "")
def test_a_broken_extractor_fails_the_check_that_covers_it(extractor, check, match):
    _fails(check, match, check_feature_extractor, extractor)


def test_a_preflight_that_imports_tensorflow_fails_also_when_it_is_loaded_already():
    import tensorflow  # noqa: F401 - the usual case in a test session: checked in a new process

    _fails("preflight", "preflight() or class_names() imported tensorflow",
           check_feature_extractor, PreflightLoadsTensorFlow())


def test_a_class_a_new_process_cannot_import_is_noted_not_failed():
    import tensorflow  # noqa: F401

    class Local(_Pixels):
        pass

    report = check_feature_extractor(Local())
    assert report.passed == FEATURE_EXTRACTOR_CHECKS
    assert report.notes[0].startswith("preflight: test_a_class_a_new_process_cannot_import_is"
                                      "_noted_not_failed.<locals>.Local cannot be imported")


class _WithParam(_Pixels):
    params = {"grid": Param(int, 2, min=1)}

    def get_config(self):
        return {}


def test_the_config_check_runs_for_both_kinds():
    _fails("config", "get_config() lacks declared parameter(s) 'grid'",
           check_feature_extractor, _WithParam())

    class BadConfigMetric(OffsetFID):
        params = {"k": Param(int, 2)}

        def get_config(self):
            return {"k": 2, "extra": 1}

    _fails("config", "get_config() has key(s) 'extra' not declared", check_metric,
           BadConfigMetric())
