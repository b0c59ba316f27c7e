"""The image-folder dataset on small PNG and JPEG files written by the tests."""

import numpy as np
import pytest
from PIL import Image

from gankit.errors import DatasetError, RecipeError
from gankit_datasets.image_folder import ImageFolderDataset

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
    images = ones.load()
    assert ones.image_shape == (SIZE, SIZE, 1) and images.shape == (3, SIZE, SIZE, 1)
    expected = np.asarray(Image.fromarray(colour).convert("L"))
    np.testing.assert_array_equal(images[0, ..., 0], expected.astype("float32") / 255.)
    np.testing.assert_array_equal(images[1, ..., 0], gray.astype("float32") / 255.)

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


def test_resize_uses_bicubic(tmp_path):
    big = _save(tmp_path / "a.png", _random(0, height=20, width=40))
    _save(tmp_path / "b.png", _random(1))
    images = _dataset(tmp_path, on_size_mismatch="resize").load()
    assert images.shape == (2, SIZE, SIZE, 3)
    expected = Image.fromarray(big).resize((SIZE, SIZE), Image.Resampling.BICUBIC)
    np.testing.assert_array_equal(images[0], np.asarray(expected) / np.float32(255))


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
