"""train.distribute in a recipe and TF_CONFIG: checked without TensorFlow."""

import json
import subprocess
import sys

import pytest

from gankit.errors import GankitError, RecipeError
from gankit.plugin.manager import default_plugins
from gankit.recipe.validation import validate
from gankit.training.cluster import worker_role

RAW = {
    "generator": {"type": "frog_dcgan", "latent_dim": 8, "height": 24, "width": 24},
    "discriminator": {"type": "frog_dcgan", "height": 24, "width": 24},
    "dataset": {"type": "image_folder", "path": "/nonexistent", "height": 24, "width": 24},
    "loss": {"type": "bce"},
    "train": {"steps": 4, "batch_size": 4},
}


def recipe(**train):
    raw = json.loads(json.dumps(RAW))
    raw["train"].update(train)
    return validate(raw, default_plugins().registry, source="r.yaml")


def test_forms_normalise_to_a_mapping():
    assert recipe().train.distribute == {"type": "none"}
    assert recipe(distribute="mirrored").train.distribute == {"type": "mirrored",
                                                              "devices": None}
    assert recipe(distribute={"type": "mirrored", "devices": ["/gpu:0", "/gpu:1"]}
                  ).train.distribute["devices"] == ["/gpu:0", "/gpu:1"]
    assert recipe(distribute={"type": "multi_worker"}).train.distribute == {
        "type": "multi_worker", "communication": "auto"}


@pytest.mark.parametrize("value, path, words", [
    ("mirored", "train.distribute.type", "did you mean 'mirrored'"),
    ({"devices": ["/gpu:0"]}, "train.distribute", "missing key 'type'"),
    ({"type": "mirrored", "devics": []}, "train.distribute.devics", "did you mean 'devices'"),
    ({"type": "mirrored", "devices": []}, "train.distribute.devices", "at least one device"),
    ({"type": "mirrored", "devices": ["/gpu:0", "/gpu:0"]}, "train.distribute.devices", "twice"),
    ({"type": "mirrored", "devices": "/gpu:0"}, "train.distribute.devices", "a list"),
    ({"type": "none", "devices": ["/gpu:0"]}, "train.distribute.devices", "no other keys"),
    ({"type": "multi_worker", "communication": "mpi"}, "train.distribute.communication",
     "'ring'"),
    (2, "train.distribute", "a string or a mapping"),
    (None, "train.distribute", "got null"),
])
def test_bad_values_name_the_key(value, path, words):
    with pytest.raises(RecipeError) as err:
        recipe(distribute=value)
    assert err.value.path == path and words in str(err.value)


def test_what_distribution_asks_of_the_rest_of_train():
    with pytest.raises(RecipeError, match="must divide equally among the 3 devices") as err:
        recipe(distribute={"type": "mirrored", "devices": ["/gpu:0", "/gpu:1", "/gpu:2"]})
    assert err.value.path == "train.batch_size"
    with pytest.raises(RecipeError, match="use auto or off") as err:
        recipe(distribute="mirrored", xla="on")
    assert err.value.path == "train.xla"
    with pytest.raises(RecipeError, match="one step per call") as err:
        recipe(distribute="multi_worker", steps_per_call=4)
    assert err.value.path == "train.steps_per_call"
    recipe(distribute="mirrored", steps_per_call=1, xla="off")


def test_changing_the_distribution_is_not_a_changed_recipe():
    from gankit.app.train import _changed_keys

    a = recipe().to_dict()
    b = recipe(distribute={"type": "multi_worker"}).to_dict()
    assert _changed_keys(a, b) == []
    assert recipe().digest() == recipe(distribute="mirrored").digest()
    assert _changed_keys(a, recipe(seed=1).to_dict()) != []


def config(cluster, task):
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": task})}


MW = {"type": "multi_worker", "communication": "auto"}
TWO = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}


def test_worker_role_from_tf_config():
    assert worker_role({"type": "mirrored", "devices": None}, {}).is_chief
    role = worker_role(MW, config(TWO, {"type": "worker", "index": 1}))
    assert (role.index, role.count, role.task, role.is_chief) == (1, 2, "worker:1", False)
    assert worker_role(MW, config(TWO, {"type": "worker", "index": 0})).is_chief
    with_chief = {"chief": ["h:1"], "worker": ["h:2"]}
    assert worker_role(MW, config(with_chief, {"type": "chief", "index": 0})).is_chief
    role = worker_role(MW, config(with_chief, {"type": "worker", "index": 0}))
    assert (role.index, role.is_chief) == (1, False)


@pytest.mark.parametrize("environ, words", [
    ({}, "TF_CONFIG environment variable is not set"),
    ({"TF_CONFIG": "{cluster"}, "not valid JSON"),
    ({"TF_CONFIG": "[]"}, "'cluster' and 'task'"),
    (config({"ps": ["h:1"]}, {"type": "ps", "index": 0}), "'ps' job"),
    (config({"worker": "h:1"}, {"type": "worker", "index": 0}), "list of host:port"),
    (config(TWO, {"type": "chief", "index": 0}), "not a job of its cluster"),
    (config(TWO, {"type": "worker", "index": 2}), "has 2 task(s)"),
    (config(TWO, {"type": "worker", "index": True}), "task.index is True"),
])
def test_bad_tf_config_is_one_line(environ, words):
    with pytest.raises(GankitError) as err:
        worker_role(MW, environ)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_cli_refuses_a_missing_tf_config_before_tensorflow(tmp_path):
    (tmp_path / "images").mkdir()
    import numpy as np
    from PIL import Image

    Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(tmp_path / "images" / "a.png")
    raw = json.loads(json.dumps(RAW))
    raw["dataset"]["path"] = str(tmp_path / "images")
    raw["train"]["distribute"] = "multi_worker"
    (tmp_path / "r.yaml").write_text(json.dumps(raw))
    env = {k: v for k, v in __import__("os").environ.items() if k != "TF_CONFIG"}
    code = ("import sys; from gankit.cli.main import main; rc = main(sys.argv[1:]); "
            "assert 'tensorflow' not in sys.modules; sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, "run", str(tmp_path / "r.yaml"),
                           "--out", str(tmp_path / "run")], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "gankit: error: train.distribute is multi_worker but the TF_CONFIG environment "
        "variable is not set; set it on every worker (see docs/scaling.md)"]
    assert not (tmp_path / "run").exists()
