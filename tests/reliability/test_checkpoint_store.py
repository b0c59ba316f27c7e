"""CheckpointStore on its own: atomic writes, pruning, verification and fallback (no TF:
the state is written and read back through the functions the store is given)."""

import errno
import json
import zlib

import numpy as np
import pytest
from reliability_kit import file_digests

from gankit.errors import TrainingError
from gankit.rundir import checkpoints
from gankit.rundir.checkpoints import CheckpointStore, CheckpointWarning


def _values(step):
    return np.random.default_rng(step).standard_normal((3, 4)).astype(np.float32)


def _writer(step):
    """Writes a state the way tf.train.Checkpoint.write does: an index and a data file."""
    def write(prefix):
        data = _values(step).tobytes()
        with open(f"{prefix}.data-00000-of-00001", "wb") as f:
            f.write(data)
        with open(f"{prefix}.index", "wb") as f:
            f.write(zlib.crc32(data).to_bytes(4, "little"))
    return write


def _read(ckpt):
    """Restores a state like TensorFlow does: a CRC mismatch is an error."""
    data = (ckpt.path / "state.data-00000-of-00001").read_bytes()
    crc = int.from_bytes((ckpt.path / "state.index").read_bytes(), "little")
    if zlib.crc32(data) != crc:
        raise RuntimeError("Data loss: checksum mismatch\n(more lines)")
    return np.frombuffer(data, np.float32).reshape(3, 4)


def _store(tmp_path, keep=3, steps=(2, 4, 6)):
    store = CheckpointStore(tmp_path / "checkpoints", keep=keep)
    for step in steps:
        store.save(step, _writer(step), {"recipe_digest": "x"})
    return store


def test_round_trip_records_every_file_and_the_meta(tmp_path):
    store = _store(tmp_path, steps=(5,))
    ckpt = store.load(5)
    assert ckpt.step == 5 and ckpt.meta["recipe_digest"] == "x"
    assert sorted(ckpt.meta["files"]) == ["state.data-00000-of-00001", "state.index"]
    assert np.array_equal(_read(ckpt), _values(5))
    assert ckpt.prefix == str(store.path(5) / "state")


def test_only_the_newest_keep_checkpoints_are_kept(tmp_path):
    store = _store(tmp_path, keep=2, steps=(2, 4, 6, 8))
    assert store.steps() == [6, 8]
    assert sorted(p.name for p in store.directory.iterdir()) == ["ckpt-00000006",
                                                                 "ckpt-00000008"]


def test_leftover_temporary_folders_are_ignored_and_cleaned(tmp_path):
    store = _store(tmp_path, steps=(2,))
    half = store.directory / ".tmp-ckpt-00000004-12345"
    half.mkdir()
    (half / "state.index").write_bytes(b"half")
    assert store.steps() == [2] and store.load_latest().step == 2
    assert store.clean_leftovers() == [half]
    assert not half.exists()


def test_saving_a_step_again_replaces_it(tmp_path):
    store = _store(tmp_path, steps=(2, 4))
    store.save(4, _writer(40), {})
    assert np.array_equal(_read(store.load(4)), _values(40))
    assert [p.name for p in store.directory.iterdir() if p.name.startswith(".tmp-")] == []


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only the state's checksum can tell
    path.write_bytes(bytes(data))


DATA = "state.data-00000-of-00001"


@pytest.mark.parametrize("damage", [
    lambda c: _truncate(c / DATA),
    lambda c: _flip_a_byte(c / DATA),
    lambda c: (c / DATA).unlink(),
    lambda c: (c / "meta.json").write_text("{not json"),
    lambda c: (c / "meta.json").write_text("[]"),
    lambda c: (c / "meta.json").unlink(),
    lambda c: (c / "meta.json").write_text(json.dumps({"format": 1, "step": 6})),
], ids=["truncated-data", "flipped-byte", "missing-data", "bad-json", "json-list",
        "missing-meta", "old-format"])
def test_a_corrupted_newest_checkpoint_falls_back_with_a_warning_naming_it(tmp_path, damage):
    store = _store(tmp_path)
    damage(store.path(6))
    restored = []
    with pytest.warns(CheckpointWarning, match="ckpt-00000006") as caught:
        ckpt = store.load_latest(restore=lambda c: restored.append(_read(c)))
    assert ckpt.step == 4 and len(caught) == 1
    assert "more lines" not in str(caught[0].message)  # one line, even for TF's long errors
    assert np.array_equal(restored[-1], _values(4))


def test_no_usable_checkpoint_is_an_error_not_a_fresh_start(tmp_path):
    store = _store(tmp_path)
    for step in store.steps():
        _truncate(store.path(step) / DATA)
    with pytest.warns(CheckpointWarning), pytest.raises(TrainingError) as err:
        store.load_latest()
    assert "no usable checkpoint" in str(err.value)
    assert all(f"ckpt-{s:08d}" in str(err.value) for s in (2, 4, 6))
    assert CheckpointStore(tmp_path / "empty").load_latest() is None


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES], ids=["ENOSPC", "EACCES"])
def test_disk_full_or_no_permission_while_saving_leaves_the_previous_checkpoint_intact(
        tmp_path, monkeypatch, code):
    store = _store(tmp_path, keep=2, steps=(2, 4))
    before = file_digests(store.directory)

    def failing_write(prefix):
        with open(f"{prefix}.data-00000-of-00001", "wb") as f:
            f.write(b"a few bytes")  # a write that got part of the way
        raise OSError(code, __import__("os").strerror(code))

    with pytest.raises(TrainingError) as err:
        store.save(6, failing_write, {})
    message = str(err.value)
    assert "could not write checkpoint" in message and "ckpt-00000006" in message
    assert __import__("os").strerror(code) in message
    assert "previous checkpoint (step 4) is intact" in message
    assert err.value.exit_code != 0
    assert file_digests(store.directory) == before  # nothing pruned, no temporary left
    assert store.load_latest().step == 4


def test_the_test_pause_hook_is_off_unless_its_variable_names_the_step(tmp_path, monkeypatch):
    monkeypatch.setenv(checkpoints.PAUSE_ENV, "99")
    monkeypatch.setattr(checkpoints.time, "sleep", lambda s: pytest.fail("paused"))
    _store(tmp_path, steps=(2,))
    assert json.loads((tmp_path / "checkpoints" / "ckpt-00000002" / "meta.json")
                      .read_text())["step"] == 2
