"""CheckpointStore on its own: atomic writes, pruning, verification and fallback (no TF)."""

import errno
import json

import numpy as np
import pytest

from gankit import checkpoints
from gankit.checkpoints import CheckpointStore, CheckpointWarning
from gankit.errors import TrainingError

from reliability_kit import file_digests


def _state(step):
    rng = np.random.default_rng(step)
    return {"generator": [rng.standard_normal((3, 4)).astype(np.float32),
                          np.array([step, 1], np.int64)],
            "optimizer/generator": [np.array(step, np.int64)]}


def _store(tmp_path, keep=3, steps=(2, 4, 6)):
    store = CheckpointStore(tmp_path / "checkpoints", keep=keep)
    for step in steps:
        store.save(step, _state(step), {"recipe_digest": "x"})
    return store


def test_round_trip_keeps_every_group_dtype_and_value(tmp_path):
    store = _store(tmp_path, steps=(5,))
    ckpt = store.load(5)
    assert ckpt.step == 5 and ckpt.meta["recipe_digest"] == "x"
    for group, values in _state(5).items():
        assert [v.dtype for v in ckpt.state[group]] == [v.dtype for v in values]
        assert all(np.array_equal(a, b) for a, b in zip(ckpt.state[group], values))
    only = store.load(5, groups=["generator"])
    assert list(only.state) == ["generator"]


def test_only_the_newest_keep_checkpoints_are_kept(tmp_path):
    store = _store(tmp_path, keep=2, steps=(2, 4, 6, 8))
    assert store.steps() == [6, 8]
    assert sorted(p.name for p in store.directory.iterdir()) == ["ckpt-00000006",
                                                                 "ckpt-00000008"]


def test_leftover_temporary_folders_are_ignored_and_cleaned(tmp_path):
    store = _store(tmp_path, steps=(2,))
    half = store.directory / ".tmp-ckpt-00000004-12345"
    half.mkdir()
    (half / "state.npz").write_bytes(b"PK\x03\x04 half a zip")
    assert store.steps() == [2] and store.load_latest().step == 2
    assert store.clean_leftovers() == [half]
    assert not half.exists()


def test_saving_a_step_again_replaces_it(tmp_path):
    store = _store(tmp_path, steps=(2, 4))
    store.save(4, _state(40), {})
    assert np.array_equal(store.load(4).state["generator"][0], _state(40)["generator"][0])
    assert [p.name for p in store.directory.iterdir() if p.name.startswith(".tmp-")] == []


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the array data: only the zip's CRC-32 can tell
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [
    lambda c: _truncate(c / "state.npz"),
    lambda c: _flip_a_byte(c / "state.npz"),
    lambda c: (c / "state.npz").unlink(),
    lambda c: (c / "meta.json").write_text("{not json"),
    lambda c: (c / "meta.json").write_text("[]"),
    lambda c: (c / "meta.json").unlink(),
], ids=["truncated-npz", "flipped-byte", "missing-npz", "bad-json", "json-list", "missing-meta"])
def test_a_corrupted_newest_checkpoint_falls_back_with_a_warning_naming_it(tmp_path, damage):
    store = _store(tmp_path)
    damage(store.path(6))
    with pytest.raises(ValueError):
        store.load(6)
    with pytest.warns(CheckpointWarning, match="ckpt-00000006") as caught:
        ckpt = store.load_latest()
    assert ckpt.step == 4 and len(caught) == 1
    assert np.array_equal(ckpt.state["generator"][0], _state(4)["generator"][0])


def test_no_usable_checkpoint_is_an_error_not_a_fresh_start(tmp_path):
    store = _store(tmp_path)
    for step in store.steps():
        _truncate(store.path(step) / "state.npz")
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

    def failing_savez(file, **arrays):
        file.write(b"PK\x03\x04 a few bytes")  # a write that got part of the way
        raise OSError(code, __import__("os").strerror(code))

    monkeypatch.setattr(checkpoints.np, "savez", failing_savez)
    with pytest.raises(TrainingError) as err:
        store.save(6, _state(6), {})
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
