"""gankit's own components pass the conformance kit that plugin authors use."""

import pickle
import subprocess
import sys

import numpy as np
import pytest

from gankit.testing import (
    AUGMENTER_CHECKS,
    CONDITIONAL_CHECKS,
    DATASET_CHECKS,
    LOSS_CHECKS,
    MODEL_CHECKS,
    PRECISION_CHECKS,
    REGULARIZER_CHECKS,
    STRATEGY_CHECKS,
    check_component,
    check_config,
    check_dataset,
    check_discriminator,
    check_generator,
    check_mixed_precision,
    check_plugin,
    check_strategy,
)
from gankit_datasets.cifar10 import Cifar10Dataset
from gankit_datasets.image_folder import ImageFolderDataset
from gankit_dcgan.discriminator import FrogDCGANDiscriminator
from gankit_dcgan.generator import FrogDCGANGenerator
from gankit_nets.dcgan import DCGANDiscriminator, DCGANGenerator
from gankit_nets.resnet import ResNetDiscriminator, ResNetGenerator
from gankit_training.augment import DiffAugment
from gankit_training.losses import BCELoss, HingeLoss, WassersteinLoss
from gankit_training.regularizers import GradientPenalty, R1Penalty
from gankit_training.strategy import GANStrategy

# The smallest frog DCGAN: its discriminator needs images of at least 24x24.
SHAPE = {"height": 24, "width": 24, "channels": 3}


@pytest.fixture(scope="module")
def generator():
    return FrogDCGANGenerator(latent_dim=4, base_filters=4, filters=4, **SHAPE)


@pytest.fixture(scope="module")
def discriminator():
    return FrogDCGANDiscriminator(filters=4, **SHAPE)


def _shift_note(weight: str, loss: str) -> str:
    return (f"training: the discriminator's weight '{weight}' stayed unchanged: its gradient is "
            f"exactly zero: the loss is invariant to a constant shift of the score (the weight "
            f"adds the same amount to every score, and the gradients of {loss} with respect to "
            f"the scores sum to zero)")


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
    check_plugin("dcgan", provides={"generator": ["frog_dcgan"], "discriminator": ["frog_dcgan"]})
    check_plugin("nets", provides={"generator": ["dcgan", "resnet"],
                                   "discriminator": ["dcgan", "resnet"]})
    check_plugin("training", provides={"strategy": ["gan"], "loss": ["bce", "hinge"],
                                       "regularizer": ["gradient_penalty", "r1"],
                                       "augmenter": ["diffaugment"], "optimizer": ["Adam"]})
    check_plugin("datasets", provides={"dataset": ["cifar10", "image_folder"]})


def test_frog_generator(generator):
    report = check_generator(generator)
    assert report.passed == MODEL_CHECKS


def test_frog_discriminator_on_real_images(discriminator, gankit_image_folder):
    images = ImageFolderDataset(path=str(gankit_image_folder(n=3)), height=24, width=24).load()
    assert check_discriminator(discriminator, images=images).passed == MODEL_CHECKS


# The standard architectures at tiny widths (they are made for 32x32 images).
TINY_MODELS = [DCGANGenerator(latent_dim=4, base_filters=2),
               DCGANDiscriminator(base_filters=2),
               DCGANDiscriminator(base_filters=2, spectral_norm=True),
               DCGANDiscriminator(base_filters=2, norm="layer"),
               ResNetGenerator(latent_dim=4, filters=4),
               ResNetDiscriminator(filters=4)]


@pytest.mark.parametrize("model", TINY_MODELS, ids=repr)
def test_standard_architectures(model):
    report = check_component(model)
    assert report.passed == MODEL_CHECKS and report.notes == ()


# Their class-conditional forms (embedding, conditional batch norm, projection discriminator).
TINY_CONDITIONAL_MODELS = [DCGANGenerator(latent_dim=4, base_filters=2, num_classes=3),
                           DCGANDiscriminator(base_filters=2, spectral_norm=True, num_classes=3),
                           ResNetGenerator(latent_dim=4, filters=4, num_classes=3),
                           ResNetDiscriminator(filters=4, num_classes=3)]


@pytest.mark.parametrize("model", TINY_CONDITIONAL_MODELS, ids=repr)
def test_conditional_standard_architectures(model):
    report = check_component(model)
    assert report.passed == MODEL_CHECKS + CONDITIONAL_CHECKS and report.notes == ()


# The frog article's loss: fake = 1, real = 0, label noise 0.05.
FROG_BCE = BCELoss(real_label=0.0, fake_label=1.0, label_noise=0.05)


def test_gan_strategy_with_bce_on_the_frog_models_without_dropout(generator, gankit_images):
    report = check_strategy(GANStrategy(), generator,
                            FrogDCGANDiscriminator(filters=4, dropout=0.0, **SHAPE),
                            loss=FROG_BCE, images=gankit_images(4, (24, 24, 3)))
    assert report.passed == STRATEGY_CHECKS and report.notes == ()


def test_gan_strategy_with_bce_on_the_frog_models(generator, discriminator):
    # Dropout on: its seed state must be part of the checkpoint for an exact resume.
    report = check_strategy(GANStrategy(), generator, discriminator, loss=FROG_BCE)
    assert report.passed == STRATEGY_CHECKS


def test_gan_strategy_with_hinge_diffaugment_and_r1_on_dcgan_models():
    report = check_strategy(GANStrategy(), DCGANGenerator(latent_dim=4, base_filters=2),
                            DCGANDiscriminator(base_filters=2, spectral_norm=True),
                            loss=HingeLoss(), regularizers=[R1Penalty(gamma=1.0)],
                            augmenter=DiffAugment())
    assert report.passed == STRATEGY_CHECKS
    # Every score lies inside the hinge's margins, where the loss is 2 + mean(fake) - mean(real).
    assert report.notes == (_shift_note("score_sn/score/bias", "HingeLoss"),)


def test_gan_strategy_with_wasserstein_gradient_penalty_and_two_d_steps():
    report = check_strategy(GANStrategy(d_steps=2), DCGANGenerator(latent_dim=4, base_filters=2),
                            DCGANDiscriminator(base_filters=2, norm="layer"),
                            loss=WassersteinLoss(), regularizers=[GradientPenalty()])
    assert report.passed == STRATEGY_CHECKS
    assert report.notes == (_shift_note("score/bias", "WassersteinLoss"),)


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
    assert check_component(HingeLoss()).passed == LOSS_CHECKS
    assert check_component(R1Penalty()).passed == REGULARIZER_CHECKS
    assert check_component(DiffAugment()).passed == AUGMENTER_CHECKS
    report = check_component(GANStrategy(), generator=generator, discriminator=discriminator,
                             skip=["setup", "step", "training", "determinism", "resume"])
    assert report.kind == "strategy" and report.passed == ("interface", "config")
    with pytest.raises(TypeError, match="takes a gankit component instance"):
        check_component(object())


def _sample(param):
    """A valid value for a required parameter."""
    if param.choices:
        return param.choices[0]
    kind = param.type[0] if isinstance(param.type, tuple) else param.type
    if kind in (int, float):
        low = param.min if param.min is not None else 0
        value = kind(low + 1)
        return value if param.max is None else min(value, kind(param.max))
    return {str: "x", bool: True, list: []}[kind]


# Required parameters that must agree with each other (or one of which is needed).
CONSISTENT = {"PiecewiseConstantDecay": {"boundaries": [10], "values": [1e-3, 1e-4]},
              "Snapshot": {"minutes": [5.0]},
              "EnsembleDiscriminator": {"members": [{"type": "dcgan", "base_filters": 2}]}}


def test_every_builtin_component_round_trips_its_default_config(gankit_plugins):
    for registration in gankit_plugins.registry:
        cls = registration.component
        required = {k: _sample(p) for k, p in cls.params.items() if p.required}
        check_config(cls(**{**required, **CONSISTENT.get(cls.__name__, {})}))


# --- mixed precision (train.precision) ---------------------------------------------------------

PRECISION_MODELS = [FrogDCGANGenerator(latent_dim=4, base_filters=4, filters=4, **SHAPE),
                    FrogDCGANDiscriminator(filters=4, **SHAPE), *TINY_MODELS,
                    DCGANDiscriminator(base_filters=2, spectral_norm=True, num_classes=3),
                    ResNetGenerator(latent_dim=4, filters=4, num_classes=3)]


@pytest.mark.parametrize("model", PRECISION_MODELS, ids=repr)
def test_the_builtin_models_under_mixed_precision(model):
    report = check_mixed_precision(model)
    assert report.passed == PRECISION_CHECKS and report.notes == ()


def test_the_gan_strategy_with_a_penalty_and_augmentation_under_mixed_precision():
    # R1 takes its own gradient inside the step (the gradient penalty's is the same code,
    # tested on its own in tests/training/test_precision.py).
    report = check_mixed_precision(GANStrategy(),
                                   generator=DCGANGenerator(latent_dim=4, base_filters=2),
                                   discriminator=DCGANDiscriminator(base_filters=2, norm="layer"),
                                   loss=HingeLoss(), augmenter=DiffAugment(),
                                   regularizers=[R1Penalty(gamma=1.0)])
    assert report.passed == PRECISION_CHECKS
