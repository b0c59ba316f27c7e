"""The run directory on its own: one writer at a time, whole files or the old ones, nothing
damaged thrown away, and one-line errors for every bad --out (no TensorFlow, except one test
that saves a real Keras model)."""

import errno
import json
import os
import stat
import subprocess
import sys
import textwrap
import warnings

import pytest

from gankit.errors import GankitError, TrainingError
from gankit.rundir.errors import CorruptRunFileError, RunDirWarning
from gankit.rundir.losses import LossLog
from gankit.rundir.run_dir import RunDir
from gankit.util.atomic import write_text as write_text_atomic

ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False


def _one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text and "Traceback" not in text, text
    return text


# --- the lock ---------------------------------------------------------------------------

_HOLDER = textwrap.dedent("""
    import sys, time
    from gankit.rundir.run_dir import RunDir
    held = RunDir(sys.argv[1]).lock(command="gankit run tiny.yaml --out " + sys.argv[1])
    print("locked", flush=True)
    time.sleep(120)
""")


def _start_holder(run):
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(run)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline()
    if line.strip() != "locked":
        proc.kill()
        pytest.fail(f"the holder did not take the lock: {line}{proc.communicate()[0]}")
    return proc


def test_a_second_process_is_refused_naming_the_holder_and_a_kill_frees_the_lock(tmp_path):
    run = RunDir(tmp_path / "run").create()
    holder = _start_holder(run.path)
    try:
        with pytest.raises(GankitError) as err:
            run.lock()
        message = _one_line(err)
        assert err.value.exit_code == 2
        assert message == (f"{run.path} is in use by process {holder.pid} (gankit run "
                           f"tiny.yaml --out {run.path}); wait for it to finish or stop it")
        # the refused attempt did not disturb the holder's record
        assert json.loads(run.lock_file.read_text())["pid"] == holder.pid
    finally:
        holder.kill()  # kill -9: no chance to clean up
        holder.wait()
    assert json.loads(run.lock_file.read_text())["pid"] == holder.pid  # a stale file remains
    with run.lock() as held:
        assert held.held
        info = json.loads(run.lock_file.read_text())
        assert info["pid"] == os.getpid() and info["host"] and info["command"]
    assert not held.held


def test_a_stale_lock_file_of_a_dead_process_does_not_block(tmp_path):
    run = RunDir(tmp_path / "run").create()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    run.lock_file.write_text(json.dumps({"pid": int(dead.stdout), "host": "h",
                                         "command": "gankit run x"}))
    held = run.lock(command="gankit resume run")
    assert json.loads(run.lock_file.read_text())["command"] == "gankit resume run"
    held.release()


def test_the_lock_excludes_a_second_holder_in_the_same_process_until_released(tmp_path):
    run = RunDir(tmp_path / "run").create()
    with run.lock():
        with pytest.raises(GankitError, match=rf"in use by process {os.getpid()} \(this one\)"):
            RunDir(run.path).lock()
    RunDir(run.path).lock().release()


def test_a_directory_holding_only_a_lock_file_counts_as_new(tmp_path):
    run = RunDir(tmp_path / "run").create()
    run.lock().release()
    assert [p.name for p in run.path.iterdir() if p.is_file()] == [".lock"]
    for folder in (run.samples, run.checkpoints):
        folder.rmdir()
    run.ensure_new()
    assert run.create() is run


def test_create_locked_refuses_a_directory_another_process_is_creating(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    holder = _start_holder(run.path)  # it has the lock but has not written anything yet
    try:
        with pytest.raises(GankitError, match=f"in use by process {holder.pid} "):
            run.create_locked()
    finally:
        holder.kill()
        holder.wait()
    with run.create_locked(command="gankit run x") as held:
        assert held.held and run.samples.is_dir() and run.checkpoints.is_dir()


def test_locking_a_missing_directory_is_one_line(tmp_path):
    with pytest.raises(GankitError) as err:
        RunDir(tmp_path / "nowhere").lock()
    assert "there is no such directory" in _one_line(err)


# --- losses.csv on resume ---------------------------------------------------------------

def _csv(rows, header="step,d_loss,g_loss"):
    return "".join(line + "\r\n" for line in [header, *rows])


_ROWS = [f"{s},0.{s},1.{s}" for s in range(1, 7)]


def _backups(folder, name="losses.csv"):
    return sorted(p for p in folder.iterdir() if p.name.startswith(f"{name}.bak-"))


def test_resume_keeps_the_rows_up_to_its_step_and_drops_the_later_ones(tmp_path):
    path = tmp_path / "losses.csv"
    path.write_text(_csv(_ROWS[:3] + [""] + _ROWS[3:]), newline="")  # a blank line too
    log = LossLog(path, ["d_loss", "g_loss"], resume_after=4)
    log.write(5, {"d_loss": 0.5, "g_loss": 1.5})
    log.close()
    assert path.read_bytes().decode() == _csv(_ROWS[:4] + ["5,0.5,1.5"])
    assert _backups(tmp_path) == []


def test_a_byte_order_mark_from_a_spreadsheet_keeps_every_earlier_row(tmp_path):
    path = tmp_path / "losses.csv"
    path.write_bytes(b"\xef\xbb\xbf" + _csv(_ROWS).encode())
    LossLog(path, ["d_loss", "g_loss"], resume_after=3).close()
    assert path.read_bytes().decode() == _csv(_ROWS[:3])


def test_a_row_cut_short_by_a_kill_after_the_resume_step_is_dropped(tmp_path):
    path = tmp_path / "losses.csv"
    path.write_text(_csv(_ROWS[:4]) + "5,0.", newline="")  # the write of step 5 was killed
    LossLog(path, ["d_loss", "g_loss"], resume_after=4).close()
    assert path.read_bytes().decode() == _csv(_ROWS[:4])


_DAMAGED = {
    "not-utf8": (b"step,d_loss,g_loss\r\n1,0.1,1.1\r\n2,0.2,\xff\xfe\r\n",
                 "line 3 holds bytes that are not UTF-8 (byte 37)"),
    "fewer-columns": (_csv(_ROWS, header="step,d_loss").encode(),
                      "has the columns 'step,d_loss' where this run writes "
                      "'step,d_loss,g_loss'"),
    "renamed-column": (_csv(_ROWS, header="Step,d_loss,g_loss").encode(),
                       "has the columns 'Step,d_loss,g_loss'"),
    "bad-step": (_csv(["1,0.1,1.1", "two,0.2,1.2", "3,0.3,1.3"]).encode(),
                 "line 3: the step 'two' is not a whole number"),
    "short-row": (_csv(["1,0.1,1.1", "2,0.2", "3,0.3,1.3"]).encode(),
                  "line 3: 2 cells where the header has 3"),
    "bad-value": (_csv(["1,0.1,1.1", "2,0.2,oops", "3,0.3,1.3"]).encode(),
                  "line 3: g_loss 'oops' is not a number"),
    "cut-short-before-the-resume-step": (_csv(["1,0.1,1.1", "2,0."]).rstrip("\r\n").encode(),
                                         "line 3: 2 cells where the header has 3"),
}


@pytest.mark.parametrize("content, problem", list(_DAMAGED.values()), ids=list(_DAMAGED))
def test_a_damaged_losses_csv_is_kept_and_the_resume_stops_saying_where(tmp_path, content,
                                                                       problem):
    path = tmp_path / "losses.csv"
    path.write_bytes(content)
    with pytest.raises(CorruptRunFileError) as err:
        LossLog(path, ["d_loss", "g_loss"], resume_after=4)
    message = _one_line(err)
    [backup] = _backups(tmp_path)
    assert backup.read_bytes() == content  # nothing lost
    assert not path.exists()
    assert message.startswith(f"{path} {problem}")
    assert f"moved to {backup}" in message
    assert isinstance(err.value, GankitError) and err.value.exit_code == 2


def test_a_second_damaged_file_never_overwrites_the_first_backup(tmp_path):
    path = tmp_path / "losses.csv"
    for content in (b"step,x\r\n", b"step,y\r\n"):
        path.write_bytes(content)
        with pytest.raises(CorruptRunFileError):
            LossLog(path, ["d_loss", "g_loss"], resume_after=1)
    assert sorted(p.read_bytes() for p in _backups(tmp_path)) == [b"step,x\r\n", b"step,y\r\n"]


def test_columns_given_up_front_may_be_filled_later_and_survive_a_resume(tmp_path):
    path = tmp_path / "losses.csv"
    with LossLog(path, ["d_loss", "g_loss", "gp"]) as log:
        log.write(1, {"d_loss": 0.5, "g_loss": 1.0})
        log.write(2, {"d_loss": 0.25, "g_loss": 2.0, "gp": 10.0})
    assert path.read_bytes().decode() == _csv(["1,0.5,1,", "2,0.25,2,10"],
                                              header="step,d_loss,g_loss,gp")
    LossLog(path, ["d_loss", "g_loss", "gp"], resume_after=2).close()
    assert path.read_bytes().decode().count("\n") == 3


def test_a_name_first_logged_later_becomes_a_column_and_survives_a_resume(tmp_path):
    # A callback that logs a value on some steps only, without declaring it up front.
    path = tmp_path / "losses.csv"
    with LossLog(path, ["d_loss", "g_loss"]) as log:
        log.write(1, {"d_loss": 0.5, "g_loss": 1.0})
        log.write(2, {"d_loss": 0.25, "g_loss": 2.0, "d_acc": 0.75})
        log.write(3, {"d_loss": 0.5, "g_loss": 1.0})
    assert path.read_bytes().decode() == _csv(["1,0.5,1,", "2,0.25,2,0.75", "3,0.5,1,"],
                                              header="step,d_loss,g_loss,d_acc")
    # The next session declares only the first columns: the added one is kept.
    with LossLog(path, ["d_loss", "g_loss"], resume_after=2) as log:
        assert log.columns == ["step", "d_loss", "g_loss", "d_acc"]
        log.write(3, {"d_loss": 0.125, "g_loss": 1.0, "d_acc": 0.5})
    assert path.read_bytes().decode() == _csv(["1,0.5,1,", "2,0.25,2,0.75", "3,0.125,1,0.5"],
                                              header="step,d_loss,g_loss,d_acc")
    # A header that lacks a column this session writes is still refused.
    with pytest.raises(CorruptRunFileError, match="has the columns"):
        LossLog(path, ["d_loss", "g_loss", "gp"], resume_after=2)


# --- run.json ---------------------------------------------------------------------------

@pytest.mark.parametrize("content, kind", [(b"[]", "a JSON list"), (b"3", "a JSON number"),
                                           (b'"done"', "a JSON string"), (b"null", "a JSON null"),
                                           (b'{"step": 4', "not JSON"),
                                           (b'{"step": "\xff"}', "is not UTF-8")])
def test_a_run_json_that_is_not_an_object_is_refused_and_never_destroyed(tmp_path, content,
                                                                         kind):
    run = RunDir(tmp_path / "run").create()
    run.status_file.write_bytes(content)
    with pytest.raises(CorruptRunFileError) as err:
        run.read_status()
    assert _one_line(err).startswith(f"{run.status_file} is not a gankit status file (")
    assert kind in str(err.value)
    with pytest.warns(RunDirWarning, match="moved it to .*run.json.bak-"):
        run.write_status(step=4, status="running")
    [backup] = _backups(run.path, "run.json")
    assert backup.read_bytes() == content
    status = run.read_status()
    assert status["step"] == 4 and status["corrupt_status_backup"] == str(backup)


def test_run_json_round_trips_and_a_missing_one_reads_as_empty(tmp_path):
    run = RunDir(tmp_path / "run").create()
    assert run.read_status() == {}
    run.status_file.write_bytes(b'\xef\xbb\xbf{"step": 2}')  # saved by an editor
    run.write_status(status="running")
    assert run.read_status()["step"] == 2 and run.read_status()["status"] == "running"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run.write_status(step=3)
    assert _backups(run.path, "run.json") == []


# --- --out ------------------------------------------------------------------------------

def test_out_pointing_at_a_file_says_it_is_a_file(tmp_path):
    afile = tmp_path / "afile.txt"
    afile.write_text("notes")
    for call in (RunDir(afile).ensure_new, RunDir(afile).create):
        with pytest.raises(GankitError) as err:
            call()
        assert _one_line(err) == (f"{afile} is a file, not a directory; choose another --out "
                                  f"(a new or empty folder)")
    assert afile.read_text() == "notes"


def test_out_inside_a_file_names_that_file(tmp_path):
    afile = tmp_path / "afile.txt"
    afile.write_text("notes")
    with pytest.raises(GankitError) as err:
        RunDir(afile / "sub" / "run").create()
    assert _one_line(err) == (f"cannot create the run directory {afile / 'sub' / 'run'}: "
                              f"{afile} is a file, not a directory; choose another with --out")


def test_out_with_a_name_too_long_is_one_line(tmp_path):
    run = RunDir(tmp_path / ("x" * 300) / "run")
    for call in (run.ensure_new, run.create, run.create_locked):
        with pytest.raises(GankitError) as err:
            call()
        message = _one_line(err)
        assert message.startswith("cannot create the run directory ")
        assert "the path is too long for the file system" in message
        assert len(message) < 300


def test_out_in_a_directory_without_write_permission_names_it(tmp_path, monkeypatch):
    def no_permission(path, mode=0o777, *, dir_fd=None):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(os, "mkdir", no_permission)  # root ignores chmod; the OS error is the same
    with pytest.raises(GankitError) as err:
        RunDir(tmp_path / "runs" / "x").create()
    assert _one_line(err) == (f"cannot create the run directory {tmp_path / 'runs' / 'x'}: no "
                              f"permission to write in {tmp_path}; choose another with --out")


@pytest.mark.skipif(ROOT, reason="root writes in read-only directories")
def test_out_in_a_read_only_directory_for_real(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(GankitError, match=f"no permission to write in {locked}"):
            RunDir(locked / "run").create()
    finally:
        locked.chmod(stat.S_IRWXU)


def test_a_non_empty_directory_that_is_no_run_does_not_suggest_resume(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.png").write_bytes(b"png")
    with pytest.raises(GankitError) as err:
        RunDir(tmp_path / "photos").ensure_new()
    assert "already exists and is not empty" in _one_line(err)
    assert "gankit resume" not in str(err.value)
    run = RunDir(tmp_path / "run").create()
    run.write_recipe({"name": "x"})
    with pytest.raises(GankitError, match=f"continue that run with: gankit resume {run.path}"):
        run.ensure_new()


def test_a_broken_symbolic_link_is_one_line(tmp_path):
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    with pytest.raises(GankitError) as err:
        RunDir(tmp_path / "link").create()
    assert "is a symbolic link to a missing" in _one_line(err)


# --- leftovers and models ---------------------------------------------------------------

def test_clean_leftovers_removes_every_temporary_name_and_nothing_else(tmp_path):
    run = RunDir(tmp_path / "run").create()
    leftovers = [run.path / ".tmp123-generator.keras", run.path / ".tmp123-generator_ema.keras",
                 run.path / ".recipe.yaml.tmp77", run.path / ".losses.csv.tmp77",
                 run.path / "tmpa1b_c9zz", run.path / ".write-test",
                 run.samples / ".grid_000004.png.tmp9"]
    for p in leftovers:
        p.write_bytes(b"half")
    unzipped = run.path / ".tmp124-generator.keras"  # Keras zipped=False saves a folder
    unzipped.mkdir()
    (unzipped / "config.json").write_text("{}")
    keep = [run.generator_file, run.path / "generator_ema.keras", run.recipe_file,
            run.path / ".lock", run.path / "tmp_notes.txt", run.samples / "tmpa1b_c9zz"]
    for p in keep:
        p.write_bytes(b"keep")
    assert sorted(run.clean_leftovers()) == sorted([*leftovers, unzipped])
    assert all(p.read_bytes() == b"keep" for p in keep)
    assert run.clean_leftovers() == []


def test_clean_leftovers_of_a_missing_or_read_only_directory_is_no_error(tmp_path, monkeypatch):
    assert RunDir(tmp_path / "missing").clean_leftovers() == []
    run = RunDir(tmp_path / "run").create()
    leftover = run.path / ".tmp5-generator.keras"
    leftover.write_bytes(b"half")

    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(os, "unlink", read_only)
    assert run.clean_leftovers() == []
    monkeypatch.undo()
    assert leftover.exists()


class _FullDiskModel:
    """Writes part of a file, then fails as a full disk would."""

    def __init__(self, error):
        self.error = error
        self.saved_to = None

    def save(self, filepath):
        self.saved_to = filepath
        with open(filepath, "wb") as f:
            f.write(b"PK\x03\x04 half a zip")
        raise self.error


@pytest.mark.parametrize("error, reason", [
    (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
    (RuntimeError("Unable to synchronously write data (file write failed)"),
     "Unable to synchronously write data (file write failed)"),
], ids=["ENOSPC", "h5py-style"])
def test_a_failed_model_save_leaves_no_temporary_file_and_the_old_model(tmp_path, error,
                                                                        reason):
    run = RunDir(tmp_path / "run").create()
    run.generator_file.write_bytes(b"the previous generator")
    model = _FullDiskModel(error)
    with pytest.raises(TrainingError) as err:
        run.save_model_atomic(model, run.generator_file)
    assert _one_line(err) == f"could not save {run.generator_file}: {reason}"
    assert model.saved_to.endswith(f".tmp{os.getpid()}-generator.keras")
    assert sorted(p.name for p in run.path.iterdir() if p.is_file()) == ["generator.keras"]
    assert run.generator_file.read_bytes() == b"the previous generator"


def test_save_model_atomic_replaces_the_model_and_takes_bare_names_in_the_run(tmp_path):
    class Model:
        def save(self, filepath):
            with open(filepath, "wb") as f:
                f.write(b"new")

    run = RunDir(tmp_path / "run").create()
    assert run.save_model_atomic(Model(), "generator_ema.keras") == run.generator_ema_file
    assert run.generator_ema_file.read_bytes() == b"new"
    assert sorted(p.name for p in run.path.iterdir() if p.is_file()) == ["generator_ema.keras"]


def test_save_model_atomic_saves_a_real_keras_model(tmp_path):
    keras = pytest.importorskip("keras")
    import numpy as np

    run = RunDir(tmp_path / "run").create()
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    run.save_model_atomic(model, run.generator_file)
    loaded = keras.models.load_model(run.generator_file)
    x = np.ones((1, 3), np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert sorted(p.name for p in run.path.iterdir() if p.is_file()) == ["generator.keras"]


# --- write_text_atomic and recipe.yaml ----------------------------------------------------

def _is_dir_fd(fd):
    return stat.S_ISDIR(os.fstat(fd).st_mode)


def test_write_text_atomic_on_a_full_disk_keeps_the_old_file_and_no_temporary(tmp_path,
                                                                               monkeypatch):
    path = tmp_path / "recipe.yaml"
    path.write_text("old: 1\n")
    real_fsync = os.fsync

    def full_disk(fd):
        if not _is_dir_fd(fd):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError) as err:
        write_text_atomic(path, "new: 2\n")
    assert err.value.errno == errno.ENOSPC
    assert path.read_text() == "old: 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["recipe.yaml"]

    run = RunDir(tmp_path / "run").create()
    with pytest.raises(TrainingError) as err:
        run.write_recipe({"name": "x"})
    assert _one_line(err) == f"could not write {run.recipe_file}: No space left on device"
    assert sorted(p.name for p in run.path.iterdir() if p.is_file()) == []


def test_write_text_atomic_fsyncs_the_file_then_renames_then_fsyncs_the_folder(tmp_path,
                                                                               monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        calls.append("fsync folder" if _is_dir_fd(fd) else "fsync file")
        real_fsync(fd)

    def replace(src, dst, **kwargs):
        calls.append("rename")
        real_replace(src, dst, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    RunDir(tmp_path).write_recipe({"name": "x", "train": {"steps": 4}})
    assert calls == ["fsync file", "rename", "fsync folder"]
    assert (tmp_path / "recipe.yaml").read_text() == "name: x\ntrain:\n  steps: 4\n"
