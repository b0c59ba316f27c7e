"""The tfds dataset: a tiny TFDS dataset prepared by the test in a local data_dir (no network).

The tests that read data need the optional tensorflow-datasets package and are skipped
without it; what happens without the package is tested either way."""

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from gankit.errors import DatasetError, RecipeError
from gankit_datasets import tfds_dataset
from gankit_datasets.tfds_dataset import TfdsDataset

HAS_TFDS = importlib.util.find_spec("tensorflow_datasets") is not None
needs_tfds = pytest.mark.skipif(not HAS_TFDS, reason="needs tensorflow-datasets (gankit[tfds])")
NAMES = ["circle", "square", "star"]


def _pixels(i):
    return np.full((8, 8, 3), [i * 20, 255 - i, 9], np.uint8)  # example i, recognisable


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory):
    """The same 10 examples prepared as array_record and as tfrecord (in a subprocess, so the
    builder class is not registered in the tests' process: gankit finds the data by name)."""
    root = tmp_path_factory.mktemp("tfds")
    script = f'''
import numpy as np, tensorflow_datasets as tfds
class TinyShapes(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("1.0.0")
    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({{
            "picture": tfds.features.Image(shape=(8, 8, 3)),
            "kind": tfds.features.ClassLabel(names={NAMES!r})}}))
    def _split_generators(self, dl_manager):
        return {{"train": self._generate_examples(10), "test": self._generate_examples(3)}}
    def _generate_examples(self, n):
        for i in range(n):
            yield i, {{"picture": np.full((8, 8, 3), [i * 20, 255 - i, 9], np.uint8),
                      "kind": i % 3}}
for fmt in ("array_record", "tfrecord"):
    TinyShapes(data_dir=r"{root}/" + fmt, file_format=fmt).download_and_prepare()
'''
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    return root


def _dataset(data_dirs, fmt="array_record", **config):
    config = {"name": "tiny_shapes", "data_dir": str(data_dirs / fmt), "height": 8, "width": 8,
              "image_key": "picture", "label_key": "kind", **config}
    return TfdsDataset(**config)


@needs_tfds
def test_images_and_labels_are_read_by_index_and_aligned(data_dirs):
    dataset = _dataset(data_dirs, labels=True, scale=[-1, 1])
    assert dataset.class_names == tuple(NAMES)
    images, labels = dataset.load()
    assert images.shape == (10, 8, 8, 3) and images.dtype == np.float32
    # each image says which example it is; its label must be that example's
    example = np.round((images[:, 0, 0, 0] + 1) * 127.5 / 20).astype(int)
    assert sorted(example.tolist()) == list(range(10))
    np.testing.assert_array_equal(labels, example % 3)
    np.testing.assert_array_equal(images[0], _pixels(example[0]) / np.float32(127.5) - 1)
    source = dataset.source()
    np.testing.assert_array_equal(source.read(np.array([3, 3, 0])).numpy(), images[[3, 3, 0]])


@needs_tfds
def test_a_tfds_dataset_passes_the_conformance_check(data_dirs):
    from gankit.testing import check_dataset

    assert check_dataset(_dataset(data_dirs, labels=True, split="test")).passed[-1] == "source"
    assert _dataset(data_dirs, split="train[:30%]").source().size == 3


@needs_tfds
@pytest.mark.parametrize("config, message", [
    ({"fmt": "tfrecord"}, "is prepared in a format without random access (e.g. tfrecord); "
                          "prepare it again as array_record: tfds build tiny_shapes"),
    ({"split": "valid"}, "dataset.split: Unknown split 'valid'"),
])
def test_unreadable_preparations_are_one_line(data_dirs, config, message):
    with pytest.raises(DatasetError) as err:
        _dataset(data_dirs, **config).source()
    assert message in str(err.value) and "\n" not in str(err.value)


@needs_tfds  # preflight checks the package first; the fixture needs it too
@pytest.mark.parametrize("config, message", [
    ({"name": "nope"}, "no prepared TFDS dataset nope in {dir}; prepare it on a machine with "
                       "internet access with: tfds build nope --data_dir {dir} --file_format "
                       "array_record"),
    ({"name": "tiny_shapes:2.0.0"}, "no prepared TFDS dataset tiny_shapes:2.0.0 in {dir}"),
    ({"image_key": "image"}, "dataset.image_key: tiny_shapes has no Image feature 'image' (its "
                             "features: kind, picture)"),
    ({"height": 32}, "tiny_shapes's 'picture' images are 8x8x3 (height x width x channels), "
                     "expected 32x8x3"),
    ({"labels": True, "label_key": "picture"}, "dataset.label_key: tiny_shapes has no "
                                               "ClassLabel feature 'picture'"),
])
def test_missing_data_and_wrong_features_are_found_without_tensorflow(data_dirs, monkeypatch,
                                                                      config, message):
    directory = data_dirs / "array_record"
    with pytest.raises(DatasetError) as err:
        _dataset(data_dirs, **config).preflight()
    assert str(err.value).startswith(message.format(dir=directory)), str(err.value)


def test_without_the_package_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import fails
    monkeypatch.setattr(tfds_dataset.importlib.util, "find_spec", lambda name: None)
    dataset = TfdsDataset(name="mnist", data_dir=str(tmp_path))
    for step in (dataset.preflight, dataset.source, dataset.load):
        with pytest.raises(DatasetError) as err:
            step()
        assert str(err.value) == ("the tfds dataset needs the tensorflow-datasets package: "
                                  'pip install "gankit[tfds]" (or pip install tensorflow-datasets)')
    with pytest.raises(DatasetError, match="tensorflow-datasets"):
        tfds_dataset._import_tfds()


def test_recipe_checks_and_class_names_need_no_tensorflow(tmp_path):
    folder = tmp_path / "mine" / "1.2.0"
    folder.mkdir(parents=True)
    (folder / "dataset_info.json").write_text("{}")
    (folder / "features.json").write_text(
        '{"featuresDict": {"features": {"label": {"pythonClassName": '
        '"tensorflow_datasets.core.features.class_label_feature.ClassLabel"}}}}')
    (folder / "label.labels.txt").write_text("ant\nbee\n")
    code = ("import sys; from gankit_datasets.tfds_dataset import TfdsDataset as T; "
            f"assert T(name='mine', data_dir={str(tmp_path)!r}, labels=True).class_names == "
            "('ant', 'bee'); assert not {'tensorflow', 'keras', 'tensorflow_datasets'} & "
            "set(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
    with pytest.raises(RecipeError, match="expected a TFDS name like mnist"):
        TfdsDataset(name="../etc")


def test_without_the_package_and_the_data_it_says_to_install_the_package_first(tmp_path,
                                                                              monkeypatch):
    """Hardening round three: 0.4 told a user without tensorflow-datasets to `tfds build`."""
    monkeypatch.setattr(tfds_dataset.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DatasetError, match="needs the tensorflow-datasets package: pip install"):
        TfdsDataset(name="cifar10", data_dir=str(tmp_path), labels=True).class_names
