"""Reading the data of each step through a DataSource: streaming, labels, shuffling, resume."""

import numpy as np
import pytest
from PIL import Image

import gankit
from gankit.errors import DatasetError
from gankit.interfaces.data import ArraySource, dataset_error, dataset_source, fail_unless
from gankit.training.data import BatchReader, step_batches
from gankit_datasets.cifar10 import Cifar10Dataset
from gankit_datasets.image_folder import ImageFolderDataset
from gankit_datasets.scaling import scale_pixels

SIZE = 4


def _steps(source, start, stop, batch_size=3, batches_per_step=2, seed=7, shuffle=True):
    data = step_batches(source, batch_size=batch_size, batches_per_step=batches_per_step,
                        seed=seed, shuffle=shuffle, start=start, stop=stop)
    return [(int(step), batch.images.numpy(),
             None if batch.labels is None else batch.labels.numpy()) for step, batch in data]


@pytest.fixture(scope="module")
def class_folders(tmp_path_factory):
    """Three class folders of 4x4 PNGs (and one JPEG) whose pixels encode class and index."""
    root = tmp_path_factory.mktemp("classes")
    for label, name in enumerate(["cat", "dog", "frog"]):
        (root / name).mkdir()
        for i in range(4 + label):
            pixels = np.full((SIZE, SIZE, 3), [label * 80, i * 30, 7], np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i:02d}.png")
    Image.fromarray(np.full((SIZE, SIZE, 3), 200, np.uint8)).save(root / "dog" / "zz.jpg")
    return root


def test_uint8_pixels_are_scaled_in_the_graph_bit_for_bit(make_cifar_folder, tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (6, SIZE, SIZE, 3), dtype=np.uint8)
    pixels[0, 0, 0] = [0, 255, 128]
    for value_range in [(0.0, 1.0), (-1.0, 1.0), (-0.5, 2.0)]:
        read = ArraySource(pixels, value_range=value_range).read(np.arange(6))
        np.testing.assert_array_equal(read.numpy(), scale_pixels(pixels, value_range))
    cifar = Cifar10Dataset(path=str(make_cifar_folder(tmp_path)), scale=[-1, 1])
    source = cifar.source()
    assert source.images.dtype == np.uint8  # a quarter of float32's memory
    np.testing.assert_array_equal(source.read(np.arange(source.size)).numpy(),
                                  cifar.load().images)


def test_labels_stay_aligned_through_shuffling_and_resume(class_folders):
    dataset = ImageFolderDataset(path=str(class_folders), height=SIZE, width=SIZE, labels=True)
    source = dataset_source(dataset)
    assert dataset.class_names == ("cat", "dog", "frog") and source.size == 16
    full = _steps(source, 0, 8)
    seen = set()
    for _, images, labels in full:
        # every image carries its class in the red channel (the JPEG is a dog: 200 -> 1)
        red = np.round(images[..., 0, 0, 0] * 255)
        expected = np.where(red == 200, 1, red // 80)
        np.testing.assert_array_equal(labels, expected)
        assert labels.dtype == np.int32 and labels.shape == (2, 3)
        seen.update(map(tuple, np.round(images[..., 0, 0, :2] * 255).reshape(-1, 2).tolist()))
    assert len(seen) > 10  # shuffled across the whole folder, not a few fixed images
    resumed = _steps(source, 5, 8)
    for (step, images, labels), (again, images2, labels2) in zip(full[5:], resumed):
        assert step == again
        np.testing.assert_array_equal(images, images2)
        np.testing.assert_array_equal(labels, labels2)


@pytest.mark.parametrize("shuffle", [False, True])
def test_streaming_and_in_memory_give_identical_batches(class_folders, shuffle):
    dataset = ImageFolderDataset(path=str(class_folders), height=SIZE, width=SIZE, labels=True,
                                 scale=[-1, 1])
    loaded = dataset.load()
    streamed = _steps(dataset.source(), 0, 6, shuffle=shuffle)
    in_memory = _steps(gankit.Examples(loaded.images, loaded.labels), 0, 6, shuffle=shuffle)
    for (s1, images1, labels1), (s2, images2, labels2) in zip(streamed, in_memory):
        assert s1 == s2
        np.testing.assert_array_equal(images1, images2)
        np.testing.assert_array_equal(labels1, labels2)


def test_an_unlabelled_dataset_gives_no_labels(class_folders):
    source = dataset_source(ImageFolderDataset(path=str(class_folders / "dog"), height=SIZE,
                                               width=SIZE))
    assert source.labels is None
    assert all(labels is None for _, _, labels in _steps(source, 0, 2))


def test_a_damaged_file_found_while_training_is_one_line_naming_it(tmp_path):
    from gankit.training.loop import Trainer

    for i in range(4):
        Image.fromarray(np.full((16, 16, 3), i * 60, np.uint8)).save(tmp_path / f"{i}.png")
    bad = tmp_path / "2.png"
    data = bad.read_bytes()
    bad.write_bytes(data[:len(data) - 20])  # the header is intact: the listing accepts it
    source = ImageFolderDataset(path=str(tmp_path), height=16, width=16).source()
    with pytest.raises(Exception) as err:
        _steps(source, 0, 2, batch_size=2, batches_per_step=1, shuffle=False)
    error = Trainer.__new__(Trainer)._as_training_error(err.value)  # what the trainer raises
    assert isinstance(error, DatasetError)
    assert str(error) == (f"{bad} is not a readable PNG or JPEG image (its data is damaged or "
                          "truncated, or it changed after the folder was listed); remove or "
                          "replace it")


def test_fail_unless_carries_any_text_to_a_dataset_error():
    import tensorflow as tf

    name = "/data/é 'quoted\" [brackets]\n.png"

    @tf.function
    def check(ok):
        with tf.control_dependencies([fail_unless(ok, tf.constant(name), " is bad")]):
            return tf.constant(1)

    assert int(check(tf.constant(True))) == 1
    with pytest.raises(tf.errors.InvalidArgumentError) as err:
        check(tf.constant(False))
    assert str(dataset_error(err.value)) == name + " is bad"
    assert dataset_error(ValueError("something else")) is None


class _Floats(gankit.Dataset):
    name = "floats"
    params = {}
    image_shape = (2, 2, 1)
    value_range = (0.0, 1.0)

    def load(self):
        return np.linspace(0, 1, 20, dtype=np.float32).reshape(5, 2, 2, 1)


def test_the_default_source_holds_load_in_memory():
    source = dataset_source(_Floats())
    assert isinstance(source, ArraySource) and source.size == 5 and source.labels is None
    np.testing.assert_array_equal(BatchReader(source)(np.array([[4, 0]])).images.numpy()[0],
                                  _Floats().load()[[4, 0]])


@pytest.mark.parametrize("source, message", [
    ("not a source", "source() returned str, expected a gankit.DataSource"),
    (ArraySource(np.zeros((0, 2, 2, 1), np.float32)), "has no examples"),
    (ArraySource(np.zeros((3, 2, 2, 1), np.float32), np.array([0, 1])), "labels of shape (2,)"),
])
def test_a_malformed_source_is_a_dataset_error(source, message):
    class Broken(_Floats):
        def source(self):
            return source

    with pytest.raises(DatasetError) as err:
        dataset_source(Broken())
    assert message in str(err.value)


def test_a_source_that_differs_from_load_fails_the_conformance_check():
    from gankit.testing import ConformanceError, check_dataset

    class Shifted(_Floats):
        def source(self):
            return ArraySource(np.roll(self.load(), 1, axis=0))

    with pytest.raises(ConformanceError, match="source.*other images than load"):
        check_dataset(Shifted())
