"""The application API (docs/api.md): ``gankit.train`` then ``gankit.resume`` drive a tiny run
in this process, and hand back a :class:`gankit.app.train.TrainResult`."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys

import pytest
import yaml
from tiny import tiny_recipe

import gankit
from gankit.app.train import TrainResult
from gankit.errors import GankitError, RecipeError

STEPS = 4

RECIPE = tiny_recipe("api", {
    "steps": STEPS, "batch_size": 4, "seed": 5, "sample_every": 2, "grid_every": 100,
    "grid_size": 2, "checkpoint_every": 2, "precision": "float32"})


@pytest.fixture(scope="module")
def images(tmp_path_factory, make_image_folder):
    return make_image_folder(tmp_path_factory.mktemp("api") / "images", 8, 24)


@pytest.fixture(scope="module")
def recipe(images):
    raw = json.loads(json.dumps(RECIPE))
    raw["dataset"]["path"] = str(images)
    return raw


@pytest.fixture(scope="module")
def trained(recipe, tmp_path_factory):
    """One run of STEPS steps, trained through ``gankit.train`` from a recipe mapping."""
    return gankit.train(recipe, out=tmp_path_factory.mktemp("run") / "run", quiet=True)


def test_importing_gankit_leaves_tensorflow_unloaded_and_names_the_api():
    code = ("import sys, gankit; print('tensorflow' in sys.modules); "
            "print(all(n in gankit.__all__ for n in ('train', 'resume', 'sample', 'evaluate')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "True"]


def test_train_returns_the_run_it_made(trained):
    assert isinstance(trained, TrainResult)
    assert dataclasses.is_dataclass(trained)
    with pytest.raises(dataclasses.FrozenInstanceError):
        trained.step = 0  # type: ignore[misc]
    assert (trained.status, trained.step, trained.start, trained.exit_code) == \
        ("completed", STEPS, 0, 0)
    assert {"d_loss", "g_loss"} <= set(trained.metrics)
    assert all(math.isfinite(v) for v in trained.metrics.values())
    assert trained.seconds > 0
    run = trained.run_dir
    assert trained.generator_file == run / "generator.keras" and trained.generator_file.is_file()
    assert trained.ema_file is None  # the recipe keeps no EMA
    status = json.loads((run / "run.json").read_text())
    assert status["status"] == "completed" and status["step"] == STEPS
    assert status["metrics"] == pytest.approx(dict(trained.metrics))
    assert (run / "report.html").is_file()  # written by the application, after the run
    rows = (run / "losses.csv").read_text().splitlines()
    assert len(rows) == 1 + STEPS


def test_resume_extends_the_run_and_then_has_nothing_left(trained, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained.run_dir, run)
    capsys.readouterr()
    longer = gankit.resume(run, overrides=[f"train.steps={STEPS + 2}"], quiet=True)
    assert (longer.status, longer.start, longer.step, longer.exit_code) == \
        ("completed", STEPS, STEPS + 2, 0)
    assert longer.run_dir == run
    assert yaml.safe_load((run / "recipe.yaml").read_text())["train"]["steps"] == STEPS + 2
    assert len((run / "losses.csv").read_text().splitlines()) == 1 + STEPS + 2
    err = capsys.readouterr().err
    assert f"resuming {run} at step {STEPS}" in err

    again = gankit.resume(run, quiet=True)
    assert (again.status, again.step, again.exit_code) == ("up to date", STEPS + 2, 0)
    assert "so nothing is left to train" in capsys.readouterr().err


def test_resume_refuses_a_changed_recipe_with_the_commands_message(trained):
    with pytest.raises(RecipeError, match=r"refusing to resume with a changed recipe "
                                          r"\(train.batch_size: 4 -> 2\); pass --force"):
        gankit.resume(trained.run_dir, overrides=["train.batch_size=2"], quiet=True)


def test_train_takes_a_recipe_file_and_refuses_a_taken_run_directory(trained, recipe,
                                                                       tmp_path):
    path = tmp_path / "api.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    with pytest.raises(GankitError) as error:
        gankit.train(path, out=trained.run_dir, quiet=True)
    assert error.value.exit_code == 2  # as `gankit run` exits
    assert str(trained.run_dir) in str(error.value)


def test_sample_draws_a_grid_from_the_trained_run(trained, tmp_path):
    out = gankit.sample(trained.run_dir, n=4, out=tmp_path / "grid.png")
    assert out == tmp_path / "grid.png" and out.stat().st_size > 0
