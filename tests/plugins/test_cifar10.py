"""The CIFAR-10 dataset on a tiny archive in the original format (no network, no real data)."""

import functools
import gzip
import hashlib
import http.server
import io
import os
import pickle
import subprocess
import sys
import tarfile
import threading

import numpy as np
import pytest

import gankit
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
    images = Cifar10Dataset(path=str(cifar["folder"])).load().images
    assert images.shape == (20, 32, 32, 3) and images.dtype == np.float32
    np.testing.assert_array_equal(images, cifar["train"].astype("float32") / 255.)
    assert images.min() == 0.0 and images.max() == 1.0


def test_channel_major_rows_become_nhwc(cifar):
    images = Cifar10Dataset(path=str(cifar["folder"])).load().images
    raw = cifar["train_raw"][3]
    assert images[3, 0, 1, 0] == np.float32(raw[1]) / 255     # red, row 0, column 1
    assert images[3, 0, 0, 1] == np.float32(raw[1024]) / 255  # green, row 0, column 0
    assert images[3, 1, 0, 2] == np.float32(raw[2048 + 32]) / 255  # blue, row 1, column 0


@pytest.mark.parametrize("where", ["archive", "parent_of_folder", "parent_of_archive"])
def test_archive_and_parent_folders_give_the_same_images(cifar, where):
    path = {"archive": cifar["archive"], "parent_of_folder": cifar["folder"].parent,
            "parent_of_archive": cifar["archive"].parent}[where]
    images = Cifar10Dataset(path=str(path)).load().images
    np.testing.assert_array_equal(images, cifar["train"].astype("float32") / 255.)


@pytest.mark.parametrize("label", ["frog", 6])
def test_label_keeps_one_class_in_original_order(cifar, label):
    dataset = Cifar10Dataset(path=str(cifar["archive"]), label=label, labels=True)
    images, labels = dataset.load()
    np.testing.assert_array_equal(images, cifar["train"][[6, 16]].astype("float32") / 255.)
    # the one class kept is class 0 of its own list of names
    assert dataset.class_names == ("frog",)
    assert labels.dtype == np.int32 and labels.tolist() == [0, 0]
    unlabelled = Cifar10Dataset(path=str(cifar["archive"]), label=label)
    assert unlabelled.class_names is None and unlabelled.load().labels is None
    np.testing.assert_array_equal(unlabelled.load().images, images)


@pytest.mark.parametrize("source", ["folder", "archive"])
def test_labels_are_aligned_with_their_images(cifar, source):
    dataset = Cifar10Dataset(path=str(cifar[source]), labels=True)
    loaded = dataset.load()
    assert isinstance(loaded, gankit.Examples)
    assert loaded.labels.dtype == np.int32 and loaded.labels.shape == (20,)
    np.testing.assert_array_equal(loaded.labels, cifar["train_labels"])
    for i in (0, 6, 13, 19):  # across batches: image i is the one labelled train_labels[i]
        np.testing.assert_array_equal(loaded.images[i], cifar["train"][i] / np.float32(255))


def test_class_names_are_the_ten_in_batches_meta_order(cifar):
    meta = pickle.loads((cifar["folder"] / "batches.meta").read_bytes())
    labelled = Cifar10Dataset(labels=True)
    assert labelled.class_names == tuple(n.decode() for n in meta[b"label_names"])
    assert labelled.class_names == ("airplane", "automobile", "bird", "cat", "deer",
                                    "dog", "frog", "horse", "ship", "truck")
    assert Cifar10Dataset(label=3, labels=True).class_names == ("cat",)
    assert Cifar10Dataset().class_names is None  # no labels unless asked for


def test_labels_survive_the_trainers_check(cifar):
    from gankit.interfaces.data import as_examples

    dataset = Cifar10Dataset(path=str(cifar["folder"]), split="test", labels=True)
    examples = as_examples(dataset.load(), dataset.image_shape)
    assert examples.labels.tolist() == cifar["test_labels"].tolist()
    assert examples.labels.max() < len(dataset.class_names)


def test_test_split(cifar):
    images, labels = Cifar10Dataset(path=str(cifar["folder"]), split="test", labels=True).load()
    np.testing.assert_array_equal(images, cifar["test"].astype("float32") / 255.)
    assert labels.tolist() == [5, 6, 7, 8]
    frogs = Cifar10Dataset(path=str(cifar["folder"]), split="test", label="frog",
                           labels=True).load()
    np.testing.assert_array_equal(frogs.images, cifar["test"][[1]].astype("float32") / 255.)
    assert frogs.labels.tolist() == [0]


def test_scale_to_minus_one_one(cifar):
    dataset = Cifar10Dataset(path=str(cifar["folder"]), scale=[-1, 1])
    images = dataset.load().images
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
    test = Cifar10Dataset(path=str(cifar["folder"]), split="test").load()
    assert test.images.shape == (4, 32, 32, 3)


@pytest.mark.parametrize("content, message", [
    (b"not an archive at all", "{bad} is not a readable cifar-10-python.tar.gz archive"),
    (b"", "{bad} is not a readable cifar-10-python.tar.gz archive (empty file)"),
    ("truncated", "{bad} is corrupt or truncated (Compressed file ended before the "
                  "end-of-stream marker was reached); delete it and download "
                  "cifar-10-python.tar.gz again"),
    (b"\x1f\x8b\x08garbage", "{bad} is corrupt or truncated (gzip data: "),
])
def test_corrupt_archive(cifar, tmp_path, content, message):
    bad = tmp_path / "cifar-10-python.tar.gz"
    data = cifar["archive"].read_bytes()
    bad.write_bytes(data[: len(data) // 2] if content == "truncated" else content)
    with pytest.raises(DatasetError) as err:
        Cifar10Dataset(path=str(bad)).load()
    assert str(err.value).startswith(message.format(bad=bad)), str(err.value)


def _tar_bytes(folder):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    return bytearray(buffer.getvalue()), {m.name.rsplit("/", 1)[-1]: m for m in
                                          tarfile.open(fileobj=io.BytesIO(buffer.getvalue()))}


def test_damage_in_the_middle_is_not_reported_as_missing_batches(cifar, tmp_path):
    """A damaged header ends tarfile's list of members without an error; the batches after
    it are not "missing", the archive is broken."""
    data, members = _tar_bytes(cifar["folder"])
    header = members["data_batch_3"].offset
    data[header:header + 100] = b"\xff" * 100  # the name field: the header checksum fails
    bad = tmp_path / "cifar-10-python.tar.gz"
    bad.write_bytes(gzip.compress(bytes(data)))
    with pytest.raises(DatasetError) as err:
        Cifar10Dataset(path=str(bad)).load()
    assert str(err.value) == (f"{bad} is corrupt or truncated (its list of files breaks off "
                              "after 2 batches); delete it and download cifar-10-python.tar.gz "
                              "again")
    # batches before the damage are there, so the test split (in front of it) is no excuse
    assert "has no" not in str(err.value)


@pytest.mark.parametrize("where", ["pixels", "header", "end"])
def test_a_changed_byte_anywhere_fails_the_gzip_checksum(cifar, tmp_path, where):
    """Stored (uncompressed) deflate blocks: a changed byte decompresses without error, so only
    the gzip CRC, which is checked at the end of the stream, can catch it."""
    data, members = _tar_bytes(cifar["folder"])
    member = members["data_batch_1"]
    position = {"pixels": member.offset_data + member.size // 2,
                "header": members["data_batch_2"].offset + 3, "end": len(data) - 1}[where]
    compressed = bytearray(gzip.compress(bytes(data), compresslevel=0))
    index = compressed.find(bytes(data[position - 40:position + 1]))
    assert index > 0  # the stored block holds the bytes as they are
    compressed[index + 40] ^= 0x01
    bad = tmp_path / "cifar-10-python.tar.gz"
    bad.write_bytes(bytes(compressed))
    with pytest.raises(DatasetError) as err:
        Cifar10Dataset(path=str(bad), split="train").load()
    assert str(err.value).startswith(f"{bad} is corrupt or truncated (")
    assert str(err.value).endswith("delete it and download cifar-10-python.tar.gz again")


def test_an_intact_archive_with_a_batch_left_out_still_says_which(cifar, tmp_path):
    (cifar["folder"] / "data_batch_5").unlink()
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(cifar["folder"], arcname="cifar-10-batches-py")
    with pytest.raises(DatasetError, match="has no cifar-10-batches-py/data_batch_5; expected "
                                           "the original cifar-10-python.tar.gz"):
        Cifar10Dataset(path=str(archive)).load()


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


@pytest.mark.parametrize("batch, message", [
    ([1, 2, 3], "is not a CIFAR-10 batch: expected a pickled dict with b'data' and b'labels', "
                "got a pickled list"),
    ({b"data": np.zeros((2, 3072), np.uint8)}, "got a dict with keys [\"b'data'\"]"),
    ({b"data": [[0] * 3072] * 2, b"labels": [0, 1]}, "expected b'data' of shape (n, 3072) uint8 "
                                                      "(a numpy array), got list"),
    ({b"data": np.zeros((2, 3072), np.int64), b"labels": [0, 1]}, "got int64 (2, 3072)"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]},
     "expected b'labels' to be 2 class indices 0-9 (one per image)"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, "2 class indices 0-9"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [b"cat", b"dog"]}, "class indices"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [True, False]}, "class indices"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": {0: 1, 1: 2}}, "class indices"),
])
def test_batches_of_the_wrong_structure(cifar, batch, message):
    path = cifar["folder"] / "data_batch_2"
    path.write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(DatasetError) as err:
        Cifar10Dataset(path=str(cifar["folder"])).load()
    assert str(err.value).startswith(f"{path}") and message in str(err.value), str(err.value)


def test_a_batch_larger_than_any_real_one_is_not_read(cifar, monkeypatch, tmp_path):
    monkeypatch.setattr(cifar10, "MAX_BATCH_BYTES", 1000)
    with pytest.raises(DatasetError, match="data_batch_1 is larger than 0 MB, not a CIFAR-10 "
                                           r"batch \(about 31 MB\)"):
        Cifar10Dataset(path=str(cifar["folder"])).load()
    with pytest.raises(DatasetError, match=r"data_batch_\d is \d+ bytes, not a CIFAR-10 batch"):
        Cifar10Dataset(path=str(cifar["archive"])).load()


class _Evil:
    """Pickles as a call of ``function(*args)``."""

    def __init__(self, function, *args):
        self.reduce = (function, args)

    def __reduce__(self):
        return self.reduce


@pytest.mark.parametrize("make", [
    lambda marker: _Evil(os.system, f"touch {marker}"),
    lambda marker: _Evil(eval, f"open({str(marker)!r}, 'w')"),
    lambda marker: _Evil(subprocess.call, ["touch", str(marker)]),
    lambda marker: _Evil(np.save, str(marker), np.zeros(1)),  # an innocent-looking numpy call
])
@pytest.mark.parametrize("protocol", [2, 4])
def test_no_pickle_can_call_anything_but_the_array_rebuilders(cifar, tmp_path, make, protocol):
    marker = tmp_path / "ran"
    path = cifar["folder"] / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": make(marker), b"labels": [0]}, protocol=protocol))
    with pytest.raises(DatasetError, match="data_batch_1 is not a readable CIFAR-10 batch .*"
                                           "UnpicklingError: unexpected object"):
        Cifar10Dataset(path=str(cifar["folder"])).load()
    assert not list(tmp_path.glob("ran*"))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_as_path_is_refused(tmp_path):
    fifo = tmp_path / "cifar-10-python.tar.gz"
    os.mkfifo(fifo)
    with pytest.raises(DatasetError, match=f"dataset.path: {fifo} is not a regular file or "
                                           "folder; expected a cifar-10-python.tar.gz"):
        Cifar10Dataset(path=str(fifo)).load()


@pytest.mark.parametrize("where", ["archive", "batch"])
def test_a_file_without_read_permission_is_named(cifar, monkeypatch, where):
    path = cifar["archive"] if where == "archive" else cifar["folder"] / "data_batch_3"
    if os.geteuid() != 0:
        path.chmod(0)
    else:  # root reads anything: fail the open as the system would for a user
        real_open = os.open

        def deny(file, *args, **kwargs):
            if os.fspath(file) == str(path):
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(cifar10.os, "open", deny)
        monkeypatch.setattr(cifar10.tarfile, "open", _no_tarfile_by_name(path))
        monkeypatch.setattr(cifar10.Path, "read_bytes", _no_read_bytes(path))
    source = cifar["archive"] if where == "archive" else cifar["folder"]
    with pytest.raises(DatasetError) as err:
        Cifar10Dataset(path=str(source)).load()
    assert str(err.value) == f"cannot read {path} (Permission denied); check its permissions"


def _no_tarfile_by_name(path):
    real = tarfile.open

    def tar_open(name=None, *args, **kwargs):
        if name is not None and os.fspath(name) == str(path):
            raise PermissionError(13, "Permission denied", str(name))
        return real(name, *args, **kwargs)
    return tar_open


def _no_read_bytes(path):
    real = cifar10.Path.read_bytes

    def read_bytes(self):
        if str(self) == str(path):
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)
    return read_bytes


def test_a_folder_where_the_download_goes_is_reported_before_downloading(tmp_path):
    cache = tmp_path / "cache"
    (cache / cifar10.KERAS_ARCHIVE).mkdir(parents=True)
    with pytest.raises(DatasetError) as err:
        Cifar10Dataset(url=CLOSED_PORT_URL, cache_dir=str(cache)).load()
    assert str(err.value).startswith(f"{cache / cifar10.KERAS_ARCHIVE} is in the way of the "
                                     "CIFAR-10 download (it should be a file or not exist)")


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
    images = Cifar10Dataset(url=url, cache_dir=str(cache), label="frog").load().images
    np.testing.assert_array_equal(images, cifar["train"][[6, 16]].astype("float32") / 255.)
    assert requests == ["/cifar-10-python.tar.gz"]
    assert "Downloading CIFAR-10" in capsys.readouterr().err
    # Keras 3's own layout, so keras.datasets.cifar10.load_data() finds it too.
    assert sorted(p.name for p in cache.iterdir()) == [cifar10.KERAS_EXTRACTED,
                                                        cifar10.KERAS_ARCHIVE]
    assert (cache / cifar10.KERAS_EXTRACTED / "cifar-10-batches-py" / "test_batch").is_file()

    again = Cifar10Dataset(url=url, cache_dir=str(cache), split="test").load().images
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
    images = Cifar10Dataset(url=CLOSED_PORT_URL, split="test").load().images
    np.testing.assert_array_equal(images, cifar["test"].astype("float32") / 255.)


def test_import_does_not_load_tensorflow():
    code = ("import sys, gankit_datasets.cifar10, gankit_datasets.image_folder; "
            "assert not {'tensorflow', 'keras'} & set(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- class subsets and labels -------------------------------------------------------------------

@pytest.mark.parametrize("classes", [["dog", "airplane", "frog"], [5, 0, 6], ["dog", 0, "frog"]])
def test_a_class_subset_is_mapped_to_0_k_in_the_order_given(cifar, classes):
    dataset = Cifar10Dataset(path=str(cifar["folder"]), classes=classes, labels=True)
    assert dataset.class_names == ("dog", "airplane", "frog")
    images, labels = dataset.load()
    kept = [i for i, label in enumerate(cifar["train_labels"]) if label in (5, 0, 6)]
    np.testing.assert_array_equal(images, cifar["train"][kept] / np.float32(255))
    expected = {5: 0, 0: 1, 6: 2}
    assert labels.tolist() == [expected[cifar["train_labels"][i]] for i in kept]
    unlabelled = Cifar10Dataset(path=str(cifar["folder"]), classes=classes)
    assert unlabelled.class_names is None and unlabelled.load().labels is None
    np.testing.assert_array_equal(unlabelled.source().labels, None)


@pytest.mark.parametrize("config, path, message", [
    ({"classes": ["dgo"]}, "dataset.classes[0]", "unknown CIFAR-10 class 'dgo' (did you mean "
                                                 "'dog'?)"),
    ({"classes": ["cat", 12]}, "dataset.classes[1]", "expected a class index 0-9 or a name"),
    ({"classes": ["cat", 3]}, "dataset.classes[1]", "class 'cat' is listed twice"),
    ({"classes": []}, "dataset.classes", "expected at least one class"),
    ({"classes": ["cat"], "label": "dog"}, "dataset.label", "set either dataset.label"),
])
def test_bad_class_lists_are_one_line_recipe_errors(config, path, message):
    with pytest.raises(RecipeError) as err:
        Cifar10Dataset(**config)
    assert err.value.path == path and message in str(err.value)
    assert "\n" not in str(err.value)


def test_the_source_keeps_uint8_and_matches_load(cifar):
    from gankit.testing import check_dataset

    dataset = Cifar10Dataset(path=str(cifar["folder"]), classes=["frog", "cat"], labels=True,
                             scale=[-1, 1])
    source = dataset.source()
    assert source.images.dtype == np.uint8 and source.images.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(source.labels, dataset.load().labels)
    assert check_dataset(dataset).passed[-1] == "source"
