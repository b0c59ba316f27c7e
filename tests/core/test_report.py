"""``gankit report``: one self-contained, escaped HTML page from a run directory, without TF."""

import base64
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from gankit.app.report import machine_info, read_losses, write_report
from gankit.cli.main import main

COLUMNS = ["d_loss", "g_loss", "d_gradient_penalty", "d_grad_norm", "d_on_fake", "d_on_real",
           "fid"]
HOSTILE = "</pre><script>alert(1)</script>"


def make_run(root: Path, rows: int = 300, grids=(0, 150, 300)) -> Path:
    run = root / "run"
    (run / "samples").mkdir(parents=True)
    (run / "recipe.yaml").write_text(f"name: tiny_gan\ndescription: a test run\n"
                                     f"note: '{HOSTILE}'\ntrain:\n  steps: {rows}\n")
    (run / "run.json").write_text(json.dumps({
        "status": "completed", "step": rows, "steps": rows, "started": 1_700_000_000.0,
        "finished": 1_700_000_600.0, "seconds": 600.0, "metrics": {"d_loss": -1.5},
        "machine": {"cpu": "Test CPU <b>", "cores": 2, "tensorflow": "2.21.0"}}))
    lines = ["step," + ",".join(COLUMNS)]
    for step in range(1, rows + 1):
        values = [f"{math.sin(step / 9) - 1:.4f}", f"{1 + 0.01 * step:.4f}", "0.5", "40",
                  "-3", "2"]
        fid = f"{100 - step / 10:.3f}" if step % 50 == 0 else ""  # sparse: every 50 steps
        lines.append(f"{step}," + ",".join(values) + f",{fid}")
    (run / "losses.csv").write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")
    for step in grids:
        Image.new("RGB", (10, 10), (step % 256, 90, 160)).save(
            run / "samples" / f"grid_{step:06d}.png")
    return run


def charts(page: str) -> list[str]:
    return re.findall(r"<figure class=chart><figcaption><b>([^<]+)</b>", page)


def test_report_is_one_self_contained_file(tmp_path):
    run = make_run(tmp_path)
    before = set(run.rglob("*"))
    path = write_report(run)
    assert path == run / "report.html"
    assert set(run.rglob("*")) - before == {path}  # one file, no temporary left behind
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:|//)", page)
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower()  # no script at all, not even an inline one
    assert "default-src 'none'" in page  # the browser may not fetch anything either


def test_grids_are_embedded_in_step_order(tmp_path):
    page = write_report(make_run(tmp_path)).read_text()
    images = re.findall(r'<img alt="samples at step (\d+)" src="data:image/png;base64,([^"]+)"',
                        page)
    assert [int(s) for s, _ in images] == [0, 150, 300]
    assert base64.b64decode(images[1][1]) == (tmp_path / "run/samples/grid_000150.png").read_bytes()
    assert ">step 150<" in page


def test_many_grids_are_thinned_keeping_first_and_last(tmp_path):
    page = write_report(make_run(tmp_path, grids=range(0, 3001, 100))).read_text()
    steps = [int(s) for s in re.findall(r'alt="samples at step (\d+)"', page)]
    assert 8 <= len(steps) <= 13 and steps[0] == 0 and steps[-1] == 3000
    assert steps == sorted(steps)


def test_every_metric_column_has_a_chart(tmp_path):
    page = write_report(make_run(tmp_path)).read_text()
    assert sorted(charts(page)) == sorted(COLUMNS)
    # fid is sparse: drawn as a quality metric, one point per measured step, first
    assert page.index("Quality metrics") < page.index("Training")
    fid = page[page.index("<b>fid</b>"):]
    fid = fid[:fid.index("</figure>")]
    assert fid.count("<circle") == 6 and "step 300: 70<" in fid
    assert "6 measurement(s)" in fid


def test_long_series_are_bounded_and_spikes_kept(tmp_path):
    run = make_run(tmp_path, rows=1)
    rows = ["step,d_loss"] + [f"{s},{1000.0 if s == 31_337 else (s % 7) / 7}"
                              for s in range(1, 60_001)]
    (run / "losses.csv").write_text("\n".join(rows) + "\n")
    page = write_report(run).read_text()
    polylines = re.findall(r'<polyline class="(\w+)" points="([^"]+)"', page)
    assert {c for c, _ in polylines} == {"raw", "smooth"}
    for _, points in polylines:
        assert len(points.split()) <= 1001
    assert "max 1000" in page and "1 value lies outside" in page
    assert ">60k<" in page or ">60,000<" in page  # the x axis reaches the last step
    assert len(page) < 200_000


def test_file_content_is_escaped(tmp_path):
    page = write_report(make_run(tmp_path)).read_text()
    assert HOSTILE not in page and "<script" not in page
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Test CPU &lt;b&gt;" in page


def test_header_timings_and_machine(tmp_path):
    page = write_report(make_run(tmp_path)).read_text()
    assert "<h1>tiny_gan</h1>" in page and "completed" in page and "step 300 of 300" in page
    assert "10 min 0 s" in page and "0.5 (2,000 ms per step)" in page
    assert "(measured when the report was made)" not in page  # run.json had a machine


def test_damaged_run_still_gives_a_page(tmp_path):
    run = make_run(tmp_path)
    (run / "losses.csv").unlink()
    (run / "run.json").write_text("[1, 2")
    page = write_report(run).read_text()
    assert "run.json could not be read" in page and "losses.csv is missing" in page
    assert "No losses.csv rows to plot" in page
    assert "(measured when the report was made)" in page and "<h1>tiny_gan</h1>" in page


def test_losses_are_read_leniently(tmp_path):
    path = tmp_path / "losses.csv"
    path.write_bytes("\ufeffstep,a,b\n1,0.5,\n2,oops,3\nx,1,1\n3,nan,4\n4,1.5\n".encode())
    notes = []
    table = read_losses(path, notes)
    assert table.columns == ["a", "b"]
    assert table.series == {"a": [(1, 0.5), (4, 1.5)], "b": [(2, 3.0), (3, 4.0)]}
    assert any("1 row(s)" in n for n in notes) and any("2 cell(s)" in n for n in notes)


def test_best_and_evaluations_are_shown(tmp_path):
    run = make_run(tmp_path)
    (run / "best").mkdir()
    (run / "best" / "meta.json").write_text(json.dumps({"step": 250, "metric": "fid",
                                                        "value": 75.25}))
    (run / "evaluation-000300.json").write_text(json.dumps({"fid": 70.5, "kid": {"mean": 0.01}}))
    page = write_report(run).read_text()
    assert "Best checkpoint" in page and "75.25" in page
    assert "evaluation-000300.json" in page and "kid.mean" in page and "70.5" in page


def test_machine_info_is_plain_data_without_tensorflow():
    code = ("import json, sys; from gankit.app.report import machine_info; "
            "print(json.dumps(machine_info())); assert 'tensorflow' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    info = json.loads(done.stdout)
    for key in ("platform", "python", "cpu", "cores", "amx_bf16", "avx512_bf16", "tensorflow",
                "keras", "gankit"):
        assert key in info
    assert info["cores"] >= 1 and info == json.loads(json.dumps(machine_info()))


def test_cli_report_writes_and_prints_the_path(tmp_path, capsys):
    run = make_run(tmp_path)
    assert main(["report", str(run)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(run / "report.html") and err == ""
    assert (run / "report.html").is_file()
    assert main(["report", str(run), "--out", str(tmp_path / "elsewhere.html")]) == 0
    assert (tmp_path / "elsewhere.html").is_file()


@pytest.mark.parametrize("target", ["not-a-run", "empty"])
def test_cli_report_of_a_non_run_is_one_line(tmp_path, capsys, target):
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / target)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("gankit: error: ") and "not a gankit run directory" in err


def test_cli_report_to_an_unwritable_place_is_one_line(tmp_path, capsys):
    run = make_run(tmp_path)
    assert main(["report", str(run), "--out", str(tmp_path / "no" / "such" / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write the report" in err


def test_the_report_after_a_run_warns_instead_of_failing(tmp_path):
    from gankit.app.report import ReportWarning, write_report_after_run

    run = make_run(tmp_path)
    assert write_report_after_run(run) == run / "report.html"
    with pytest.warns(ReportWarning, match="could not be written"):
        assert write_report_after_run(tmp_path / "gone") is None
