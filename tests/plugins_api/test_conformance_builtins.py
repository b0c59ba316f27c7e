"""gankit's own components pass the conformance kit that plugin authors use."""

import pickle
import subprocess
import sys

import numpy as np
import pytest

from gankit.testing import (DATASET_CHECKS, MODEL_CHECKS, STRATEGY_CHECKS, check_component,
                            check_config, check_dataset, check_discriminator, check_generator,
                            check_plugin, check_strategy)
from gankit_datasets.cifar10 import Cifar10Dataset
from gankit_datasets.image_folder import ImageFolderDataset
from gankit_dcgan.discriminator import FrogDCGANDiscriminator
from gankit_dcgan.generator import FrogDCGANGenerator
from gankit_dcgan.strategy import AlternatingStrategy

# The smallest frog DCGAN: its discriminator needs images of at least 24x24.
SHAPE = {"height": 24, "width": 24, "channels": 3}


@pytest.fixture(scope="module")
def generator():
    return FrogDCGANGenerator(latent_dim=4, base_filters=4, filters=4, **SHAPE)


@pytest.fixture(scope="module")
def discriminator():
    return FrogDCGANDiscriminator(filters=4, **SHAPE)


def test_importing_the_kit_and_its_pytest_plugin_does_not_import_tensorflow():
    code = ("import sys, gankit.testing, gankit.testing.pytest_plugin; "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_pytest_plugin_is_registered_through_pytest11():
    from importlib import metadata

    eps = metadata.entry_points(group="pytest11")
    assert any(ep.name == "gankit" and ep.value == "gankit.testing.pytest_plugin" for ep in eps)


def test_the_builtin_plugins_load_and_provide_their_components():
    check_plugin("dcgan", provides={"generator": ["frog_dcgan"],
                                    "discriminator": ["frog_dcgan"], "strategy": ["alternating"]})
    check_plugin("datasets", provides={"dataset": ["cifar10", "image_folder"]})


def test_frog_generator(generator):
    report = check_generator(generator)
    assert report.passed == MODEL_CHECKS


def test_frog_discriminator_on_real_images(discriminator, gankit_image_folder):
    images = ImageFolderDataset(path=str(gankit_image_folder(n=3)), height=24, width=24).load()
    assert check_discriminator(discriminator, images=images).passed == MODEL_CHECKS


def test_alternating_strategy(generator, discriminator, gankit_images):
    report = check_strategy(AlternatingStrategy(), generator, discriminator,
                            images=gankit_images(4, (24, 24, 3)))
    assert report.passed == STRATEGY_CHECKS


def test_alternating_strategy_without_clipping_or_decay(generator, discriminator):
    check_strategy(AlternatingStrategy(clipvalue=None, inverse_time_decay=0.0), generator,
                   discriminator, skip=["determinism"])


def test_image_folder_dataset(gankit_image_folder):
    folder = gankit_image_folder(n=3, height=8, width=8, channels=1)
    for scale in ([0.0, 1.0], [-1.0, 1.0]):
        dataset = ImageFolderDataset(path=str(folder), height=8, width=8, channels=1, scale=scale)
        assert check_dataset(dataset, min_images=3).passed == DATASET_CHECKS


def test_cifar10_dataset_on_a_tiny_copy(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), b"labels": [6, 1]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    check_dataset(Cifar10Dataset(path=str(folder), label="frog"), min_images=5)
    check_dataset(Cifar10Dataset(path=str(folder), split="test", scale=[-1.0, 1.0]))


def test_check_component_dispatches_by_kind(generator, discriminator, gankit_image_folder):
    assert check_component(discriminator).kind == "discriminator"
    dataset = ImageFolderDataset(path=str(gankit_image_folder(n=2)), height=24, width=24)
    assert check_component(dataset).passed == DATASET_CHECKS
    with pytest.raises(TypeError, match="takes a gankit component instance"):
        check_component(object())


def test_every_builtin_component_round_trips_its_default_config(gankit_plugins):
    for registration in gankit_plugins.registry:
        cls = registration.component
        required = {k: "x" for k, p in cls.params.items() if p.required}
        check_config(cls(**required))
