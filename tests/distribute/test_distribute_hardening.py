"""train.distribute that names devices the machine lacks: one line before the first step, no
hang (0.4 blocked forever inside the first compiled call, deaf to SIGTERM), no run left behind."""

import os
import subprocess
import sys

import pytest
import yaml
from tiny import tiny_recipe

from gankit.errors import RecipeError
from gankit.recipe.distribute import check_distribute


def _recipe(tmp_path, devices):
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    for i in range(4):
        Image.new("RGB", (24, 24), (i * 40, 10, 10)).save(images / f"{i}.png")
    recipe = tiny_recipe("mirror", {"steps": 2, "batch_size": 2, "precision": "float32",
                                    "distribute": {"type": "mirrored", "devices": devices}})
    recipe["dataset"]["path"] = str(images)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.mark.parametrize("devices, missing", [(["/cpu:0", "/cpu:7"], "/cpu:7"),
                                              (["/gpu:0"], "/gpu:0")])
def test_a_device_the_machine_lacks_is_one_line_and_no_run(tmp_path, devices, missing):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "gankit", "run", str(_recipe(tmp_path, devices)),
                           "--out", str(out)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert f"this machine has no device {missing} (TensorFlow sees: /cpu:0" in lines[0]
    assert not out.exists()


@pytest.mark.parametrize("name", ["bogus", "/gpu", "gpu:x", "/cpu:0; rm -rf /", "/gpu:99999"])
def test_a_malformed_device_name_is_refused_by_validation(name):
    with pytest.raises(RecipeError, match="expected a device name such as /gpu:0"):
        check_distribute({"type": "mirrored", "devices": [name]})


@pytest.mark.parametrize("name", ["/gpu:0", "/GPU:1", "/cpu:0", "/device:GPU:0",
                                  "/job:worker/replica:0/task:1/device:GPU:0", "gpu:0"])
def test_device_names_tensorflow_takes_pass_validation(name):
    assert check_distribute({"type": "mirrored", "devices": [name]})["devices"] == [name]


@pytest.mark.parametrize("worker, message", [
    ("not a host", "expected host:port"), ("localhost:99999", "not a number from 1 to 65535"),
    ("localhost:abc", "not a number from 1 to 65535"), ("bad_host!:80", "not a host name"),
    ("[::zz]:80", "not an IPv6 address")])
def test_a_tf_config_address_tensorflow_would_reject_is_one_line_before_it_loads(worker,
                                                                                 message):
    import json

    from gankit.errors import GankitError
    from gankit.training.cluster import worker_role

    config = json.dumps({"cluster": {"worker": [worker]}, "task": {"type": "worker"}})
    with pytest.raises(GankitError, match=message):
        worker_role({"type": "multi_worker"}, {"TF_CONFIG": config})


def test_a_deep_tf_config_is_one_line():
    from gankit.errors import GankitError
    from gankit.training.cluster import worker_role

    with pytest.raises(GankitError, match="nested more than 8 deep"):
        worker_role({"type": "multi_worker"}, {"TF_CONFIG": "[" * 100_000 + "]" * 100_000})
