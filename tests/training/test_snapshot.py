"""The ``snapshot`` callback: the generator saved after given minutes (at the end of the
first compiled call past the mark) and after given steps (exactly there)."""

from __future__ import annotations

import json
import shutil
import time
import types

import numpy as np
import pytest

from gankit.errors import RecipeError
from gankit.interfaces import Callback
from gankit.plugin.manager import load_plugins
from gankit.recipe.validation import validate
from gankit.rundir.checkpoints import CheckpointStore
from gankit.rundir.run_dir import RunDir
from gankit.training import loop
from gankit.training.loop import Trainer

RECIPE = {
    "name": "snap",
    "generator": {"type": "dcgan", "latent_dim": 8, "base_filters": 4},
    "discriminator": {"type": "dcgan", "base_filters": 4},
    "dataset": {"type": "image_folder", "path": None, "scale": [-1.0, 1.0]},
    "ema": {"decay": 0.9},
    "callbacks": [{"type": "snapshot", "minutes": [5, 7.5], "steps": [3]}],
    "train": {"steps": 12, "batch_size": 4, "seed": 1, "sample_every": 100, "grid_every": 100,
              "grid_size": 2, "checkpoint_every": 100, "steps_per_call": 4},
}


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory, make_image_folder):
    return make_image_folder(tmp_path_factory.mktemp("snap") / "images", 8, 32)


def _recipe(images, **changes):
    raw = json.loads(json.dumps(RECIPE))
    raw["dataset"]["path"] = str(images)
    raw.update(changes)
    return validate(raw, load_plugins().registry)


class ClockJump(Callback):
    """Moves the shared fake clock forward at given steps (no real waiting)."""

    name = "clock_jump"

    def __init__(self, jumps: dict[int, float], clock) -> None:
        self.config = {}
        self.jumps, self.clock = jumps, clock

    def needs_boundary(self, step: int) -> bool:
        return False

    def on_step_end(self, step, logs):
        self.clock.offset += self.jumps.get(step, 0.0)


def _weights(path):
    import keras

    return keras.saving.load_model(path, compile=False).get_weights()


def test_minutes_and_steps(image_folder, tmp_path, monkeypatch):
    import gankit_training.snapshots as snapshots

    clock = types.SimpleNamespace(offset=0.0)
    fake = types.SimpleNamespace(time=time.time,
                                 perf_counter=lambda: time.perf_counter() + clock.offset)
    monkeypatch.setattr(loop, "time", fake)
    monkeypatch.setattr(snapshots, "time", fake)
    recipe = _recipe(image_folder)
    run = RunDir(tmp_path / "run").create()
    run.write_recipe(recipe.to_dict())
    # Calls of 4 steps, cut at step 3 by the step mark: 1-3, 4-7, 8-11, 12.
    # Minute 5 passes at step 5 (inside the call 4-7); minute 7.5 too at step 9.
    result = Trainer(recipe, run, progress=False,
                     callbacks=[ClockJump({5: 5.5 * 60, 9: 2.5 * 60}, clock)]).run()
    assert result.step == 12
    folder = run.path / "snapshots"
    assert sorted(p.name for p in folder.iterdir()) == ["minute_5", "minute_7_5", "step_3"]
    info = {p.name: json.loads((p / "snapshot.json").read_text()) for p in folder.iterdir()}
    assert info["step_3"]["step"] == 3 and info["step_3"]["step_mark"] == 3
    assert info["minute_5"]["step"] == 7 and info["minute_5"]["minute_mark"] == 5
    assert info["minute_5"]["seconds"] >= 300
    assert info["minute_7_5"]["step"] == 11 and info["minute_7_5"]["seconds"] >= 450
    for name in info:
        assert (folder / name / "generator.keras").is_file()
        assert (folder / name / "generator_ema.keras").is_file()
        assert not [p for p in (folder / name).iterdir() if p.name.startswith(".tmp")]
    # Every step was still logged, in order.
    rows = (run.path / "losses.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(1, 13))


def test_a_step_snapshot_is_the_generator_of_that_step(image_folder, tmp_path):
    recipe = _recipe(image_folder, callbacks=[{"type": "snapshot", "steps": [5, 12]}])
    run = RunDir(tmp_path / "run").create()
    run.write_recipe(recipe.to_dict())
    Trainer(recipe, run, progress=False).run()
    final, at_5 = run.path / "snapshots" / "step_12", run.path / "snapshots" / "step_5"
    for name in ("generator.keras", "generator_ema.keras"):
        expected = _weights(run.path / name)
        for a, b in zip(_weights(final / name), expected, strict=True):
            np.testing.assert_array_equal(a, b)
        assert any(not np.array_equal(a, b)
                   for a, b in zip(_weights(at_5 / name), expected, strict=True))

    # the step-5 snapshot is what a 5-step run ends with (same recipe, same seed)
    short = _recipe(image_folder, callbacks=[], train={**RECIPE["train"], "steps": 5})
    run5 = RunDir(tmp_path / "run5").create()
    run5.write_recipe(short.to_dict())
    Trainer(short, run5, progress=False).run()
    for a, b in zip(_weights(at_5 / "generator.keras"), _weights(run5.generator_file),
                    strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("config,expected", [
    ({}, "give the minutes or the steps"),
    ({"minutes": [5, 5]}, "a mark is listed twice"),
    ({"minutes": [1, 1.0000000001]}, "round to the same folder name"),
    ({"minutes": [0]}, "expected a number in (0.0, 10000000.0], got 0"),
    ({"minutes": "5"}, "expected a list of numbers"),
    ({"steps": [0]}, "expected an integer in [1, 1000000000], got 0"),
    ({"steps": [13]}, "step 13 is after the last step (train.steps=12)"),
    ({"steps": list(range(1, 1002))}, "at most 1000 marks"),
])
def test_bad_configurations_are_one_line_errors(image_folder, config, expected):
    with pytest.raises(RecipeError) as err:
        _recipe(image_folder, callbacks=[{"type": "snapshot", **config}])
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_a_snapshot_that_cannot_be_written_stops_with_one_line(image_folder, tmp_path):
    from gankit.errors import TrainingError

    recipe = _recipe(image_folder, callbacks=[{"type": "snapshot", "steps": [2]}])
    run = RunDir(tmp_path / "run").create()
    run.write_recipe(recipe.to_dict())
    (run.path / "snapshots").write_text("a file where the folder goes")
    with pytest.raises(TrainingError) as err:
        Trainer(recipe, run, progress=False).run()
    assert "could not write the snapshot" in str(err.value) and "\n" not in str(err.value)
    assert run.read_status()["status"] == "failed"


def test_a_resumed_session_keeps_its_minute_snapshots_apart(image_folder, tmp_path,
                                                            monkeypatch):
    """Hardening round three: a resume's minute_5 never replaces the first session's."""
    import gankit_training.snapshots as snapshots

    clock = types.SimpleNamespace(offset=0.0)
    fake = types.SimpleNamespace(time=time.time,
                                 perf_counter=lambda: time.perf_counter() + clock.offset)
    monkeypatch.setattr(loop, "time", fake)
    monkeypatch.setattr(snapshots, "time", fake)
    recipe = _recipe(image_folder, callbacks=[{"type": "snapshot", "minutes": [5]}])
    run = RunDir(tmp_path / "run").create()
    run.write_recipe(recipe.to_dict())
    Trainer(recipe, run, progress=False, callbacks=[ClockJump({5: 5.5 * 60}, clock)]).run()
    first = (run.path / "snapshots" / "minute_5" / "snapshot.json").read_bytes()
    longer = _recipe(image_folder, callbacks=[{"type": "snapshot", "minutes": [5]}],
                     train={**RECIPE["train"], "steps": 20})
    run.write_recipe(longer.to_dict())
    for _ in range(2):  # resumed twice from the same checkpoint: -2 for the second
        clock.offset = 0.0
        Trainer(longer, run, progress=False, resume=True,
                callbacks=[ClockJump({14: 5.5 * 60}, clock)]).run()
        shutil.rmtree(CheckpointStore(run.checkpoints).path(20))
    names = sorted(p.name for p in (run.path / "snapshots").iterdir())
    assert names[0] == "minute_5" and len(names) == 3, names
    assert names[1].startswith("minute_5-from_step_") and names[2].endswith("-2"), names
    assert (run.path / "snapshots" / "minute_5" / "snapshot.json").read_bytes() == first
