"""Defects a bad-input sweep found in the run directory's life cycle (issue 8): each test
reproduces one through the real command line."""

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from reliability_kit import (
    STEPS,
    checkpoint_steps,
    file_digests,
    finish,
    gankit,
    ok,
    start_gankit,
    wait_until,
)

from gankit.cli.main import main


def _one_error(result_or_err: str) -> str:
    lines = [line for line in result_or_err.splitlines() if line.startswith("gankit: error:")]
    assert len(lines) == 1 and "Traceback" not in result_or_err, result_or_err
    return lines[0]


def test_resume_force_with_a_recipe_that_does_not_fit_changes_nothing(copy_of_reference):
    """Item 1: the changed recipe.yaml used to be written before the checkpoint was tried."""
    run = copy_of_reference
    before = file_digests(run)
    result = gankit("resume", run, "--set", "generator.filters=16", "--force", "--quiet")
    assert result.returncode == 2, result.stderr
    error = _one_error(result.stderr)
    assert "does not fit the models this recipe builds" in error
    assert file_digests(run) == before
    ok(gankit("sample", run, "-n", 2, "--out", run.parent / "still-samples.png"))


def test_a_second_writer_of_a_run_directory_is_refused_naming_the_holder(recipe_file,
                                                                        tmp_path):
    """Item 2: `gankit resume R` while `gankit run ... --out R` still runs lost rows."""
    run = tmp_path / "run"
    proc = start_gankit("run", recipe_file, "--out", run, "--quiet",
                        env={"GANKIT_TEST_PAUSE_IN_CHECKPOINT_WRITE": "10"})
    try:
        wait_until(lambda: any(run.glob("checkpoints/.tmp-ckpt-00000010-*/state.index")), proc,
                   what="the write of checkpoint 10")
        second = gankit("resume", run, "--quiet")
        assert second.returncode == 2
        error = _one_error(second.stderr)
        assert f"is in use by process {proc.pid}" in error
        rows = (run / "losses.csv").read_text().splitlines()
        assert [int(r.split(",")[0]) for r in rows[1:]] == list(range(1, len(rows)))
    finally:
        proc.kill()
        finish(proc)
    # The kernel released the killed holder's lock: the run can be resumed now.
    ok(gankit("resume", run, "--quiet"))
    assert checkpoint_steps(run)[-1] == STEPS


def test_resuming_a_finished_run_changes_nothing(copy_of_reference):
    """Item 5: a no-op resume rewrote run.json and recorded a smaller train.steps."""
    run = copy_of_reference
    before = file_digests(run)
    for extra in ([], ["--set", "train.steps=2"]):
        result = ok(gankit("resume", run, *extra, "--quiet"))
        assert "nothing is left to train" in result.stderr
        assert file_digests(run) == before


def test_a_hand_edited_recipe_is_refused_on_resume_unless_forced(copy_of_reference):
    """Item 7: checkpoints store the recipe's digest; the stored recipe.yaml must match it."""
    run = copy_of_reference
    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    recipe["loss"]["label_noise"] = 0.2
    recipe["train"]["steps"] = STEPS + 2
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    before = file_digests(run)
    result = gankit("resume", run, "--quiet")
    assert result.returncode == 2
    assert "is not the recipe the newest checkpoint was trained with" in _one_error(result.stderr)
    assert file_digests(run) == before
    ok(gankit("resume", run, "--force", "--quiet"))
    assert checkpoint_steps(run)[-1] == STEPS + 2


def test_a_full_disk_while_saving_the_generator_leaves_no_temporary_and_resume_finishes(
        recipe_file, tmp_path, monkeypatch, capsys):
    """Item 6: a 16 MB temporary file stayed behind, the status stayed `running`, and the
    resume then failed with a traceback."""
    import keras

    real_save = keras.Model.save

    def disk_full(self, filepath, *args, **kwargs):
        Path(filepath).write_bytes(b"x" * 1000)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    run = tmp_path / "run"
    monkeypatch.setattr(keras.Model, "save", disk_full)
    assert main(["run", str(recipe_file), "--out", str(run), "--quiet",
                 "--set", "train.steps=4"]) == 1
    err = capsys.readouterr().err
    assert "could not save" in err and "No space left on device" in err
    assert not [p.name for p in run.iterdir() if p.name.startswith(".tmp")]
    assert json.loads((run / "run.json").read_text())["status"] == "failed"
    monkeypatch.setattr(keras.Model, "save", real_save)
    assert main(["resume", str(run), "--quiet"]) == 0
    assert (run / "generator.keras").is_file()
    assert json.loads((run / "run.json").read_text())["status"] == "completed"


@pytest.mark.parametrize("args, message", [
    (["-n", "100000"], "-n must be between 1 and 10,000, got 100000"),
    (["-n", "0"], "-n must be between 1 and 10,000, got 0"),
    (["--seed", "-1"], "--seed must be between 0 and 2**63 - 1, got -1"),
])
def test_sample_refuses_absurd_sizes_before_loading_tensorflow(reference_run, args, message,
                                                               no_tensorflow):
    """Items 13 and 16: -n 1e11 tried to allocate 23 TiB, after TensorFlow had loaded."""
    result = gankit("sample", reference_run, *args, env=no_tensorflow)
    assert result.returncode == 2
    assert message in _one_error(result.stderr)


def test_a_truncated_saved_generator_is_reported_as_damaged(copy_of_reference):
    """Item 15: a truncated generator.keras was reported as "File not found"."""
    run = copy_of_reference
    shutil.rmtree(run / "checkpoints")
    data = (run / "generator.keras").read_bytes()
    (run / "generator.keras").write_bytes(data[:len(data) // 2])
    result = gankit("sample", run, "-n", 2)
    assert result.returncode == 2
    assert "generator.keras: the file is damaged or truncated" in _one_error(result.stderr)


def test_run_json_that_is_not_an_object_is_not_a_traceback(copy_of_reference):
    """Item 14: valid JSON that is not an object crashed resume."""
    run = copy_of_reference
    (run / "run.json").write_text("[]")
    result = gankit("resume", run, "--set", f"train.steps={STEPS + 2}", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads((run / "run.json").read_text())["status"] == "completed"


@pytest.mark.parametrize("args", [["plugins"], ["plugins", "--json"], ["plugins", "--markdown"],
                                  ["validate", "RECIPE", "--print"]])
def test_a_closed_pipe_ends_quietly(args, recipe_file):
    """Item 14: `gankit plugins | head -1` printed a BrokenPipeError traceback."""
    args = [str(recipe_file) if a == "RECIPE" else a for a in args]
    proc = subprocess.Popen([sys.executable, "-m", "gankit", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.read(1)
    proc.stdout.close()  # the reader goes away, like `| head -c 1`
    _, err = proc.communicate(timeout=60)
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err.decode()
    assert proc.returncode in (0, 141), err.decode()


def test_run_checks_the_output_and_data_before_loading_tensorflow(recipe_file, tmp_path,
                                                                  no_tensorflow):
    """Item 16: `gankit run` loaded TensorFlow (3 s) before checking --out and the data."""
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "x").write_text("")
    result = gankit("run", recipe_file, "--out", taken, env=no_tensorflow)
    assert result.returncode == 2 and "already exists and is not empty" in result.stderr
    result = gankit("run", recipe_file, "--out", tmp_path / "new", "--set",
                    f"dataset.path={tmp_path / 'missing'}", env=no_tensorflow)
    assert result.returncode == 2
    assert "missing" in _one_error(result.stderr)
    assert not (tmp_path / "new").exists()


@pytest.fixture
def no_tensorflow(tmp_path_factory):
    """An environment in which importing tensorflow or keras fails loudly."""
    folder = tmp_path_factory.mktemp("no_tf")
    for name in ("tensorflow", "keras"):
        (folder / name).mkdir()
        (folder / name / "__init__.py").write_text(
            f"raise ImportError('{name} was imported')\n")
    path = os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {"PYTHONPATH": path}
