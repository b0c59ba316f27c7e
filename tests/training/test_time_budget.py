"""``train.max_minutes``: a run stops cleanly at the first call boundary after its time
budget (checkpoint, generator, report, status), says how to continue, exits 0, and
``gankit resume`` continues it (with a fresh budget, or none)."""

from __future__ import annotations

import json
import time
import types

import pytest
import yaml
from tiny import tiny_recipe

from gankit.app.report import write_report_after_run
from gankit.cli.main import main
from gankit.errors import RecipeError
from gankit.interfaces import Callback
from gankit.plugin.manager import load_plugins
from gankit.recipe.validation import validate
from gankit.rundir.run_dir import RunDir
from gankit.training import loop
from gankit.training.loop import Trainer

RECIPE = tiny_recipe("budget", {
    "steps": 12, "batch_size": 4, "seed": 3, "sample_every": 3, "grid_every": 100,
    "grid_size": 2, "checkpoint_every": 100, "steps_per_call": 4, "max_minutes": 10.0},
    ema={"decay": 0.9})


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory, make_image_folder):
    return make_image_folder(tmp_path_factory.mktemp("budget") / "images", 8, 24)


def _raw(images, **train):
    raw = json.loads(json.dumps(RECIPE))
    raw["dataset"]["path"] = str(images)
    raw["train"].update(train)
    return raw


class ClockJump(Callback):
    """Moves the trainer's clock past the budget at one step (no real waiting)."""

    name = "clock_jump"

    def __init__(self, at: int, seconds: float, clock) -> None:
        self.config = {}
        self.at, self.seconds, self.clock = at, seconds, clock

    def needs_boundary(self, step: int) -> bool:
        return False

    def on_step_end(self, step, logs):
        if step == self.at:
            self.clock.offset += self.seconds


def test_the_budget_stops_at_the_end_of_the_call_it_runs_out_in(image_folder, tmp_path,
                                                                monkeypatch):
    clock = types.SimpleNamespace(offset=0.0)
    fake_time = types.SimpleNamespace(time=time.time,
                                      perf_counter=lambda: time.perf_counter() + clock.offset)
    monkeypatch.setattr(loop, "time", fake_time)
    recipe = validate(_raw(image_folder), load_plugins().registry)
    run = RunDir(tmp_path / "run").create()
    run.write_recipe(recipe.to_dict())
    # Calls of 4 steps: the budget (10 min) runs out at step 6, inside the call 5-8.
    result = Trainer(recipe, run, progress=False,
                     callbacks=[ClockJump(6, 11 * 60.0, clock)]).run()
    write_report_after_run(run.path)  # what gankit.train does after the trainer returns
    assert result.stopped == "time budget" and result.step == 8
    status = run.read_status()
    assert status["status"] == "stopped" and status["step"] == 8
    assert "train.max_minutes=10 used up at step 8 of 12" in status["stop_reason"]
    assert 11 * 60 <= status["budget_used_seconds"] < 12 * 60
    assert sorted(p.name for p in run.checkpoints.glob("ckpt-*")) == ["ckpt-00000008"]
    assert run.generator_file.is_file() and run.generator_ema_file.is_file()
    report = (run.path / "report.html").read_text()
    assert "Stopped: time budget: train.max_minutes=10 used up at step 8 of 12" in report
    samples = {p.name for p in run.samples.iterdir()}
    # The stop step is the session's last: its grid and sample pair are written too.
    assert {"grid_000000.png", "grid_000008.png", "generated_000006.png",
            "generated_000008.png", "real_000008.png"} <= samples
    assert "grid_000006.png" not in samples
    rows = (run.path / "losses.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(1, 9))


def test_the_cli_stops_at_the_budget_exits_0_and_resume_continues(image_folder, tmp_path,
                                                                  capsys):
    recipe = tmp_path / "budget.yaml"
    # 0.6 s: compiling the first call alone uses it up.
    recipe.write_text(yaml.safe_dump(_raw(image_folder, steps=10_000, max_minutes=0.01,
                                          steps_per_call="auto")))
    run = tmp_path / "run"
    assert main(["run", str(recipe), "--out", str(run), "--quiet"]) == 0
    out = capsys.readouterr()
    status = json.loads((run / "run.json").read_text())
    step = status["step"]
    assert status["status"] == "stopped" and 1 <= step < 10_000
    assert status["budget_used_seconds"] >= 0.6
    lines = [line for line in out.err.splitlines() if "time budget" in line]
    assert len(lines) == 1
    assert (f"stopped at the time budget (train.max_minutes=0.01) after step {step} of 10000"
            in lines[0])
    assert f"gankit resume {run}" in lines[0]
    assert f"Stopped at step {step} in" in out.out
    assert (run / "generator.keras").is_file() and (run / "report.html").is_file()
    assert (run / "checkpoints" / f"ckpt-{step:08d}").is_dir()

    # Neither train.steps, train.max_minutes nor train.steps_per_call needs --force.
    assert main(["resume", str(run), "--set", f"train.steps={step + 3}",
                 "--set", "train.max_minutes=null", "--set", "train.steps_per_call=2",
                 "--quiet"]) == 0
    status = json.loads((run / "run.json").read_text())
    assert status["status"] == "completed" and status["step"] == step + 3
    rows = (run / "losses.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(1, step + 4))


@pytest.mark.parametrize("key,value,expected", [
    ("max_minutes", 0, "expected a number in (0.0, 10000000.0] (or null), got 0"),
    ("max_minutes", -5, "got -5"),
    ("max_minutes", "15m", "got the string '15m'"),
    ("max_minutes", ".inf", "(finite)"),
    ("max_minutes", True, "got the boolean true"),
    ("steps_per_call", 0, "expected an integer in [1, 1000] or 'auto', got 0"),
    ("steps_per_call", 10**9, "got 1000000000"),
    ("steps_per_call", "Auto", "got the string 'Auto' (did you mean 'auto'?)"),
    ("steps_per_call", 2.5, "got float 2.5"),
    ("steps_per_call", None, "got null"),
])
def test_bad_values_are_one_line_recipe_errors(image_folder, key, value, expected):
    raw = _raw(image_folder)
    raw["train"][key] = float("inf") if value == ".inf" else value
    with pytest.raises(RecipeError) as err:
        validate(raw, load_plugins().registry)
    assert f"train.{key}" in str(err.value) and expected in str(err.value)
    assert "\n" not in str(err.value)
