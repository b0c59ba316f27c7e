"""Recipe loading and validation against the installed (built-in) plugins."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gankit.errors import ComponentNotFoundError, RecipeError
from gankit.recipe.validation import apply_overrides, load_recipe, parse_yaml

ROOT = Path(__file__).resolve().parents[2]
FROG = ROOT / "recipes" / "frog_dcgan.yaml"


def _write(tmp_path, data, name="r.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False) if not isinstance(data, str) else data)
    return path


def test_validation_and_plugin_listing_do_not_import_tensorflow():
    code = ("import sys; from gankit.recipe.validation import load_recipe; from gankit.cli.main import main; "
            f"load_recipe({str(FROG)!r}); main(['plugins']); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_the_frog_recipe_resolves_to_the_articles_settings():
    recipe = load_recipe(FROG)
    assert recipe.components["generator"].config["latent_dim"] == 32
    assert recipe.spec("loss").to_dict() == {"type": "bce", "real_label": 0.0, "fake_label": 1.0,
                                             "label_noise": 0.05, "from_logits": False,
                                             "label_smoothing": 0.0}
    d_opt = recipe.sections["optimizer"]["discriminator"].config
    assert d_opt["learning_rate"]["initial_learning_rate"] == 8e-4 and d_opt["clipvalue"] == 1.0
    assert recipe.sections["optimizer"]["generator"].type == "RMSprop"
    assert recipe.spec("strategy").to_dict() == {"type": "gan", "d_steps": 1}
    assert recipe.sections["regularizer"] == [] and recipe.ema is None
    assert recipe.components["dataset"].config["label"] == "frog"
    assert (recipe.train.steps, recipe.train.batch_size) == (1000, 2)
    assert recipe.components["generator"].registration.distribution == "gankit"


def test_overrides_are_yaml_typed_and_can_replace_a_section():
    recipe = load_recipe(FROG, ["train.steps=20", "loss.label_noise=0.1",
                                "train.shuffle=true", "dataset={type: image_folder, path: /x}"])
    assert recipe.train.steps == 20 and recipe.train.shuffle is True
    assert recipe.components["loss"].config["label_noise"] == 0.1
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
    ("train.batch_size='64'", "train.batch_size: expected an integer in [1, 65536], got the string '64'"),
    ("optimizers.discriminator.learning_rate=-0.1",
     "optimizers.discriminator.learning_rate: expected a number > 0.0, or a schedule "
     "({type: NAME, ...}), got -0.1"),
    ("optimizers.discriminator.learning_rate.decay_rate=-1",
     "optimizers.discriminator.learning_rate.decay_rate: expected a number >= 0.0, got -1.0"),
    ("optimizers.generator.lr=0.1", "optimizers.generator.lr: 'lr' is a legacy name that "
                                    "gankit does not accept: Keras 3 optimizers have no `lr`"),
    ("optimizers.generator.decay=0.1", "optimizers.generator.decay: 'decay' is a legacy name "
                                       "that gankit does not accept: Keras 3 optimizers have no "
                                       "`decay`; give learning_rate an InverseTimeDecay"),
    ("strategy.d_learning_rate=0.1", "strategy.d_learning_rate: 'd_learning_rate' is a legacy "
                                     "name that gankit does not accept: set "
                                     "optimizers.discriminator.learning_rate"),
    ("optimizers.critic={type: Adam}", "optimizers.critic: unknown role; valid: generator, "
                                       "discriminator"),
    ("optimizers.generator.type=Adamm", "optimizers.generator.type: no optimizer named "
                                        "'Adamm' (did you mean 'Adam'?)"),
    ("regularizers=[{type: r1, gama: 1}]", "regularizers[0].gama: unknown key (did you mean "
                                           "'gamma'?)"),
    ("regularizers=[r1, {type: r3}]", "regularizers[1].type: no regularizer named 'r3' (did "
                                      "you mean 'r2'?); registered regularizers: "),
    ("regularizers={type: r1}", "regularizers: expected a list of regularizers"),
    ("train.seed=4294967296", "train.seed: expected an integer in [0, 4294967295], got "
                              "4294967296"),
    ("train.steps=100000000000000000000", "train.steps: expected an integer in [1, 2147483647]"),
    ("train.steps=1e20", "train.steps: expected an integer in [1, 2147483647], got float 1e+20"),
    ("name=../../escaped", "name: expected a name of letters, digits, '.', '_' or '-'"),
    ("name=/abs", "name: expected a name of letters, digits"),
    ("discriminator.dropout=1.0", "discriminator.dropout: expected a number in [0.0, 0.99], "
                                  "got 1.0"),
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
    assert str(err.value).startswith(f"{FROG}: generator.type: no generator named 'frog_dcgn' "
                                     "(did you mean 'frog_dcgan'?); registered generators: ")
    assert "dcgan (gankit), frog_dcgan (gankit), resnet (gankit)" in str(err.value)


def test_qualified_names_resolve():
    recipe = load_recipe(FROG, ["generator.type=dcgan:frog_dcgan"])
    assert recipe.components["generator"].registration.plugin == "dcgan"


@pytest.mark.parametrize("text, message", [
    ("", "the recipe is empty"),
    ("- a\n- b\n", "a recipe must be a mapping of sections"),
    ("generator: {type: frog_dcgan}\n", "missing section(s): discriminator, dataset, train"),
])
def test_malformed_recipes(tmp_path, text, message):
    with pytest.raises(RecipeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_recipe(_write(tmp_path, text))


def test_missing_type_lists_choices(tmp_path):
    data = yaml.safe_load(FROG.read_text())
    del data["strategy"]  # --set into a section left out starts from its default
    assert load_recipe(_write(tmp_path, data), ["strategy.d_steps=2"]).spec("strategy").to_dict() \
        == {"type": "gan", "d_steps": 2}
    del data["loss"]["type"]
    with pytest.raises(RecipeError, match=r"loss.type: missing 'type': name the loss to use "
                                          r"\(bce, hinge, least_squares, .*non_saturating, "
                                          r".*wasserstein\)"):
        load_recipe(_write(tmp_path, data))


def test_missing_file():
    with pytest.raises(RecipeError, match="nope.yaml: recipe file not found"):
        load_recipe("nope.yaml")


def test_override_syntax_errors():
    with pytest.raises(RecipeError, match="expected KEY=VALUE"):
        apply_overrides({}, ["train.steps"])
    with pytest.raises(RecipeError, match="'train.steps' is the value 1, not a section"):
        apply_overrides({"train": {"steps": 1}}, ["train.steps.x=1"])


def test_resolved_recipe_round_trips_and_has_a_stable_digest(tmp_path):
    recipe = load_recipe(FROG)
    again = load_recipe(_write(tmp_path, recipe.to_dict()))
    assert again.to_dict() == recipe.to_dict()
    assert again.digest() == recipe.digest()
    assert load_recipe(FROG, ["train.seed=1"]).digest() != recipe.digest()


@pytest.mark.parametrize("overrides, message", [
    (["loss=hinge"], "loss: the loss 'hinge' expects logits, but the discriminator "
                     "'frog_dcgan' outputs probabilities (a sigmoid output)"),
    (["loss.from_logits=true", "loss.label_noise=0"], "loss: the loss 'bce' expects logits, but the discriminator"),
    (["regularizers=[{type: r1, every: 5000}]"],
     "regularizers[0].every: 5000 is more than train.steps (1000), so the penalty would never "
     "be applied"),
    (["generator=dcgan", "discriminator={type: dcgan}", "loss=wasserstein",
      "regularizers=[gradient_penalty]"],
     "regularizers[0]: a gradient penalty needs a discriminator that scores each image on its "
     "own, but 'dcgan' uses batch normalization (set discriminator.norm: layer or none)"),
])
def test_settings_that_span_sections_are_checked(overrides, message):
    with pytest.raises(RecipeError) as err:
        load_recipe(FROG, overrides)
    assert message in str(err.value)


@pytest.mark.parametrize("overrides, message", [
    (["optimizers.generator.clipnorm=1", "optimizers.generator.clipvalue=1"],
     "optimizers.generator.clipvalue: set at most one of clipnorm, clipvalue and "
     "global_clipnorm"),
    (["augmenter={type: diffaugment, policy: [colour]}"], "augmenter.policy"),
    (["optimizers.generator.learning_rate={type: PiecewiseConstantDecay, boundaries: [10], "
      "values: [0.1]}"], "optimizers.generator.learning_rate.values: expected one more value "
                         "than boundaries"),
])
def test_constructors_run_at_validation(overrides, message):
    with pytest.raises(RecipeError) as err:
        load_recipe(FROG, overrides)
    assert message in str(err.value)


def test_a_key_set_inside_a_shorthand_section_expands_it(tmp_path):
    data = yaml.safe_load(FROG.read_text())
    data["augmenter"] = "diffaugment"
    path = _write(tmp_path, data)
    recipe = load_recipe(path, ["augmenter.policy=[color]", "regularizers=[r1]",
                                "regularizers.0.gamma=0.5"])
    assert recipe.spec("augmenter").to_dict()["policy"] == ["color"]
    assert recipe.sections["regularizer"][0].config["gamma"] == 0.5
    with pytest.raises(RecipeError, match="'3' is not an index of a list of 1 item"):
        load_recipe(path, ["regularizers=[r1]", "regularizers.3.gamma=0.5"])
    # The index as error messages write key paths, too.
    recipe = load_recipe(path, ["regularizers=[r1, r2]", "regularizers[1].gamma=0.25"])
    assert recipe.sections["regularizer"][1].config["gamma"] == 0.25


def test_relative_paths_follow_the_recipe_file_and_set_paths_follow_the_cwd(tmp_path,
                                                                              monkeypatch):
    folder = tmp_path / "recipes"
    folder.mkdir()
    data = yaml.safe_load(FROG.read_text())
    data["dataset"] = {"type": "image_folder", "path": "../data/frogs"}
    path = _write(folder, data)
    monkeypatch.chdir(tmp_path / "recipes")
    assert load_recipe(path).spec("dataset").config["path"] == str(tmp_path / "data" / "frogs")
    monkeypatch.chdir(tmp_path)
    recipe = load_recipe(path, ["dataset.path=here/frogs"])
    assert recipe.spec("dataset").config["path"] == str(tmp_path / "here" / "frogs")
    assert load_recipe(path, ["dataset.path=/abs/frogs"]).spec("dataset").config["path"] == \
        "/abs/frogs"


def test_the_train_config_has_a_field_for_every_train_key():
    from dataclasses import fields

    from gankit.recipe.schema import TRAIN_PARAMS, TrainConfig

    assert {f.name for f in fields(TrainConfig)} == set(TRAIN_PARAMS)


def test_the_digest_of_the_frog_recipe_is_the_one_0_4_stored():
    # Checkpoints store the digest and resume refuses another one: a parameter added later
    # (bce's label_smoothing) at its default must not change it, or 0.4's runs stop resuming.
    assert load_recipe(FROG).digest() == \
        "3d86d09e50a8ec71d096e5b39f8ed4f3c3773510c3e75b08591c8df0ca0735f5"
