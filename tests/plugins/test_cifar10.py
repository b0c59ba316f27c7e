"""The CIFAR-10 dataset on a tiny archive in the original format (no network, no real data)."""

import functools
import hashlib
import http.server
import os
import pickle
import subprocess
import sys
import tarfile
import threading

import numpy as np
import pytest

from gankit.errors import DatasetError, RecipeError
from gankit_datasets import cifar10
from gankit_datasets.cifar10 import CLASS_NAMES, Cifar10Dataset

PER_BATCH = 4
CLOSED_PORT_URL = "http://127.0.0.1:9/cifar-10-python.tar.gz"


def _write_batch(path, pixels, labels):
    batch = {b"batch_label": path.name.encode(), b"labels": [int(v) for v in labels],
             b"data": pixels, b"filenames": [b"img%d.png" % i for i in range(len(labels))]}
    path.write_bytes(pickle.dumps(batch, protocol=2))


@pytest.fixture
def cifar(tmp_path):
    """A cifar-10-batches-py folder (4 images per batch), its .tar.gz, and the expected data."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train = rng.integers(0, 256, (5 * PER_BATCH, 3072), dtype=np.uint8)
    train[0, 0], train[0, 1] = 0, 255  # the extremes, for the scaling checks
    train_labels = np.arange(5 * PER_BATCH) % 10  # frogs (6) at 6 and 16: batches 2 and 5
    for i in range(5):
        part = slice(i * PER_BATCH, (i + 1) * PER_BATCH)
        _write_batch(folder / f"data_batch_{i + 1}", train[part], train_labels[part])
    test = rng.integers(0, 256, (PER_BATCH, 3072), dtype=np.uint8)
    test_labels = np.array([5, 6, 7, 8])
    _write_batch(folder / "test_batch", test, test_labels)
    (folder / "batches.meta").write_bytes(pickle.dumps(
        {b"label_names": [n.encode() for n in CLASS_NAMES], b"num_vis": 3072}, protocol=2))
    archive_dir = tmp_path / "archive"
    archive_dir.mkdir()
    archive = archive_dir / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")

    def nhwc(pixels):
        return pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)

    return dict(folder=folder, archive=archive, train=nhwc(train), train_raw=train,
                train_labels=train_labels, test=nhwc(test), test_labels=test_labels)


def test_load_from_folder_is_keras_scaling_bit_for_bit(cifar):
    images = Cifar10Dataset(path=str(cifar["folder"])).load()
    assert images.shape == (20, 32, 32, 3) and images.dtype == np.float32
    np.testing.assert_array_equal(images, cifar["train"].astype("float32") / 255.)
    assert images.min() == 0.0 and images.max() == 1.0


def test_channel_major_rows_become_nhwc(cifar):
    images = Cifar10Dataset(path=str(cifar["folder"])).load()
    raw = cifar["train_raw"][3]
    assert images[3, 0, 1, 0] == np.float32(raw[1]) / 255     # red, row 0, column 1
    assert images[3, 0, 0, 1] == np.float32(raw[1024]) / 255  # green, row 0, column 0
    assert images[3, 1, 0, 2] == np.float32(raw[2048 + 32]) / 255  # blue, row 1, column 0


@pytest.mark.parametrize("where", ["archive", "parent_of_folder", "parent_of_archive"])
def test_archive_and_parent_folders_give_the_same_images(cifar, where):
    path = {"archive": cifar["archive"], "parent_of_folder": cifar["folder"].parent,
            "parent_of_archive": cifar["archive"].parent}[where]
    images = Cifar10Dataset(path=str(path)).load()
    np.testing.assert_array_equal(images, cifar["train"].astype("float32") / 255.)


@pytest.mark.parametrize("label", ["frog", 6])
def test_label_keeps_one_class_in_original_order(cifar, label):
    images = Cifar10Dataset(path=str(cifar["archive"]), label=label).load()
    np.testing.assert_array_equal(images, cifar["train"][[6, 16]].astype("float32") / 255.)


def test_test_split(cifar):
    images = Cifar10Dataset(path=str(cifar["folder"]), split="test").load()
    np.testing.assert_array_equal(images, cifar["test"].astype("float32") / 255.)
    frogs = Cifar10Dataset(path=str(cifar["folder"]), split="test", label="frog").load()
    np.testing.assert_array_equal(frogs, cifar["test"][[1]].astype("float32") / 255.)


def test_scale_to_minus_one_one(cifar):
    dataset = Cifar10Dataset(path=str(cifar["folder"]), scale=[-1, 1])
    images = dataset.load()
    assert dataset.value_range == (-1.0, 1.0) and images.dtype == np.float32
    np.testing.assert_allclose(images, cifar["train"] / 127.5 - 1.0, atol=1e-6)
    assert images[0, 0, 0, 0] == -1.0 and images[0, 0, 1, 0] == 1.0


def test_shape_range_and_config_round_trip():
    dataset = Cifar10Dataset(label="cat")
    assert dataset.image_shape == (32, 32, 3) and dataset.value_range == (0.0, 1.0)
    rebuilt = Cifar10Dataset.from_config(dataset.get_config())
    assert rebuilt.get_config() == dataset.get_config()
    assert Cifar10Dataset.__doc__.strip().splitlines()[0]


def test_unknown_label_name_lists_classes_and_closest():
    with pytest.raises(RecipeError) as err:
        Cifar10Dataset(label="frogs")
    assert err.value.path == "dataset.label"
    assert "did you mean 'frog'?" in str(err.value)
    assert all(name in str(err.value) for name in CLASS_NAMES)


@pytest.mark.parametrize("label", [10, -1])
def test_label_index_out_of_range(label):
    with pytest.raises(RecipeError, match="0-9") as err:
        Cifar10Dataset(label=label)
    assert err.value.path == "dataset.label"


@pytest.mark.parametrize("config, message", [
    ({"split": "tset"}, "did you mean 'test'"),
    ({"scale": [1.0, -1.0]}, "low < high"),
    ({"scale": [0.0]}, "2"),
    ({"label": True}, "boolean"),
])
def test_bad_params_are_recipe_errors(config, message):
    with pytest.raises(RecipeError, match=message):
        Cifar10Dataset(**config)


def test_missing_path(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DatasetError, match="does not exist") as err:
        Cifar10Dataset(path=str(missing)).load()
    assert str(missing) in str(err.value) and "cifar-10-python.tar.gz" in str(err.value)


def test_folder_without_batches(tmp_path):
    with pytest.raises(DatasetError, match="has no CIFAR-10 batch files") as err:
        Cifar10Dataset(path=str(tmp_path)).load()
    assert str(tmp_path) in str(err.value) and "cifar-10-batches-py" in str(err.value)


def test_folder_missing_one_batch(cifar):
    (cifar["folder"] / "data_batch_3").unlink()
    with pytest.raises(DatasetError, match="has no data_batch_3"):
        Cifar10Dataset(path=str(cifar["folder"])).load()
    assert Cifar10Dataset(path=str(cifar["folder"]), split="test").load().shape == (4, 32, 32, 3)


@pytest.mark.parametrize("content", [b"not an archive at all", "truncated"])
def test_corrupt_archive(cifar, tmp_path, content):
    bad = tmp_path / "cifar-10-python.tar.gz"
    data = cifar["archive"].read_bytes()
    bad.write_bytes(data[: len(data) // 2] if content == "truncated" else content)
    with pytest.raises(DatasetError, match="not a readable cifar-10-python.tar.gz") as err:
        Cifar10Dataset(path=str(bad)).load()
    assert str(bad) in str(err.value)


def test_corrupt_pickle(cifar):
    (cifar["folder"] / "data_batch_2").write_bytes(b"\x80\x02garbage")
    with pytest.raises(DatasetError, match="data_batch_2 is not a readable CIFAR-10 batch"):
        Cifar10Dataset(path=str(cifar["folder"])).load()


def test_pickle_that_would_run_code_is_refused(cifar, tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (cifar["folder"] / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(DatasetError, match="data_batch_1 is not a readable CIFAR-10 batch"):
        Cifar10Dataset(path=str(cifar["folder"])).load()
    assert not marker.exists()


def test_malformed_batch_contents(cifar):
    _write_batch(cifar["folder"] / "data_batch_4", np.zeros((2, 100), np.uint8), [0, 1])
    with pytest.raises(DatasetError, match=r"data_batch_4: expected b'data' of shape \(n, 3072\)"):
        Cifar10Dataset(path=str(cifar["folder"])).load()


def test_offline_without_cache_says_how_to_supply_the_archive(tmp_path):
    cache = tmp_path / "cache"
    dataset = Cifar10Dataset(url=CLOSED_PORT_URL, cache_dir=str(cache))
    with pytest.raises(DatasetError) as err:
        dataset.load()
    message = str(err.value)
    assert message.startswith(f"could not download CIFAR-10 from {CLOSED_PORT_URL} (")
    assert "may be offline" in message
    assert "dataset.path=/path/to/cifar-10-python.tar.gz" in message
    assert f"or put it in {cache}" in message
    assert list(cache.iterdir()) == []  # no partial download left behind


@pytest.fixture
def server(cifar):
    """An HTTP server on 127.0.0.1 serving the fixture archive; yields (url, request paths)."""
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    handler = functools.partial(Handler, directory=str(cifar["archive"].parent))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/cifar-10-python.tar.gz", requests
    httpd.shutdown()
    httpd.server_close()


def test_download_is_verified_cached_and_reused(cifar, server, tmp_path, monkeypatch, capsys):
    url, requests = server
    monkeypatch.setattr(cifar10, "ARCHIVE_MD5",
                        hashlib.md5(cifar["archive"].read_bytes()).hexdigest())
    cache = tmp_path / "cache"
    images = Cifar10Dataset(url=url, cache_dir=str(cache), label="frog").load()
    np.testing.assert_array_equal(images, cifar["train"][[6, 16]].astype("float32") / 255.)
    assert requests == ["/cifar-10-python.tar.gz"]
    assert "Downloading CIFAR-10" in capsys.readouterr().err
    # Keras 3's own layout, so keras.datasets.cifar10.load_data() finds it too.
    assert sorted(p.name for p in cache.iterdir()) == [cifar10.KERAS_EXTRACTED,
                                                        cifar10.KERAS_ARCHIVE]
    assert (cache / cifar10.KERAS_EXTRACTED / "cifar-10-batches-py" / "test_batch").is_file()

    again = Cifar10Dataset(url=url, cache_dir=str(cache), split="test").load()
    np.testing.assert_array_equal(again, cifar["test"].astype("float32") / 255.)
    assert len(requests) == 1


def test_download_with_wrong_md5_is_deleted(cifar, server, tmp_path):
    url, _ = server
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError, match="has md5 .*expected c58f30108f718f92721af3b95e74349a"):
        Cifar10Dataset(url=url, cache_dir=str(cache)).load()
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize("layout", ["cifar-10-batches-py", "cifar-10-python.tar.gz",
                                    "cifar-10-batches-py-target/cifar-10-batches-py"])
def test_default_cache_honours_keras_home(cifar, tmp_path, monkeypatch, layout):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    cache = tmp_path / "kh" / "datasets"
    assert cifar10.keras_cache_dir() == cache
    (cache / layout).parent.mkdir(parents=True)
    source = cifar["archive"] if layout.endswith(".gz") else cifar["folder"]
    source.rename(cache / layout)
    images = Cifar10Dataset(url=CLOSED_PORT_URL, split="test").load()
    np.testing.assert_array_equal(images, cifar["test"].astype("float32") / 255.)


def test_import_does_not_load_tensorflow():
    code = ("import sys, gankit_datasets.cifar10, gankit_datasets.image_folder; "
            "assert not {'tensorflow', 'keras'} & set(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
