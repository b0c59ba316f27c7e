"""gankit.util.atomic: a folder is swapped in whole, an old one is moved aside first and
put back when the swap fails; a damaged file is moved aside, never over a backup."""

import os

import pytest

from gankit.errors import TrainingError
from gankit.util import atomic


def test_swap_folder_replaces_the_old_folder_and_leaves_nothing_else(tmp_path):
    final, tmp = tmp_path / "best", tmp_path / ".tmp-best"
    final.mkdir()
    (final / "old.txt").write_text("old")
    tmp.mkdir()
    atomic.write_text(tmp / "new.txt", "new")
    atomic.swap_folder(tmp, final, aside=tmp_path / ".tmp-best-old")
    assert [p.name for p in tmp_path.iterdir()] == ["best"]
    assert [p.name for p in final.iterdir()] == ["new.txt"]


def test_a_failed_swap_puts_the_old_folder_back(tmp_path, monkeypatch):
    final, tmp, aside = tmp_path / "ckpt", tmp_path / ".tmp-new", tmp_path / ".tmp-old"
    final.mkdir()
    (final / "state").write_text("old")
    tmp.mkdir()
    real_replace = os.replace

    def replace(src, dst):
        if str(src) == str(tmp):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError):
        atomic.swap_folder(tmp, final, aside=aside)
    assert (final / "state").read_text() == "old" and not aside.exists()


def test_move_aside_never_overwrites_a_backup(tmp_path):
    path = tmp_path / "run.json"
    first = []
    for text in ("a", "b"):
        path.write_text(text)
        first.append(atomic.move_aside(path, TrainingError))
    assert first[0] != first[1] and [p.read_text() for p in first] == ["a", "b"]
    with pytest.raises(TrainingError, match="could not move the damaged"):
        atomic.move_aside(tmp_path / "missing", TrainingError)
