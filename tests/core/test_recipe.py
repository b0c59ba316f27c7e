"""Recipe loading and validation against the installed (built-in) plugins."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gankit.errors import ComponentNotFoundError, RecipeError
from gankit.recipe import apply_overrides, load_recipe, parse_yaml

ROOT = Path(__file__).resolve().parents[2]
FROG = ROOT / "recipes" / "frog_dcgan.yaml"


def _write(tmp_path, data, name="r.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False) if not isinstance(data, str) else data)
    return path


def test_validation_and_plugin_listing_do_not_import_tensorflow():
    code = ("import sys; from gankit.recipe import load_recipe; from gankit.cli import main; "
            f"load_recipe({str(FROG)!r}); main(['plugins']); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_the_frog_recipe_resolves_to_the_articles_settings():
    recipe = load_recipe(FROG)
    assert recipe.components["generator"].config["latent_dim"] == 32
    assert recipe.components["strategy"].config["d_learning_rate"] == 8e-4
    assert recipe.components["dataset"].config["label"] == "frog"
    assert (recipe.train.steps, recipe.train.batch_size) == (1000, 2)
    assert recipe.components["generator"].registration.distribution == "gankit"


def test_overrides_are_yaml_typed_and_can_replace_a_section():
    recipe = load_recipe(FROG, ["train.steps=20", "strategy.label_noise=0.1",
                                "train.shuffle=true", "dataset={type: image_folder, path: /x}"])
    assert recipe.train.steps == 20 and recipe.train.shuffle is True
    assert recipe.components["strategy"].config["label_noise"] == 0.1
    assert recipe.components["dataset"].type == "image_folder"


def test_yaml_12_floats_booleans_and_duplicate_keys():
    assert parse_yaml("a: 8e-4", "x") == {"a": 8e-4}
    assert parse_yaml("a: off\nb: yes\nc: true\nd: False", "x") == {
        "a": "off", "b": "yes", "c": True, "d": False}
    assert load_recipe(FROG, ["train.xla=off"]).train.xla == "off"
    with pytest.raises(RecipeError, match="train.shuffle: expected true or false, got the string 'yes'"):
        load_recipe(FROG, ["train.shuffle=yes"])
    with pytest.raises(RecipeError, match="duplicate key 'a'"):
        parse_yaml("a: 1\na: 2\n", "x")
    with pytest.raises(RecipeError, match=r"not valid YAML \(line 1"):
        parse_yaml("a: [1, 2", "x")


@pytest.mark.parametrize("override, message", [
    ("train.batchsize=3", "train.batchsize: unknown key (did you mean 'batch_size'?)"),
    ("generator.latentdim=3", "generator.latentdim: unknown key (did you mean 'latent_dim'?)"),
    ("trian.steps=3", "trian: unknown section (did you mean 'train'?)"),
    ("train.batch_size='64'", "train.batch_size: expected an integer >= 1, got the string '64'"),
    ("strategy.d_learning_rate=-0.1", "strategy.d_learning_rate: expected a number > 0.0, got -0.1"),
    ("strategy.lr=0.1", "strategy.lr: 'lr' is a legacy name that gankit does not accept: "
                        "Keras 3 optimizers have no `lr`"),
    ("strategy.decay=0.1", "strategy.decay: 'decay' is a legacy name that gankit does not "
                           "accept: Keras 3 optimizers have no `decay`; set inverse_time_decay"),
    ("dataset.label=frogg", "dataset.label: unknown CIFAR-10 class 'frogg'"),
    ("generator.height=64", "image shapes disagree: generator [64, 32, 3], discriminator "
                            "[32, 32, 3], dataset [32, 32, 3]"),
])
def test_bad_values_name_file_path_and_expectation(override, message):
    with pytest.raises(RecipeError) as err:
        load_recipe(FROG, [override])
    assert str(err.value).startswith(f"{FROG}: "), str(err.value)
    assert message in str(err.value)


def test_unknown_component_lists_what_is_registered_and_the_nearest():
    with pytest.raises(ComponentNotFoundError) as err:
        load_recipe(FROG, ["generator.type=frog_dcgn"])
    assert str(err.value) == (f"{FROG}: generator.type: no generator named 'frog_dcgn' "
                              "(did you mean 'frog_dcgan'?); registered generators: "
                              "frog_dcgan (gankit)")


def test_qualified_names_resolve():
    recipe = load_recipe(FROG, ["generator.type=dcgan:frog_dcgan"])
    assert recipe.components["generator"].registration.plugin == "dcgan"


@pytest.mark.parametrize("text, message", [
    ("", "the recipe is empty"),
    ("- a\n- b\n", "a recipe must be a mapping of sections"),
    ("generator: {type: frog_dcgan}\n", "missing section(s): discriminator, dataset, strategy, train"),
])
def test_malformed_recipes(tmp_path, text, message):
    with pytest.raises(RecipeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_recipe(_write(tmp_path, text))


def test_missing_type_lists_choices(tmp_path):
    data = yaml.safe_load(FROG.read_text())
    del data["strategy"]["type"]
    with pytest.raises(RecipeError, match=r"strategy.type: missing 'type': name the strategy "
                                          r"to use \(alternating\)"):
        load_recipe(_write(tmp_path, data))


def test_missing_file():
    with pytest.raises(RecipeError, match="nope.yaml: recipe file not found"):
        load_recipe("nope.yaml")


def test_override_syntax_errors():
    with pytest.raises(RecipeError, match="expected KEY=VALUE"):
        apply_overrides({}, ["train.steps"])
    with pytest.raises(RecipeError, match="'train.steps' is not a section"):
        apply_overrides({"train": {"steps": 1}}, ["train.steps.x=1"])


def test_resolved_recipe_round_trips_and_has_a_stable_digest(tmp_path):
    recipe = load_recipe(FROG)
    again = load_recipe(_write(tmp_path, recipe.to_dict()))
    assert again.to_dict() == recipe.to_dict()
    assert again.digest() == recipe.digest()
    assert load_recipe(FROG, ["train.seed=1"]).digest() != recipe.digest()
