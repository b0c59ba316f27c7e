"""The ``ensemble`` discriminator (Vision-aided GAN's sum of discriminators): conformance with
a projected member's frozen parts named, the score really the weighted sum of the members',
two members of one type apart, conditional members, and its mistakes as one line."""

import numpy as np
import pytest

from gankit.errors import RecipeError
from gankit.testing import check_discriminator
from gankit_nets.ensemble import EnsembleDiscriminator

FROZEN = ("stem", "block1_", "block2_", "_mix")  # the projected member's classifier, projections


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    from gankit.evaluation.classifier import build_classifier

    path = tmp_path_factory.mktemp("ensemble") / "backbone.keras"
    build_classifier((32, 32, 3), 3, width=4).save(path)
    return path


def dcgan(**config):
    return {"type": "dcgan", "base_filters": 4, **config}


def projected(backbone, **config):
    return {"type": "projected", "backbone": str(backbone), "mix_channels": 4, "head_filters": 4,
            **config}


def test_a_dcgan_and_a_projected_member_pass_the_discriminator_checks(backbone):
    ensemble = EnsembleDiscriminator(members=[dcgan(), projected(backbone)], weights=[1.0, 0.5])
    report = check_discriminator(ensemble, skip_weights=FROZEN)
    assert report.passed, report


def test_two_members_of_one_type_are_apart_and_pass_the_checks():
    ensemble = EnsembleDiscriminator(members=[dcgan(), dcgan(base_filters=2, norm="none")])
    model = ensemble.build()
    first, second = model.get_layer("member0"), model.get_layer("member1")
    assert first.count_params() != second.count_params()
    assert len(model.trainable_weights) == (len(first.trainable_weights)
                                            + len(second.trainable_weights))
    report = check_discriminator(ensemble)
    assert report.passed, report


def test_the_score_is_the_weighted_sum_of_the_members_scores(backbone):
    model = EnsembleDiscriminator(members=[dcgan(), projected(backbone)],
                                  weights=[2.0, 0.25]).build()
    images = np.random.default_rng(0).uniform(-1, 1, (3, 32, 32, 3)).astype("float32")
    parts = [np.asarray(model.get_layer(f"member{i}")(images, training=False)) for i in (0, 1)]
    assert not np.allclose(parts[0], parts[1])
    np.testing.assert_allclose(np.asarray(model(images, training=False)),
                               2.0 * parts[0] + 0.25 * parts[1], rtol=1e-5, atol=1e-6)
    assert model.output.dtype == "float32"


def test_one_member_is_that_member_alone():
    model = EnsembleDiscriminator(members=[dcgan()]).build()
    images = np.random.default_rng(1).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(model(images, training=False)),
                               np.asarray(model.get_layer("member0")(images, training=False)))


def test_conditional_members_make_a_conditional_ensemble():
    ensemble = EnsembleDiscriminator(members=[dcgan(num_classes=3), dcgan(num_classes=3)])
    assert ensemble.num_classes == 3
    assert len(ensemble.build().inputs) == 2
    report = check_discriminator(ensemble)
    assert report.passed, report


def test_mixes_batch_if_any_member_does(backbone):
    assert EnsembleDiscriminator(members=[dcgan(norm="none"), dcgan()]).mixes_batch
    assert not EnsembleDiscriminator(members=[dcgan(norm="none"),
                                              projected(backbone, norm="none")]).mixes_batch


@pytest.mark.parametrize("config, message", [
    ({"members": []}, "members: name at least one member discriminator"),
    ({"members": [dcgan(), dcgan()], "weights": [1.0]}, "weights: expected one weight per "
                                                        "member \\(2\\), got 1"),
    ({"members": [dcgan()], "weights": [0.0]}, "weights\\[0\\]: expected a number in \\(0.0, 1000000.0\\]"),
    ({"members": [dcgan()], "weights": [-1.0]}, "weights\\[0\\]: expected"),
    ({"members": [dcgan(), {"type": "frog_dcgan"}]}, "members\\[1\\]: the frog_dcgan "
                                                     "discriminator scores probabilities"),
    ({"members": [dcgan(), dcgan(height=64, width=64)]}, "members\\[1\\]: takes \\(64, 64, 3\\) "
                                                          "images, member 0 takes \\(32, 32, 3\\)"),
    ({"members": [dcgan(), dcgan(num_classes=2)]}, "members\\[1\\]: has num_classes 2, member 0 "
                                                   "has 0"),
    ({"members": [dcgan(), {"type": "dcgann"}]}, "did you mean 'dcgan'"),
    ({"members": [dcgan(base_filters=0)]}, "base_filters"),
    ({"members": "dcgan"}, "members: expected a list of discriminators"),
])
def test_mistakes_are_recipe_errors(config, message):
    with pytest.raises(RecipeError, match=message):
        EnsembleDiscriminator(**config)


def test_the_members_recipe_checks_run_with_their_paths(backbone, tmp_path):
    from gankit.plugin.manager import default_plugins
    from gankit.recipe.validation import validate

    raw = {"generator": {"type": "dcgan", "latent_dim": 8, "base_filters": 4},
           "discriminator": {"type": "ensemble", "members": [dcgan(), projected(backbone)]},
           "dataset": {"type": "image_folder", "path": str(tmp_path), "scale": [0.0, 1.0]},
           "loss": "non_saturating", "train": {"steps": 2, "batch_size": 2}}
    with pytest.raises(RecipeError, match="discriminator.members\\[1\\].image_range: the "
                                          "dataset's images are in \\[0.0, 1.0\\]"):
        validate(raw, default_plugins().registry)
    raw["dataset"]["scale"] = [-1.0, 1.0]
    assert validate(raw, default_plugins().registry).spec("discriminator").type == "ensemble"
    raw["discriminator"]["members"][0] = {"type": "frog_dcgan"}
    with pytest.raises(RecipeError, match="discriminator.members\\[0\\]: the frog_dcgan"):
        validate(raw, default_plugins().registry)


def test_a_generator_with_other_classes_is_refused_naming_the_members(tmp_path):
    from gankit.plugin.manager import default_plugins
    from gankit.recipe.validation import validate

    raw = {"generator": {"type": "dcgan", "latent_dim": 8, "base_filters": 4, "num_classes": 3},
           "discriminator": {"type": "ensemble", "members": [dcgan(), dcgan()]},
           "dataset": {"type": "image_folder", "path": str(tmp_path), "labels": True},
           "loss": "non_saturating", "train": {"steps": 2, "batch_size": 2}}
    with pytest.raises(RecipeError, match="conditioned on 3 classes but the discriminator on 0: "
                                          "the discriminator 'ensemble' takes its classes from "
                                          "its parts \\(their num_classes\\)"):
        validate(raw, default_plugins().registry)


def test_a_run_with_an_ensemble_resumes_to_the_same_weights_as_one_without_a_break(
        backbone, tmp_path, make_image_folder):
    import gankit

    images = make_image_folder(tmp_path / "images", 8, 32)
    recipe = {"name": "ensemble",
              "generator": {"type": "dcgan", "latent_dim": 8, "base_filters": 4},
              "discriminator": {"type": "ensemble", "weights": [1.0, 0.5],
                                "members": [dcgan(), projected(backbone)]},
              "dataset": {"type": "image_folder", "path": str(images), "scale": [-1.0, 1.0]},
              "loss": "non_saturating", "ema": {"decay": 0.9},
              "train": {"steps": 4, "batch_size": 4, "seed": 1, "sample_every": 2,
                        "grid_every": 100, "grid_size": 2, "checkpoint_every": 2,
                        "precision": "float32"}}
    whole = gankit.train(recipe, out=tmp_path / "whole", quiet=True)
    recipe["train"]["steps"] = 2
    half = gankit.train(recipe, out=tmp_path / "half", quiet=True)
    resumed = gankit.resume(half.run_dir, overrides=["train.steps=4"], quiet=True)
    assert (whole.step, resumed.step, resumed.start) == (4, 4, 2)
    for name in ("generator_file", "ema_file"):
        a = gankit.load_keras_model(getattr(whole, name)).weights
        b = gankit.load_keras_model(getattr(resumed, name)).weights
        assert len(a) == len(b) > 0
        assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b)), name


def test_a_members_relative_backbone_is_found_beside_the_recipe_or_here_when_set(
        backbone, tmp_path, monkeypatch):
    import shutil

    import yaml

    from gankit.recipe.validation import load_recipe

    folder, elsewhere = tmp_path / "recipes", tmp_path / "elsewhere"
    folder.mkdir(), elsewhere.mkdir()
    shutil.copy(backbone, folder / "bb.keras")
    recipe = folder / "r.yaml"
    recipe.write_text(yaml.safe_dump({
        "generator": {"type": "dcgan", "latent_dim": 8, "base_filters": 4},
        "discriminator": {"type": "ensemble", "members": [dcgan(), projected("bb.keras")]},
        "dataset": {"type": "image_folder", "path": str(tmp_path), "scale": [-1.0, 1.0]},
        "loss": "non_saturating", "train": {"steps": 2, "batch_size": 2}}))
    monkeypatch.chdir(elsewhere)
    member = load_recipe(recipe).spec("discriminator").config["members"][1]
    assert member["backbone"] == str(folder / "bb.keras")
    for key in ("discriminator.members[1].backbone", "discriminator.members.1.backbone"):
        with pytest.raises(RecipeError, match=f"members\\[1\\].backbone: {elsewhere / 'bb.keras'} "
                                              "is not a file"):
            load_recipe(recipe, [f"{key}=bb.keras"])
    shutil.copy(backbone, elsewhere / "bb.keras")
    set_here = load_recipe(recipe, ["discriminator.members=[dcgan, {type: projected, "
                                    "backbone: bb.keras}]"])
    assert set_here.spec("discriminator").config["members"][1]["backbone"] == \
        str(elsewhere / "bb.keras")
    # setting another key of the members leaves the backbone beside the recipe
    other = load_recipe(recipe, ["discriminator.members[0].base_filters=2"])
    assert other.spec("discriminator").config["members"][1]["backbone"] == \
        str(folder / "bb.keras")


def test_a_members_build_error_names_its_path_in_the_ensemble(backbone, tmp_path):
    bad = tmp_path / "bad.keras"
    bad.write_text("not a zip")
    ensemble = EnsembleDiscriminator(members=[dcgan(), projected(bad)])
    with pytest.raises(RecipeError) as err:
        ensemble.build()
    assert err.value.path == "discriminator.members[1].backbone"
    assert "is not a .keras file (a .keras model is a zip archive)" in str(err.value)
    with pytest.raises(RecipeError) as err:
        EnsembleDiscriminator(members=[projected(backbone, layers=["block9"])]).build()
    assert err.value.path == "discriminator.members[0].layers"
