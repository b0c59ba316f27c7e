"""Recipe validation of class-conditional models against the dataset's labels (no
TensorFlow): one line naming the key for each disagreement."""

from pathlib import Path

import numpy as np
import pytest
import yaml

import gankit
from gankit.errors import DatasetError, RecipeError
from gankit.params import Param
from gankit.plugin.manager import default_plugins
from gankit.plugin.registry import Registry
from gankit.recipe.validation import load_recipe

ROOT = Path(__file__).resolve().parents[2]


class _Tiny(gankit.Dataset):
    """Shared by the fake datasets: 32x32x3 images, none loaded."""

    @property
    def image_shape(self):
        return (32, 32, 3)

    @property
    def value_range(self):
        return (-1.0, 1.0)

    def load(self):
        return np.zeros((1, 32, 32, 3), np.float32)


class AskedLabels(_Tiny):
    """Labels when asked, as the built-in datasets: ``labels: true``; ``missing`` plays a
    dataset whose class names are in a folder that does not exist yet."""

    name = "asked_labels"
    params = {"labels": Param(bool, False), "classes": Param(int, 3, min=0),
              "missing": Param(bool, False)}

    @property
    def class_names(self):
        if not self.config["labels"]:
            return None
        if self.config["missing"]:
            raise DatasetError("no such folder: /nowhere")
        return tuple(f"class{i}" for i in range(self.config["classes"]))


class AlwaysLabelled(_Tiny):
    """A plugin dataset without a ``labels`` parameter that always names its classes."""

    name = "always_labelled"

    @property
    def class_names(self):
        return ("cat", "dog")


class Unlabelled(_Tiny):
    """A plugin dataset without labels."""

    name = "unlabelled"


@pytest.fixture(scope="module")
def registry():
    out = Registry()
    for reg in default_plugins().registry:
        out.register(reg.component, reg.name, plugin=reg.plugin, distribution=reg.distribution)
    for component in (AskedLabels, AlwaysLabelled, Unlabelled):
        out.register(component, plugin="test")
    return out


def recipe_file(tmp_path, generator, discriminator, dataset):
    data = {"generator": {"type": "dcgan", "latent_dim": 8, "base_filters": 2, **generator},
            "discriminator": (discriminator if "type" in discriminator
                              else {"type": "dcgan", "base_filters": 2, **discriminator}),
            "dataset": dataset, "loss": "hinge", "train": {"steps": 1}}
    path = tmp_path / "conditional.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def validate(registry, tmp_path, generator=None, discriminator=None, dataset=None):
    path = recipe_file(tmp_path, generator or {}, discriminator or {},
                       dataset or {"type": "asked_labels"})
    return load_recipe(path, registry=registry)


def refusal(registry, tmp_path, **sections) -> str:
    with pytest.raises(RecipeError) as caught:
        validate(registry, tmp_path, **sections)
    message = str(caught.value)
    assert "\n" not in message
    prefix = f"{tmp_path / 'conditional.yaml'}: "
    assert message.startswith(prefix)
    return message[len(prefix):]


TEN = {"num_classes": 10}
THREE = {"num_classes": 3}


def test_conditional_models_with_a_labelled_dataset_of_as_many_classes_validate(registry,
                                                                                 tmp_path):
    recipe = validate(registry, tmp_path, THREE, THREE, {"type": "asked_labels", "labels": True})
    assert recipe.create("generator").num_classes == 3
    assert recipe.create("dataset").class_names == ("class0", "class1", "class2")
    # Unconditional models with an unlabelled dataset, as before.
    assert validate(registry, tmp_path).create("discriminator").num_classes == 0
    assert validate(registry, tmp_path, dataset={"type": "unlabelled"})


def test_generator_and_discriminator_classes_must_agree(registry, tmp_path):
    assert refusal(registry, tmp_path, generator=TEN, discriminator=THREE) == (
        "discriminator.num_classes: the generator is conditioned on 10 classes but the "
        "discriminator on 3; set generator.num_classes and discriminator.num_classes to the "
        "same number")
    assert refusal(registry, tmp_path, discriminator=THREE).startswith(
        "discriminator.num_classes: the generator is conditioned on 0 classes but the "
        "discriminator on 3")


def test_a_discriminator_that_cannot_be_conditioned_is_named(registry, tmp_path):
    message = refusal(registry, tmp_path, generator=THREE,
                      discriminator={"type": "frog_dcgan", "height": 32, "width": 32},
                      dataset={"type": "asked_labels", "labels": True})
    assert message == ("generator.num_classes: the generator is conditioned on 3 classes but "
                       "the discriminator on 0: the discriminator 'frog_dcgan' cannot be "
                       "conditioned (it has no num_classes)")


def test_conditional_models_need_labels(registry, tmp_path):
    assert refusal(registry, tmp_path, generator=THREE, discriminator=THREE) == (
        "dataset.labels: the generator and discriminator are conditioned on 3 classes "
        "(num_classes) but the dataset 'asked_labels' gives no labels; set dataset.labels: "
        "true, or num_classes: 0 on both models for an unconditional GAN")
    assert refusal(registry, tmp_path, generator=THREE, discriminator=THREE,
                   dataset={"type": "unlabelled"}) == (
        "generator.num_classes: the generator and discriminator are conditioned on 3 classes "
        "(num_classes) but the dataset 'unlabelled' gives no labels; choose a labelled "
        "dataset, or num_classes: 0 on both models for an unconditional GAN")


def test_labels_asked_for_need_conditional_models(registry, tmp_path):
    assert refusal(registry, tmp_path, dataset={"type": "asked_labels", "labels": True}) == (
        "dataset.labels: the dataset 'asked_labels' gives labels of 3 classes (labels: true) "
        "but the generator and discriminator are unconditional (num_classes 0); set "
        "generator.num_classes and discriminator.num_classes to 3, or dataset.labels: false")
    # A dataset that always has labels may train unconditional models: they ignore them.
    assert validate(registry, tmp_path, dataset={"type": "always_labelled"})


def test_the_number_of_classes_must_be_the_datasets(registry, tmp_path):
    assert refusal(registry, tmp_path, generator=TEN, discriminator=TEN,
                   dataset={"type": "asked_labels", "labels": True, "classes": 7}) == (
        "generator.num_classes: expected the number of classes of the dataset 'asked_labels' "
        "(7: class0, class1, class2, class3, class4, ...), got 10; set generator.num_classes "
        "and discriminator.num_classes to 7")
    assert refusal(registry, tmp_path, generator=THREE, discriminator=THREE,
                   dataset={"type": "always_labelled"}).startswith(
        "generator.num_classes: expected the number of classes of the dataset "
        "'always_labelled' (2: cat, dog), got 3")


def test_classes_in_a_missing_folder_leave_only_the_count_unchecked(registry, tmp_path):
    missing = {"type": "asked_labels", "labels": True, "missing": True}
    assert validate(registry, tmp_path, TEN, TEN, missing).create("generator").num_classes == 10
    assert refusal(registry, tmp_path, dataset=missing).startswith(
        "dataset.labels: the dataset 'asked_labels' gives labels (labels: true) but the "
        "generator and discriminator are unconditional (num_classes 0); set "
        "generator.num_classes and discriminator.num_classes to the number of classes")


@pytest.mark.parametrize("value, message", [
    (-1, "generator.num_classes: expected an integer in [0, 10000], got -1"),
    (10_001, "generator.num_classes: expected an integer in [0, 10000], got 10001"),
    ("ten", "generator.num_classes: expected an integer in [0, 10000], got the string 'ten'"),
    (2.5, "generator.num_classes: expected an integer in [0, 10000], got float 2.5"),
    (True, "generator.num_classes: expected an integer in [0, 10000], got the boolean true"),
])
def test_bad_num_classes_values(registry, tmp_path, value, message):
    assert refusal(registry, tmp_path, generator={"num_classes": value}) == message


def test_the_builtin_datasets_name_their_classes_at_validation(registry, tmp_path):
    cifar = {"type": "cifar10", "path": str(tmp_path / "not-downloaded"), "labels": True}
    recipe = validate(registry, tmp_path, TEN, TEN, cifar)
    assert len(recipe.create("dataset").class_names) == 10
    subset = {**cifar, "classes": ["cat", "dog"]}
    assert validate(registry, tmp_path, {"num_classes": 2}, {"num_classes": 2}, subset)
    assert refusal(registry, tmp_path, generator=TEN, discriminator=TEN, dataset=subset) == (
        "generator.num_classes: expected the number of classes of the dataset 'cifar10' "
        "(2: cat, dog), got 10; set generator.num_classes and discriminator.num_classes to 2")
    assert refusal(registry, tmp_path, generator=TEN, discriminator=TEN,
                   dataset={**cifar, "labels": False}).startswith("dataset.labels: ")

    folder = tmp_path / "classes"
    for name in ("apples", "pears", "plums"):
        (folder / name).mkdir(parents=True)
    labelled = {"type": "image_folder", "path": str(folder), "labels": True}
    assert refusal(registry, tmp_path, generator=TEN, discriminator=TEN,
                   dataset=labelled).startswith(
        "generator.num_classes: expected the number of classes of the dataset 'image_folder' "
        "(3: apples, pears, plums), got 10")
    # A folder that does not exist yet: gankit run reports it; validation checks the rest.
    missing = {**labelled, "path": str(tmp_path / "later")}
    assert validate(registry, tmp_path, TEN, TEN, missing)
    assert refusal(registry, tmp_path, dataset=missing).startswith("dataset.labels: ")


def test_the_conditional_recipe_resolves_to_a_conditional_sngan_on_all_ten_classes():
    recipe = load_recipe(ROOT / "recipes" / "cifar10_conditional.yaml")
    generator, discriminator = recipe.create("generator"), recipe.create("discriminator")
    assert (generator.name, discriminator.name) == ("resnet", "resnet")
    assert generator.num_classes == discriminator.num_classes == 10
    assert discriminator.config["spectral_norm"] is True
    dataset = recipe.create("dataset")
    assert dataset.config["labels"] is True and len(dataset.class_names) == 10
    assert recipe.spec("loss").type == "hinge" and recipe.spec("augmenter").type == "diffaugment"
    assert recipe.ema is not None and recipe.train.precision == "auto"
    assert recipe.train.grid_size == 10  # one row per class
    with pytest.raises(RecipeError, match="dataset.labels: "):
        load_recipe(ROOT / "recipes" / "cifar10_conditional.yaml", ["dataset.labels=false"])
