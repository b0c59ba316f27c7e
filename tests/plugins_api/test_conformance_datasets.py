"""check_dataset checks meaning: the declared scale is the one used, labels stay with their
images, and what the trainer reads through source() is bit for bit what load() gives."""

import numpy as np
import pytest

from gankit import ArraySource, Dataset, Examples, Param, scale_uint8
from gankit.testing import DATASET_CHECKS, ConformanceError, check_dataset


class Labelled(Dataset):
    """Twelve seeded 4x4 RGB images in (-1, 1), two classes, in an order chosen by the seed."""

    name = "labelled"
    params = {"seed": Param(int, 0, doc="chooses the order")}
    class_names = ("cat", "dog")

    @property
    def image_shape(self):
        return (4, 4, 3)

    @property
    def value_range(self):
        return (-1.0, 1.0)

    def pixels(self):
        rng = np.random.default_rng(123)  # the same images for every seed
        return rng.integers(0, 256, (12, 4, 4, 3), dtype=np.uint8), np.arange(12) % 2

    def order(self):
        return np.random.default_rng(self.config["seed"]).permutation(12)

    def load(self):
        pixels, labels = self.pixels()
        images = (pixels.astype(np.float32) / np.float32(255.0)) * np.float32(2.0) \
            + np.float32(-1.0)
        order = self.order()
        return Examples(images[order], labels[order].astype(np.int32))

    def source(self):
        pixels, labels = self.pixels()
        order = self.order()
        return ArraySource(pixels[order], labels[order].astype(np.int32), self.value_range)


class HalfRange(Labelled):
    """The planted bug: [0, 1] images declared as (-1, 1)."""

    def load(self):
        examples = super().load()
        return Examples((examples.images + 1) / 2, examples.labels)

    def source(self):
        examples = self.load()
        return ArraySource(examples.images, examples.labels, self.value_range)


class LabelsNotShuffled(Labelled):
    """The planted bug: images reordered by the seed, labels left in the original order."""

    def load(self):
        examples = super().load()
        return Examples(examples.images, (np.arange(12) % 2).astype(np.int32))

    def source(self):
        examples = self.load()
        return ArraySource(examples.images, examples.labels, self.value_range)


class ScaledOtherwise(Labelled):
    """The planted bug: load() scales in float64, the source in the graph (last-bit drift)."""

    def load(self):
        examples = super().load()
        pixels, _ = self.pixels()
        images = (pixels[self.order()].astype(np.float64) * (2.0 / 255.0) - 1.0)
        return Examples(images.astype(np.float32), examples.labels)


def test_the_correct_labelled_dataset_passes_every_check():
    report = check_dataset(Labelled(), min_images=12)
    assert report.passed == DATASET_CHECKS


def test_its_scaling_is_gankits_own_bit_for_bit():
    import tensorflow as tf

    pixels, _ = Labelled().pixels()
    ours = scale_uint8(tf.constant(pixels), (-1.0, 1.0)).numpy()
    assert np.array_equal(ours, Examples(*Labelled(seed=0).load()).images[np.argsort(
        Labelled().order())])


@pytest.mark.parametrize("dataset, check, match", [
    (HalfRange(), "scale", r"every value is in \[0, 1\], the upper half of value_range \(-1, 1\)"),
    (LabelsNotShuffled(), "labels", r"with seed 0 is labelled \d with seed 1: shuffle labels "
                                    r"with the same permutation"),
    (ScaledOtherwise(), "source", r"differs from load\(\) at those indices by up to .*scale "
                                  r"pixels differently"),
])
def test_a_planted_bug_fails_the_matching_check(dataset, check, match):
    with pytest.raises(ConformanceError, match=match) as failed:
        check_dataset(dataset)
    assert failed.value.check == check


def test_the_scale_check_can_be_skipped_for_data_in_the_upper_half_by_nature():
    report = check_dataset(HalfRange(), skip=["scale"])
    assert "scale" in report.skipped
