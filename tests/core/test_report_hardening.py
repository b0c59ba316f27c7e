"""``gankit report`` against hostile run directories (hardening, round three): no hang on huge
values, nothing embedded that is not the run's own PNG, no traceback on deep or mistyped JSON,
no run file overwritten by ``--out``, the whole description."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from test_report import make_run

from gankit.app.report import _ticks, read_losses, write_report
from gankit.cli.main import main


def run_report(*args, timeout=60):
    """The real command in a subprocess, so a hang is a failure, not a stuck suite."""
    return subprocess.run([sys.executable, "-m", "gankit", "report", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("value", ["3e16", "1e17", "1.7e17", "-1e17", "1e300", "5e-324"])
def test_a_column_constant_at_a_huge_value_does_not_hang(tmp_path, value):
    run = make_run(tmp_path, rows=0, grids=())
    (run / "losses.csv").write_text("step,d_loss,fid\n" + "".join(
        f"{s},{value},{value if s % 5 == 0 else ''}\n" for s in range(1, 60)))
    done = run_report(run, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "<svg" in (run / "report.html").read_text()


def test_a_step_of_ten_to_the_twenty_does_not_hang(tmp_path):
    run = make_run(tmp_path, rows=0, grids=())
    (run / "losses.csv").write_text("step,d_loss\n1,0.5\n100000000000000000000,0.7\n"
                                    f"{10**20 + 1},0.2\n")
    (run / "run.json").write_text(json.dumps({"status": "completed", "step": 10**20}))
    done = run_report(run, timeout=30)
    assert done.returncode == 0, done.stderr


def test_ticks_are_bounded_however_the_range_looks():
    for lo, hi in [(3e16, 3e16 + 4), (1e17, 1e17 + 1), (0, 1e308), (-1e308, 1e308),
                   (1e20, 1e20 + 1e5), (0.0, 5e-324), (1.0, 1.0), (5.0, 1.0)]:
        ticks = _ticks(lo, hi, 5)
        assert 1 < len(ticks) <= 51, (lo, hi, ticks)


def test_values_beyond_drawing_and_non_finite_ones_are_left_out_and_counted(tmp_path):
    path = tmp_path / "losses.csv"
    path.write_text("step,a\n1,1e308\n2,inf\n3,nan\n4,-0\n5,0.5\n")
    notes = []
    table = read_losses(path, notes)
    assert [v for _, v in table.series["a"]] == [-0.0, 0.5]
    assert any("3 cell(s)" in n for n in notes)


def test_a_long_log_is_thinned_not_held_whole(tmp_path, monkeypatch):
    import gankit.app.report as report

    monkeypatch.setattr(report, "MAX_KEPT", 100)
    path = tmp_path / "losses.csv"
    path.write_text("step,a\n" + "".join(f"{s},{s % 7}\n" for s in range(1, 5001)))
    notes = []
    table = read_losses(path, notes)
    assert table.rows == 5000
    assert 100 <= len(table.series["a"]) <= 200
    assert table.series["a"][0][0] == 1  # evenly thinned: the first step stays
    assert any("thinned" in n for n in notes)


@pytest.mark.parametrize("target", ["/etc/shadow", "~/.bashrc", "outside.png"])
def test_a_symlinked_grid_is_not_embedded(tmp_path, target):
    run = make_run(tmp_path, grids=(0,))
    if target == "outside.png":  # a real PNG, but outside the run directory
        Image.new("RGB", (4, 4), (1, 2, 3)).save(tmp_path / "outside.png")
        target = str(tmp_path / "outside.png")
    secret = Path(os.path.expanduser(target))
    os.symlink(secret, run / "samples" / "grid_000200.png")
    page = write_report(run).read_text()
    assert page.count("data:image/png;base64,") == 1  # only the run's own grid
    assert "step 200: not shown (it is a symbolic link)" in page


def test_files_that_are_not_pngs_or_too_big_are_not_embedded(tmp_path):
    run = make_run(tmp_path, grids=(0,))
    (run / "samples" / "grid_000100.png").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (run / "samples" / "grid_000200.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    Image.new("1", (5000, 5000)).save(run / "samples" / "grid_000300.png")  # 25 Mpixel, small
    os.mkfifo(run / "samples" / "grid_000400.png")
    done = run_report(run, timeout=30)  # a FIFO must not block it
    assert done.returncode == 0, done.stderr
    page = (run / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 1
    assert "step 100: not shown (not a PNG file)" in page
    assert "step 200: not shown (not a readable PNG" in page
    assert "step 300: not shown (5000x5000 pixels" in page
    assert "step 400: not shown (it is a named pipe, not a regular file)" in page


@pytest.mark.parametrize("name", ["run.json", "evaluation-20260101-000000.json",
                                  "best/best.json"])
def test_json_nested_100000_deep_is_a_note_not_a_recursion_error(tmp_path, name):
    run = make_run(tmp_path)
    (run / name).parent.mkdir(exist_ok=True)
    (run / name).write_text("[" * 100_000 + "]" * 100_000)
    done = run_report(run, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "nested more than 64 deep" in (run / "report.html").read_text()


def test_mistyped_run_json_values_do_not_crash(tmp_path):
    run = make_run(tmp_path)
    (run / "run.json").write_text(json.dumps({
        "status": ["x"], "step": "six", "steps": {"a": 1}, "started": 1e300, "finished": "x",
        "seconds": True, "start_step": None, "metrics": {"fid": {"deep": [1, 2]}},
        "error": {"not": "a string"}, "precision": {"policy": 3, "history": "x"},
        "machine": [1, 2]}))
    path = write_report(run)
    assert "step unknown" in path.read_text() or "step 300" in path.read_text()


def test_a_fifo_run_json_or_losses_csv_does_not_block(tmp_path):
    run = make_run(tmp_path)
    for name in ("run.json", "losses.csv", "evaluation-1.json"):
        (run / name).unlink(missing_ok=True)
        os.mkfifo(run / name)
    done = run_report(run, timeout=30)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", ["recipe.yaml", "run.json", "losses.csv", ".lock",
                                  "samples/grid_000000.png", "checkpoints/x.html",
                                  "evaluation-1.json", "."])
def test_out_never_overwrites_a_file_the_run_owns(tmp_path, capsys, name):
    run = make_run(tmp_path)
    (run / "checkpoints").mkdir()
    (run / "evaluation-1.json").write_text("{}")
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert main(["report", str(run), "--out", str(run / name)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "gankit does not overwrite a run's files" in err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_out_beside_the_runs_files_and_the_default_are_fine(tmp_path):
    run = make_run(tmp_path)
    assert main(["report", str(run), "--out", str(run / "copy.html")]) == 0
    assert main(["report", str(run)]) == 0
    assert (run / "copy.html").is_file() and (run / "report.html").is_file()


def test_out_a_directory_is_one_line(tmp_path, capsys):
    run = make_run(tmp_path)
    assert main(["report", str(run), "--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_the_whole_description_is_shown_unquoted(tmp_path):
    run = make_run(tmp_path)
    long = ("a light DCGAN (width 24), two learning rates, DiffAugment and a short EMA, "
            "batch 32, in the fastest precision of the machine, for 15 CPU-minutes: 'quoted' "
            "and \"double\" <b>bold</b>")
    import yaml

    recipe = {"name": "frog_fast", "description": long, "train": {"steps": 3}}
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe, width=60))
    assert len((run / "recipe.yaml").read_text().splitlines()) > 3  # YAML wrapped it
    page = write_report(run).read_text()
    import html

    assert f'<p class="desc">{html.escape(long, quote=True)}</p>' in page
