"""What only a GPU can show: ``precision: auto`` by compute capability, ``mixed_float16``
with loss scaling, XLA on the whole step, op determinism, ``mirrored`` on one GPU and exact
resume, each on a tiny recipe on the first GPU.

Every test here is skipped on a machine without a GPU (CI's). ``benchmarks/device_check.py``
runs this file on a GPU machine, with the speed table (docs/performance.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import yaml

from gankit.testing import run_recipe, write_image_folder
from gankit.training.precision import choose

GPUS = tf.config.list_physical_devices("GPU")
pytestmark = pytest.mark.skipif(
    not GPUS, reason="needs a GPU (TensorFlow sees none here); benchmarks/device_check.py "
                     "runs these on a GPU machine")

RECIPE = {
    "name": "gpu_tiny",
    "generator": {"type": "dcgan", "latent_dim": 16, "base_filters": 8},
    "discriminator": {"type": "dcgan", "base_filters": 8},
    "dataset": {"type": "image_folder", "path": None, "scale": [-1.0, 1.0]},
    "loss": "non_saturating",
    "ema": {"decay": 0.9},
    "train": {"steps": 6, "batch_size": 8, "seed": 3, "shuffle": True, "sample_every": 3,
              "grid_every": 6, "grid_size": 2, "checkpoint_every": 3, "keep_checkpoints": 3},
}


@pytest.fixture(scope="module")
def recipe_file(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("gpu")
    recipe = dict(RECIPE, dataset=dict(RECIPE["dataset"],
                                       path=str(write_image_folder(folder / "images", 32, 32, 32))))
    path = folder / "gpu_tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _weights(run_dir: Path) -> list[np.ndarray]:
    import keras

    return keras.models.load_model(run_dir / "generator.keras", compile=False).get_weights()


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_auto_chooses_by_compute_capability():
    details = tf.config.experimental.get_device_details(GPUS[0])
    cc = tuple(details.get("compute_capability") or (0, 0))
    expected = ("mixed_bfloat16" if cc >= (8, 0) else "mixed_float16" if cc >= (7, 0)
                else "float32")
    choice = choose("auto")
    assert choice.policy == expected, choice
    assert f"{cc[0]}.{cc[1]}" in choice.reason


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16", "float32", "auto"])
def test_each_precision_trains_on_the_gpu(recipe_file, tmp_path, precision):
    run = run_recipe(recipe_file, tmp_path / "run", steps=6,
                     overrides=[f"train.precision={precision}"])
    status = yaml.safe_load((run.run_dir / "run.json").read_text())
    assert status["status"] == "completed"
    assert status["precision"]["policy"] == (choose("auto").policy if precision == "auto"
                                             else precision)
    losses = np.genfromtxt(run.run_dir / "losses.csv", delimiter=",", names=True)
    assert np.all(np.isfinite(losses["d_loss"])) and np.all(np.isfinite(losses["g_loss"]))


def test_loss_scaling_is_checkpointed_under_float16(recipe_file, tmp_path):
    run = run_recipe(recipe_file, tmp_path / "run", steps=6,
                     overrides=["train.precision=mixed_float16"])
    from gankit.rundir.checkpoints import CheckpointStore

    reader = tf.train.load_checkpoint(CheckpointStore(run.run_dir / "checkpoints").load(6).prefix)
    names = [name for name in reader.get_variable_to_shape_map() if "loss_scale" in name]
    assert names, "no loss scale in the checkpoint"


@pytest.mark.parametrize("xla", ["on", "auto"])
def test_the_same_recipe_twice_gives_the_same_weights(recipe_file, tmp_path, xla):
    first = run_recipe(recipe_file, tmp_path / "a", steps=6, overrides=[f"train.xla={xla}"])
    second = run_recipe(recipe_file, tmp_path / "b", steps=6, overrides=[f"train.xla={xla}"])
    assert _same(_weights(first.run_dir), _weights(second.run_dir))


def test_mirrored_on_one_gpu_trains(recipe_file, tmp_path):
    run = run_recipe(recipe_file, tmp_path / "run", steps=6,
                     overrides=["train.distribute={type: mirrored, devices: [/gpu:0]}"])
    assert (run.run_dir / "generator.keras").is_file()


def test_resume_is_exact_on_the_gpu(recipe_file, tmp_path):
    from gankit.cli.main import main

    whole = run_recipe(recipe_file, tmp_path / "whole", steps=6)
    part = run_recipe(recipe_file, tmp_path / "part", steps=3)
    assert main(["resume", str(part.run_dir), "--quiet", "--set", "train.steps=6"]) == 0
    assert _same(_weights(whole.run_dir), _weights(part.run_dir))
