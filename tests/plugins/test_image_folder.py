"""The image-folder dataset on small PNG and JPEG files written by the tests."""

import os
import struct
import threading
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gankit.errors import DatasetError, RecipeError
from gankit_datasets import image_folder
from gankit_datasets.image_folder import DatasetWarning, ImageFolderDataset

SIZE = 8


def _save(path, pixels, **kwargs):
    Image.fromarray(pixels).save(path, **kwargs)
    return pixels


def _random(seed, height=SIZE, width=SIZE, channels=3):
    shape = (height, width, channels) if channels == 3 else (height, width)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _dataset(folder, **config):
    return ImageFolderDataset(path=str(folder), height=SIZE, width=SIZE, **config)


def test_files_are_read_in_sorted_name_order_ignoring_hidden_and_subfolders(tmp_path):
    for value, name in enumerate(["b.png", "a.png", "10.png", "2.png"]):
        _save(tmp_path / name, np.full((SIZE, SIZE, 3), value * 10, np.uint8))
    (tmp_path / ".hidden.png").write_bytes(b"not even an image")
    (tmp_path / "sub").mkdir()
    _save(tmp_path / "sub" / "0.png", np.zeros((SIZE, SIZE, 3), np.uint8))
    images = _dataset(tmp_path).load()
    # sorted by name: 10.png, 2.png, a.png, b.png
    np.testing.assert_array_equal(images[:, 0, 0, 0] * 255, [20, 30, 10, 0])


def test_png_scaling_is_exact(tmp_path):
    pixels = _random(0)
    pixels[0, 0, 0], pixels[0, 1, 0] = 0, 255
    _save(tmp_path / "x.png", pixels)
    images = _dataset(tmp_path).load()
    assert images.shape == (1, SIZE, SIZE, 3) and images.dtype == np.float32
    np.testing.assert_array_equal(images[0], pixels.astype("float32") / 255.)

    dataset = _dataset(tmp_path, scale=[-1, 1])
    scaled = dataset.load()
    assert dataset.value_range == (-1.0, 1.0) and scaled.dtype == np.float32
    np.testing.assert_allclose(scaled[0], pixels / 127.5 - 1.0, atol=1e-6)
    assert scaled[0, 0, 0, 0] == -1.0 and scaled[0, 0, 1, 0] == 1.0


def test_jpeg_with_any_extension_case(tmp_path):
    for i, name in enumerate(["a.jpg", "b.JPEG", "c.Png"]):
        _save(tmp_path / name, _random(i), format="JPEG" if i < 2 else "PNG")
    images = _dataset(tmp_path).load()
    assert images.shape == (3, SIZE, SIZE, 3)
    decoded = np.asarray(Image.open(tmp_path / "b.JPEG").convert("RGB"))
    np.testing.assert_array_equal(images[1], decoded.astype("float32") / 255.)


def test_grayscale_and_colour_conversions(tmp_path):
    colour = _save(tmp_path / "a.png", _random(0))
    gray = _save(tmp_path / "b.png", _random(1, channels=1))
    rgba = np.dstack([_random(2), np.zeros((SIZE, SIZE), np.uint8)])
    _save(tmp_path / "c.png", rgba)

    ones = _dataset(tmp_path, channels=1)
    with pytest.warns(DatasetWarning, match="dropped the transparency .* of 1 of 3 images"):
        images = ones.load()
    assert ones.image_shape == (SIZE, SIZE, 1) and images.shape == (3, SIZE, SIZE, 1)
    expected = np.asarray(Image.fromarray(colour).convert("L"))
    np.testing.assert_array_equal(images[0, ..., 0], expected.astype("float32") / 255.)
    np.testing.assert_array_equal(images[1, ..., 0], gray.astype("float32") / 255.)

    with pytest.warns(DatasetWarning):
        rgb = _dataset(tmp_path).load()
    np.testing.assert_array_equal(rgb[1], np.repeat(gray[..., None], 3, axis=2) / np.float32(255))
    np.testing.assert_array_equal(rgb[2], rgba[..., :3] / np.float32(255))  # alpha dropped


def test_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="does not exist") as err:
        _dataset(tmp_path / "nope").load()
    assert str(tmp_path / "nope") in str(err.value)


def test_path_is_a_file(tmp_path):
    _save(tmp_path / "x.png", _random(0))
    with pytest.raises(DatasetError, match="is a file; expected a folder"):
        _dataset(tmp_path / "x.png").load()


def test_empty_folder(tmp_path):
    with pytest.raises(DatasetError, match=f"no .png/.jpg/.jpeg images in folder {tmp_path}$"):
        _dataset(tmp_path).load()


def test_folder_of_subfolders_points_to_one(tmp_path):
    (tmp_path / "frog").mkdir()
    with pytest.raises(DatasetError, match="subfolders are not read.*frog"):
        _dataset(tmp_path).load()


def test_non_image_file_is_an_error_unless_skipped(tmp_path):
    pixels = _save(tmp_path / "a.png", _random(0))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError) as err:
        _dataset(tmp_path).load()
    message = str(err.value)
    assert str(tmp_path / "notes.txt") in message and "not a readable PNG or JPEG" in message
    assert "dataset.skip_non_images=true" in message

    images = _dataset(tmp_path, skip_non_images=True).load()
    np.testing.assert_array_equal(images[0], pixels / np.float32(255))
    assert len(images) == 1


def test_only_non_images_skipped_says_so(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match="no .png.*skipped 1 other files such as notes.txt"):
        _dataset(tmp_path, skip_non_images=True).load()


@pytest.mark.parametrize("kind", ["garbage", "truncated", "gif"])
def test_corrupt_or_unsupported_image_is_always_an_error(tmp_path, kind):
    bad = tmp_path / "bad.png"
    if kind == "gif":
        _save(bad, _random(0), format="GIF")
    else:
        _save(tmp_path / "full.png", _random(0))
        data = (tmp_path / "full.png").read_bytes()
        bad.write_bytes(data[: len(data) // 2] if kind == "truncated" else b"\x89PNG garbage")
        (tmp_path / "full.png").unlink()
    with pytest.raises(DatasetError, match="not a readable PNG or JPEG image") as err:
        _dataset(tmp_path, skip_non_images=True).load()
    assert str(bad) in str(err.value)
    assert "skip_non_images" not in str(err.value)  # skipping would not help


def test_wrong_size_is_rejected_with_what_to_do(tmp_path):
    _save(tmp_path / "a.png", _random(0))
    _save(tmp_path / "b.png", _random(1, height=20, width=40))
    with pytest.raises(DatasetError) as err:
        _dataset(tmp_path).load()
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'b.png'} is 40x20 (width x height), expected 8x8")
    assert "dataset.on_size_mismatch=resize" in message and "dataset.height" in message


@pytest.mark.parametrize("height, width", [(20, 40), (5, 6), (7, 9)])  # down, up, mixed
def test_resize_is_bicubic_within_one_level_of_pillow(tmp_path, height, width):
    # Resizing happens in the tf.data pipeline now (TensorFlow's antialiased bicubic), so it
    # matches Pillow's BICUBIC to within one 8-bit level rather than bit for bit.
    other = _save(tmp_path / "a.png", _random(0, height=height, width=width))
    same = _save(tmp_path / "b.png", _random(1))
    images = _dataset(tmp_path, on_size_mismatch="resize").load()
    assert images.shape == (2, SIZE, SIZE, 3)
    expected = np.asarray(Image.fromarray(other).resize((SIZE, SIZE), Image.Resampling.BICUBIC))
    levels = images[0] * 255
    np.testing.assert_array_equal(levels, np.round(levels))  # whole 8-bit levels
    assert np.abs(levels - expected).max() <= 1
    np.testing.assert_array_equal(images[1], same / np.float32(255))  # the right size: as is


def test_shape_and_config_round_trip():
    dataset = ImageFolderDataset(path="x", height=16, width=24, channels=1)
    assert dataset.image_shape == (16, 24, 1) and dataset.value_range == (0.0, 1.0)
    assert ImageFolderDataset.from_config(dataset.get_config()).get_config() == dataset.get_config()


@pytest.mark.parametrize("config, message", [
    ({}, "missing required key"),
    ({"path": "x", "channels": 2}, "one of 1, 3"),
    ({"path": "x", "height": 0}, ">= 1"),
    ({"path": "x", "on_size_mismatch": "resise"}, "did you mean 'resize'"),
    ({"path": "x", "scale": [1, 1]}, "low < high"),
])
def test_bad_params_are_recipe_errors(config, message):
    with pytest.raises(RecipeError, match=message):
        ImageFolderDataset(**config)


# --- bit depth and transparency -------------------------------------------------------------

def _png(path, height, width, colour_type, rows):
    """A 16-bit PNG from big-endian rows (Pillow cannot write 16-bit colour PNGs)."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    raw = b"".join(b"\0" + row.astype(">u2").tobytes() for row in rows)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


SIXTEEN = np.array([0, 1, 128, 129, 257, 300, 385, 386, 32767, 32896, 65278, 65279, 65534, 65535])


@pytest.mark.parametrize("channels", [1, 3])
def test_16_bit_greyscale_is_scaled_to_8_bits_not_clipped(tmp_path, channels):
    values = np.resize(SIXTEEN, (SIZE, SIZE)).astype(np.uint16)
    _png(tmp_path / "deep.png", SIZE, SIZE, 0, values)
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    images = _dataset(tmp_path, channels=channels).load()
    expected = np.round(values / 257).astype(np.uint8)
    assert list(expected.flat[:len(SIXTEEN)]) == [0, 0, 0, 1, 1, 1, 1, 2, 127, 128, 254, 254,
                                                   255, 255]
    np.testing.assert_array_equal(images[0] * 255, np.repeat(expected[..., None], channels, 2))


def test_16_bit_greyscale_with_resize(tmp_path):
    _png(tmp_path / "deep.png", 16, 16, 0, np.full((16, 16), 128 * 257, np.uint16))
    images = _dataset(tmp_path, channels=1, on_size_mismatch="resize").load()
    np.testing.assert_array_equal(images * 255, np.full((1, SIZE, SIZE, 1), 128.0))


def test_16_bit_colour_is_within_one_level_of_exact(tmp_path):
    values = np.resize(SIXTEEN, (SIZE, SIZE, 3)).astype(np.uint16)
    values[0, 0] = [257 * 7, 257 * 128, 257 * 255]  # 8-bit values widened the usual way
    _png(tmp_path / "deep.png", SIZE, SIZE, 2, values.reshape(SIZE, SIZE * 3))
    images = _dataset(tmp_path).load()[0] * 255
    assert np.abs(images - np.round(values / 257)).max() <= 1
    np.testing.assert_array_equal(images[0, 0], [7, 128, 255])


def _rgba(alpha):
    return np.dstack([_random(5), np.full((SIZE, SIZE), alpha, np.uint8)])


def test_dropped_transparency_is_one_warning_with_a_count(tmp_path):
    _save(tmp_path / "a_rgba.png", _rgba(0))
    half = _rgba(255)
    half[0, 0, 3] = 128
    _save(tmp_path / "b_rgba_one_pixel.png", half)
    _save(tmp_path / "c_la.png", np.dstack([_random(6, channels=1), np.zeros((SIZE, SIZE),
                                                                              np.uint8)]))
    palette = Image.fromarray(_random(7, channels=1) % 4).convert("P")
    palette.save(tmp_path / "d_palette.png", transparency=0)
    _save(tmp_path / "e_rgb.png", _random(8))
    _save(tmp_path / "f_opaque_rgba.png", _rgba(255))  # alpha 255 everywhere: nothing is lost
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images = _dataset(tmp_path).load()
    assert [w.category for w in caught] == [DatasetWarning], [str(w.message) for w in caught]
    message = str(caught[0].message)
    assert message.startswith(f"dropped the transparency (alpha) of 4 of 6 images in {tmp_path}, "
                              "e.g. a_rgba.png")
    assert issubclass(DatasetWarning, UserWarning) and images.shape == (6, SIZE, SIZE, 3)


def test_opaque_images_give_no_warning(tmp_path):
    _save(tmp_path / "a.png", _rgba(255))
    _save(tmp_path / "b.png", _random(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _dataset(tmp_path).load()


# --- files that are not plain images ---------------------------------------------------------

def _load_in_thread(dataset, block_on=None, seconds=10):
    """dataset.load() in a thread, so a test fails (instead of hanging) if it blocks."""
    result = {}

    def target():
        try:
            result["value"] = dataset.load()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        os.close(os.open(block_on, os.O_WRONLY | os.O_NONBLOCK))  # let the blocked open go
        thread.join(seconds)
        pytest.fail(f"loading blocked on {block_on}")
    return result


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("name, skip, hint", [
    ("pipe.png", False, False), ("pipe.png", True, False), ("pipe", False, True)])
def test_a_named_pipe_is_refused_without_blocking(tmp_path, name, skip, hint):
    _save(tmp_path / "a.png", _random(0))
    os.mkfifo(tmp_path / name)
    error = _load_in_thread(_dataset(tmp_path, skip_non_images=skip), tmp_path / name).get("error")
    assert isinstance(error, DatasetError), error
    assert str(error).startswith(f"{tmp_path / name} is a named pipe, not an image file; remove "
                                 "it from the folder")
    assert ("dataset.skip_non_images=true" in str(error)) == hint


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_without_image_extension_is_skipped_when_asked(tmp_path):
    _save(tmp_path / "a.png", _random(0))
    os.mkfifo(tmp_path / "pipe")
    assert _load_in_thread(_dataset(tmp_path, skip_non_images=True))["value"].shape[0] == 1


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_a_link_to_a_device_is_refused(tmp_path):
    (tmp_path / "null.png").symlink_to("/dev/null")
    with pytest.raises(DatasetError, match="null.png is a character device, not an image file"):
        _dataset(tmp_path).load()


@pytest.mark.parametrize("kind, message", [
    ("loop", "{file} is a symbolic link loop; remove it from the folder"),
    ("dangling", "{file} is a symbolic link to {target}, which does not exist; remove the link "
                 "or restore its target"),
    ("empty", "{file} is empty (0 bytes), not a PNG or JPEG image; remove it or replace it "
              "with the image"),
])
def test_broken_links_and_empty_files_are_named(tmp_path, kind, message):
    _save(tmp_path / "a.png", _random(0))
    file, target = tmp_path / "b.png", tmp_path / "gone.png"
    if kind == "loop":
        file.symlink_to(tmp_path / "c.png")
        (tmp_path / "c.png").symlink_to(file)
    elif kind == "dangling":
        file.symlink_to(target)
    else:
        file.write_bytes(b"")
    with pytest.raises(DatasetError) as err:
        _dataset(tmp_path).load()
    assert str(err.value) == message.format(file=file, target=target)


def test_a_file_that_cannot_be_opened_is_named(tmp_path, monkeypatch):
    _save(tmp_path / "a.png", _random(0))
    locked = tmp_path / "locked.png"
    _save(locked, _random(1))
    if os.geteuid() != 0:
        locked.chmod(0)
    else:  # root reads anything: make the loader's open fail as it would for a user
        real_open = os.open

        def deny(path, *args, **kwargs):
            if Path(path) == locked:
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(image_folder.os, "open", deny)
        monkeypatch.setattr(image_folder.Image, "open", _refuse_to_open(locked))
    with pytest.raises(DatasetError) as err:
        _dataset(tmp_path).load()
    assert str(err.value) == f"cannot open {locked} (Permission denied); check its permissions"


def _refuse_to_open(locked):
    """Image.open that, like the operating system would, cannot open ``locked`` by name."""
    real = Image.open

    def image_open(fp, *args, **kwargs):
        if isinstance(fp, (str, Path)) and Path(fp) == locked:
            raise PermissionError(13, "Permission denied", str(fp))
        return real(fp, *args, **kwargs)
    return image_open


@pytest.mark.parametrize("limit", [40, 20])  # 8x8 images: over the warning, over the error limit
def test_an_image_too_large_to_decode_safely_is_refused(tmp_path, monkeypatch, limit):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    _save(tmp_path / "a.png", _random(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DatasetError) as err:
            _dataset(tmp_path).load()
    assert str(err.value).startswith(f"{tmp_path / 'a.png'} is too large to decode safely (")
    assert str(err.value).endswith("); remove it or scale it down")


def test_a_shape_too_large_for_memory_is_a_dataset_error(tmp_path):
    _save(tmp_path / "a.png", _random(0))
    dataset = ImageFolderDataset(path=str(tmp_path), height=10**7, width=10**7)
    with pytest.raises(DatasetError, match="1 images of 10000000x10000000x3 do not fit in memory"):
        dataset.load()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_as_the_folder_is_refused(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(DatasetError, match="pipe is a named pipe; expected a folder of"):
        _dataset(tmp_path / "pipe").load()


def test_a_folder_that_is_a_link_loop_is_one_line(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(DatasetError) as err:
        _dataset(tmp_path / "a").load()
    assert str(err.value) == (f"dataset.path: cannot read folder {tmp_path / 'a'} "
                              "(Too many levels of symbolic links)")


# --- labels: one sub-folder per class ----------------------------------------------------------

def _class_folders(root, counts):
    for value, (name, count) in enumerate(counts.items()):
        (root / name).mkdir(parents=True)
        for i in range(count):
            _save(root / name / f"{i}.png", np.full((SIZE, SIZE, 3), value * 50 + i, np.uint8))
    return root


def test_class_sub_folders_give_sorted_names_and_aligned_labels(tmp_path):
    _class_folders(tmp_path, {"zebra": 2, "ant": 1, "moth": 3})
    (tmp_path / ".cache").mkdir()  # hidden: not a class
    (tmp_path / "moth" / "nested").mkdir()  # below a class folder: not read
    dataset = _dataset(tmp_path, labels=True)
    assert dataset.class_names == ("ant", "moth", "zebra")
    images, labels = dataset.load()
    assert labels.dtype == np.int32 and labels.tolist() == [0, 1, 1, 1, 2, 2]
    # written as zebra (values 0, 1), ant (50), moth (100..102); read as ant, moth, zebra
    np.testing.assert_array_equal(images[:, 0, 0, 0] * 255, [50, 100, 101, 102, 0, 1])
    assert _dataset(tmp_path).class_names is None


def test_class_names_need_neither_tensorflow_nor_reading_images(tmp_path):
    import subprocess
    import sys

    _class_folders(tmp_path, {"b": 1, "a": 1})
    (tmp_path / "a" / "0.png").write_bytes(b"not an image: never read for the names")
    code = ("import sys; from gankit_datasets.image_folder import ImageFolderDataset as D; "
            f"assert D(path={str(tmp_path)!r}, labels=True).class_names == ('a', 'b'); "
            "from gankit_datasets.cifar10 import Cifar10Dataset as C; "
            "assert C(labels=True, classes=['dog', 3]).class_names == ('dog', 'cat'); "
            "assert not {'tensorflow', 'keras'} & set(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("layout, message", [
    ({"root_image": True}, "{root}/x.png is directly in {root}; with dataset.labels=true every "
                           "image goes in the sub-folder of its class"),
    ({"empty": "fox"}, "class folder {root}/fox has no .png/.jpg/.jpeg images; add images of "
                       "class 'fox' or remove the folder"),
    ({"no_classes": True}, "dataset.path: folder {root} has no class sub-folders; with "
                           "dataset.labels=true put the images of each class in a sub-folder"),
    ({"root_text": True}, "{root}/notes.txt is not a class sub-folder; remove it from the "
                          "folder or set dataset.skip_non_images=true"),
])
def test_class_folder_layout_mistakes_are_one_line(tmp_path, layout, message):
    root = tmp_path / "data"
    if layout.get("no_classes"):
        root.mkdir()
        _save(root / "x.png", _random(0))
    else:
        _class_folders(root, {"cat": 1})
    if layout.get("root_image"):
        _save(root / "x.png", _random(0))
    if layout.get("empty"):
        (root / layout["empty"]).mkdir()
    if layout.get("root_text"):
        (root / "notes.txt").write_text("about the data")
    with pytest.raises(DatasetError) as err:
        _dataset(root, labels=True).load()
    assert str(err.value).startswith(message.format(root=root)), str(err.value)
    assert "\n" not in str(err.value)


def test_non_images_beside_class_folders_can_be_skipped(tmp_path):
    _class_folders(tmp_path, {"cat": 2, "dog": 1})
    (tmp_path / "README.txt").write_text("about the data")
    images, labels = _dataset(tmp_path, labels=True, skip_non_images=True).load()
    assert labels.tolist() == [0, 0, 1]


def test_a_labelled_folder_passes_the_conformance_check(tmp_path):
    from gankit.testing import check_dataset

    _class_folders(tmp_path, {"cat": 2, "dog": 3})
    assert "source" in check_dataset(_dataset(tmp_path, labels=True)).passed


def test_preflight_checks_the_headers_without_decoding(tmp_path):
    _save(tmp_path / "a.png", _random(0))
    (tmp_path / "b.png").write_bytes(b"\x89PNG damaged")
    # A damaged header is found before TensorFlow loads (gankit run calls preflight first).
    with pytest.raises(DatasetError, match="b.png is not a readable PNG or JPEG image"):
        _dataset(tmp_path).preflight()
    # Damage past a header is found when the images are decoded (load, or in training).
    good = tmp_path / "good"
    good.mkdir()
    _save(good / "a.png", _random(0))
    data = (tmp_path / "a.png").read_bytes()
    (good / "c.png").write_bytes(data[:len(data) // 2])  # header intact, pixels cut off
    _dataset(good).preflight()
    with pytest.raises(DatasetError, match="c.png is not a readable PNG or JPEG image"):
        _dataset(good).load()
