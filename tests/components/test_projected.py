"""The ``projected`` discriminator (Projected GAN): conformance with its frozen parts named,
the backbone really frozen and really used, and its mistakes as one line."""

import numpy as np
import pytest

from gankit.errors import RecipeError
from gankit.testing import check_discriminator
from gankit_nets.projected import ProjectedDiscriminator

FROZEN = ("stem", "block1_", "block2_", "_mix")  # the classifier, the projections


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    from gankit.evaluation.classifier import build_classifier

    path = tmp_path_factory.mktemp("projected") / "backbone.keras"
    build_classifier((32, 32, 3), 3, width=4).save(path)
    return path


def small(backbone, **config):
    return ProjectedDiscriminator(**{"backbone": str(backbone), "mix_channels": 4,
                                     "head_filters": 4, **config})


def test_it_passes_the_discriminator_checks(backbone):
    report = check_discriminator(small(backbone), skip_weights=FROZEN)
    assert report.passed, report


def test_without_batch_norm_and_with_one_layer(backbone):
    report = check_discriminator(small(backbone, norm="none", layers=["block2_2_relu"],
                                       mix_channels=0), skip_weights=FROZEN[:-1])
    assert report.passed, report


def test_the_backbone_is_frozen_and_its_weights_are_the_files(backbone):
    import keras

    model = small(backbone).build()
    saved = keras.saving.load_model(backbone, compile=False)
    inner = model.get_layer("backbone")
    assert not inner.trainable
    trainable = {w.path for w in model.trainable_weights}
    assert not any(p.startswith("backbone") or "_mix" in p for p in trainable)
    assert any(p.startswith("head0_down1") for p in trainable)
    kernel = inner.get_layer("block1_conv1").kernel
    np.testing.assert_array_equal(np.asarray(kernel),
                                  np.asarray(saved.get_layer("block1_conv1").kernel))


def test_images_are_mapped_to_the_backbones_range(backbone):
    model = small(backbone, image_range=[-1.0, 1.0], input_range=[0.0, 1.0]).build()
    rescale = model.get_layer("to_backbone_range")
    out = np.asarray(rescale(np.array([[-1.0, 0.0, 1.0]], dtype="float32")))
    np.testing.assert_allclose(out, [[0.0, 0.5, 1.0]])


@pytest.mark.parametrize("config, message", [
    ({"layers": []}, "layers: name at least one layer"),
    ({"layers": ["a", "a"]}, "a layer is listed twice"),
    ({"input_range": [1.0, 0.0]}, "input_range: expected [LOW, HIGH] with LOW < HIGH"),
])
def test_mistakes_are_recipe_errors(backbone, config, message):
    config = {"backbone": str(backbone), **config}
    with pytest.raises(RecipeError) as err:
        ProjectedDiscriminator(**config)
    assert message in str(err.value)


def test_an_unknown_layer_names_the_layers_there_are(backbone):
    with pytest.raises(RecipeError, match="has no layer 'block9' \\(it has images, normalize"):
        small(backbone, layers=["block9"]).build()


def test_a_recipe_whose_dataset_scale_differs_is_refused(backbone, tmp_path):
    from gankit.plugin.manager import default_plugins
    from gankit.recipe.validation import validate

    raw = {"generator": {"type": "dcgan", "latent_dim": 8, "base_filters": 4},
           "discriminator": {"type": "projected", "backbone": str(backbone)},
           "dataset": {"type": "image_folder", "path": str(tmp_path), "scale": [0.0, 1.0]},
           "loss": "non_saturating", "train": {"steps": 2, "batch_size": 2}}
    with pytest.raises(RecipeError, match="discriminator.image_range: the dataset's images "
                                          "are in \\[0.0, 1.0\\]"):
        validate(raw, default_plugins().registry)
    raw["discriminator"]["image_range"] = [0.0, 1.0]
    assert validate(raw, default_plugins().registry).spec("discriminator").type == "projected"
    (tmp_path / "text.keras").write_text("not a zip")
    raw["discriminator"]["backbone"] = str(tmp_path / "text.keras")
    with pytest.raises(RecipeError, match="discriminator.backbone: .*text.keras is not a .keras "
                                          "file \\(a .keras model is a zip archive\\)"):
        validate(raw, default_plugins().registry)
    raw["discriminator"]["backbone"] = str(tmp_path / "none.keras")
    with pytest.raises(RecipeError, match="discriminator.backbone: .*none.keras is not a file; "
                                          "expected a .keras classifier"):
        validate(raw, default_plugins().registry)
