"""Hardening, round three: the run directory's files survive every interruption and every resume.

A best/ whose replacement was killed between its two renames is restored; best.json that
records no finite value does not freeze best/; a deleted .lock lets no second writer in;
a failed forced resume leaves the recipe the checkpoints were trained with; deleted folders
are made again; output paths never land on a run's own files; deep JSON is no traceback;
what the arguments decide is answered before TensorFlow loads.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from reliability_kit import STEPS, gankit, start_gankit, wait_until

from gankit.evaluation.callback import _read_best
from gankit.rundir.lock import RunDirLock
from gankit.rundir.run_dir import RunDir, RunDirWarning


def _no_tensorflow(tmp_path: Path) -> dict:
    """An environment in which importing TensorFlow exits with 99: what must answer before
    TensorFlow loads does."""
    poison = tmp_path / "no-tensorflow" / "tensorflow"
    poison.mkdir(parents=True)
    (poison / "__init__.py").write_text("import os, sys\nsys.stderr.write('TensorFlow "
                                        "imported\\n')\nos._exit(99)\n")
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(poison.parent),
                                                        os.environ.get("PYTHONPATH")]))}


def _one_line_error(result) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


# --- best/ ------------------------------------------------------------------------------

def _best(folder: Path, step: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "best.json").write_text(json.dumps({"step": step, "name": "fid", "value": 5.0}))
    (folder / "generator.keras").write_bytes(b"model of step %d" % step)
    return folder


def test_a_best_stranded_between_its_two_renames_is_restored(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    _best(run.path / ".tmp-best-old-4242", 30)  # killed after best/ was moved aside
    _best(run.path / ".tmp-best-4242", 40)  # ... and the new one not yet renamed
    with pytest.warns(RunDirWarning, match="previous best/ was restored"):
        run.clean_leftovers()
    assert json.loads((run.best_dir / "best.json").read_text())["step"] == 30
    assert sorted(p.name for p in run.path.iterdir()) == ["best"]


def test_a_leftover_beside_a_complete_best_is_removed_silently(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    _best(run.best_dir, 40)  # killed after both renames, before the old one was deleted
    _best(run.path / ".tmp-best-old-4242", 30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run.clean_leftovers()
    assert json.loads((run.best_dir / "best.json").read_text())["step"] == 40
    assert sorted(p.name for p in run.path.iterdir()) == ["best"]


@pytest.mark.parametrize("value", ["NaN", "Infinity", '"abc"', "null", "true", "[1]"])
def test_best_json_without_a_finite_value_lets_the_next_value_become_best(tmp_path, value):
    folder = tmp_path / "best"
    folder.mkdir()
    (folder / "best.json").write_text(f'{{"step": 3, "name": "fid", "value": {value}}}')
    with pytest.warns(RunDirWarning, match="the next measured value will replace best/"):
        assert _read_best(folder) is None


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, "{", ""])
def test_a_damaged_best_json_is_a_warning(tmp_path, text):
    folder = tmp_path / "best"
    folder.mkdir()
    (folder / "best.json").write_text(text)
    with pytest.warns(RunDirWarning):
        assert _read_best(folder) is None


# --- the lock ---------------------------------------------------------------------------

def test_deleting_the_lock_file_lets_no_second_writer_in(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    held = RunDirLock(folder).acquire()
    try:
        (folder / ".lock").unlink()
        code = ("import sys\nfrom gankit.rundir.lock import RunDirLock\nfrom gankit.errors "
                "import GankitError\ntry:\n    RunDirLock(sys.argv[1]).acquire()\n"
                "except GankitError as e:\n    print(e); sys.exit(2)\n")
        second = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True,
                                text=True, timeout=60)
        assert second.returncode == 2, second.stdout
        assert "in use by another process (its .lock file was deleted" in second.stdout
    finally:
        held.release()
    again = RunDirLock(folder).acquire()  # released: free again
    again.release()


def test_a_resume_whose_lock_file_is_deleted_keeps_its_loss_log(copy_of_reference):
    run = copy_of_reference
    first = start_gankit("resume", run, "--set", f"train.steps={STEPS + 400}", "--quiet")
    try:
        wait_until(lambda: (run / ".lock").stat().st_size > 0 and
                   len((run / "losses.csv").read_text().splitlines()) > STEPS + 3, first,
                   what="the resume trains")
        (run / ".lock").unlink()
        second = gankit("resume", run, "--set", f"train.steps={STEPS + 400}", "--quiet")
        assert second.returncode == 2 and "is in use by" in second.stderr, second.stderr
    finally:
        first.kill()
        first.wait()


# --- resume -----------------------------------------------------------------------------

def test_a_failed_forced_resume_leaves_the_recipe_the_checkpoints_were_trained_with(
        copy_of_reference):
    run = copy_of_reference
    before = (run / "recipe.yaml").read_bytes()
    failed = gankit("resume", run, "--set", f"train.steps={STEPS + 10}",
                    "--set", "optimizers.discriminator={type: SGD, learning_rate: 1.0e+30}",
                    "--force", "--quiet")
    assert failed.returncode == 1, failed.stderr
    assert (run / "recipe.yaml").read_bytes() == before
    again = gankit("resume", run, "--set", f"train.steps={STEPS + 2}", "--quiet")
    assert again.returncode == 0, again.stderr


def test_resume_makes_deleted_folders_again(copy_of_reference):
    run = copy_of_reference
    shutil.rmtree(run / "samples")
    shutil.rmtree(run / "tensorboard", ignore_errors=True)
    result = gankit("resume", run, "--set", f"train.steps={STEPS + 4}", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "samples was missing; made it again" in result.stderr
    assert any((run / "samples").iterdir())


def test_run_json_nested_100000_deep_is_moved_aside_not_a_traceback(copy_of_reference):
    run = copy_of_reference
    (run / "run.json").write_text("[" * 100_000 + "]" * 100_000)
    result = gankit("resume", run, "--set", f"train.steps={STEPS + 2}", "--quiet")
    assert "Traceback" not in result.stderr and "RecursionError" not in result.stderr
    assert result.returncode == 0, result.stderr
    assert list(run.glob("run.json.bak-*"))
    assert json.loads((run / "run.json").read_text())["status"] == "completed"


# --- before TensorFlow ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["run.json", "recipe.yaml", "losses.csv",
                                  "samples/grid_000010.png", "checkpoints/x.png"])
def test_sample_out_never_overwrites_a_run_file(reference_run, tmp_path, name):
    before = {p: p.stat().st_mtime_ns for p in reference_run.rglob("*")}
    result = gankit("sample", reference_run, "--out", reference_run / name,
                    env=_no_tensorflow(tmp_path))
    assert "gankit does not overwrite a run's files" in _one_line_error(result)
    assert {p: p.stat().st_mtime_ns for p in reference_run.rglob("*")} == before


@pytest.mark.parametrize("step", ["-1", "0", "999999999999"])
def test_sample_checkpoint_that_is_not_there_is_answered_before_tensorflow(
        reference_run, tmp_path, step):
    result = gankit("sample", reference_run, "--checkpoint", step, "--out",
                    tmp_path / "x.png", env=_no_tensorflow(tmp_path))
    assert f"no checkpoint of step {step}; available steps:" in _one_line_error(result)


def test_sample_best_without_the_ema_file_names_what_is_missing(full_reference_runs,
                                                                tmp_path):
    run = Path(shutil.copytree(full_reference_runs[0], tmp_path / "run"))
    (run / "best").mkdir()
    shutil.copy(run / "generator.keras", run / "best" / "generator.keras")  # no EMA copy
    result = gankit("sample", run, "--best", "--out", tmp_path / "x.png",
                    env=_no_tensorflow(tmp_path))
    message = _one_line_error(result)
    assert "best has no generator_ema.keras; it holds generator.keras" in message
    assert "--no-ema" in message


def test_a_stranded_best_is_restored_by_sample_best(copy_of_reference, tmp_path):
    run = copy_of_reference
    (run / ".tmp-best-old-99999").mkdir()
    shutil.copy(run / "generator.keras", run / ".tmp-best-old-99999" / "generator.keras")
    result = gankit("sample", run, "--best", "-n", "4", "--out", tmp_path / "x.png")
    assert result.returncode == 0, result.stderr
    assert "previous best/ was restored" in result.stderr
    assert (run / "best" / "generator.keras").is_file()


def test_a_read_only_place_for_the_default_out_is_answered_before_tensorflow(
        recipe_file, tmp_path):
    here = tmp_path / "ro"
    here.mkdir()
    if subprocess.run(["chattr", "+i", str(here)], capture_output=True).returncode != 0:
        if os.geteuid() == 0:
            pytest.skip("needs chattr (root writes in read-only folders)")
        here.chmod(0o555)
    try:
        started = time.monotonic()
        result = gankit("run", recipe_file, cwd=here, env=_no_tensorflow(tmp_path))
        message = _one_line_error(result)
        assert "cannot create the run directory runs/" in message
        assert "no permission to write in" in message or "read-only" in message
        assert time.monotonic() - started < 60
    finally:
        subprocess.run(["chattr", "-i", str(here)], capture_output=True)
        here.chmod(0o755)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_place_that_refuses_even_root_is_answered_before_tensorflow(recipe_file, tmp_path):
    # os.access says yes to root everywhere; /proc refuses even root to make a folder.
    result = gankit("run", recipe_file, "--out", "/proc/gankit-run",
                    env=_no_tensorflow(tmp_path))
    assert "cannot create the run directory /proc/gankit-run" in _one_line_error(result)


def test_a_folder_of_junk_is_answered_before_tensorflow(recipe_file, tmp_path):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.png").write_bytes(b"")  # named as an image, not one
    (junk / "b.png").write_text("not an image either")
    result = gankit("run", recipe_file, "--set", f"dataset.path={junk}", "--out",
                    str(tmp_path / "run"), env=_no_tensorflow(tmp_path))
    assert "a.png is empty (0 bytes), not a PNG or JPEG image" in _one_line_error(result)
    assert not (tmp_path / "run").exists()
