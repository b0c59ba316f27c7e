"""``gankit evaluate --nearest K``: the neighbour search, the statistics against held-out
reals, the panel, a memorising "generator" caught, bad inputs as one line with exit 2, and
the panel in report.html."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml
from PIL import Image
from tiny import tiny_classifier, tiny_recipe

import gankit
import gankit.evaluation.nearest as nearest_module
from gankit.app.report import write_report
from gankit.cli.main import main
from gankit.evaluation.nearest import distance_summary, nearest_neighbours
from gankit.evaluation.panel import PanelLayout, draw_panel

SIZE = 12


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path / "cache"))


def _images(folder, n, seed, size=SIZE):
    """``n`` PNGs of noise, each of its own brightness (so their features differ)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        pixels = rng.normal(rng.uniform(40, 215), 40, (size, size, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("nearest")
    real = _images(root / "real", 30, seed=1)
    # the "generator" memorises: its first 10 images are real 020.png .. 029.png copied
    fake = _images(root / "fake", 20, seed=2)
    for i in range(10):
        shutil.copy(real / f"{20 + i:03d}.png", fake / f"{i:03d}.png")
    return {"real": real, "fake": fake, "held": _images(root / "held", 20, seed=3),
            "classifier": tiny_classifier(root / "clf.keras", SIZE)}


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _extractor(data):
    return ("--extractor", "keras_model", "--set", f"extractor.path={data['classifier']}")


# --- the search and the statistics ------------------------------------------------------

def test_an_exact_copy_is_its_own_nearest_neighbour_at_distance_zero():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (50, 8, 8, 3)).astype(np.float32) / 255
    queries = np.concatenate([base[[7, 31]], rng.random((5, 8, 8, 3), dtype=np.float32)])
    indices, distances = nearest_neighbours(queries, base, 3)
    assert indices[:2, 0].tolist() == [7, 31]
    assert distances[:2, 0].tolist() == [0.0, 0.0]
    # the rest: exactly what a brute-force float64 search gives
    brute = np.linalg.norm(queries.reshape(7, 1, -1).astype(np.float64)
                           - base.reshape(1, 50, -1), axis=2)
    assert np.array_equal(indices, np.argsort(brute, axis=1, kind="stable")[:, :3])
    assert np.allclose(distances, np.sort(brute, axis=1)[:, :3], rtol=0, atol=1e-12)


def test_a_search_in_blocks_equals_one_search_and_ties_go_to_the_lower_index(monkeypatch):
    rng = np.random.default_rng(1)
    base = rng.random((40, 6))
    base[25] = base[3]  # a duplicate: the lower index wins
    queries = np.concatenate([base[[3]], rng.random((9, 6))])
    whole = nearest_neighbours(queries, base, 4)
    monkeypatch.setattr(nearest_module, "_BLOCK", 7)
    blocks = nearest_neighbours(queries, base, 4)
    assert np.array_equal(whole[0], blocks[0]) and np.array_equal(whole[1], blocks[1])
    assert whole[0][0, :2].tolist() == [3, 25] and whole[1][0, :2].tolist() == [0.0, 0.0]


def test_the_statistics_compare_the_generated_with_the_held_out_reals():
    held = np.arange(1.0, 101.0)  # held-out reals' nearest distances: 1 .. 100
    generated = np.array([0.5] * 10 + [50.0] * 90)
    summary = distance_summary(generated, held)
    assert summary["threshold"] == pytest.approx(5.95)  # held-out 5th percentile
    assert summary["suspiciously_close"] == 0.1  # the ten at 0.5 are below it
    assert summary["held_out_below_threshold"] == 0.05  # 1 .. 5
    assert summary["generated"] == {"min": 0.5, "p05": 0.5, "median": 50.0}
    assert summary["held_out"]["min"] == 1.0 and summary["held_out"]["median"] == 50.5
    healthy = distance_summary(held + 0.01, held)
    assert healthy["suspiciously_close"] == 0.05


def test_the_panel_has_a_row_per_image_and_the_images_in_their_cells():
    rng = np.random.default_rng(2)
    rows, k = 3, 2
    generated = rng.integers(0, 256, (rows, 8, 8, 3)) / 255
    features = rng.integers(0, 256, (rows, k, 8, 8, 3)) / 255
    pixels = rng.integers(0, 256, (rows, k, 8, 8, 3)) / 255
    panel = draw_panel(generated, features, np.ones((rows, k)), pixels, np.zeros((rows, k)))
    layout = PanelLayout(rows, k, 96, 96)  # 8x8 enlarged 12 times
    assert panel.shape == (*layout.size, 3) == (358, 516, 3)
    assert layout.columns == 1 + 2 * k

    def cell(r, c):
        y, x = layout.cell(r, c)
        return panel[y:y + 96, x:x + 96]

    def big(image):
        return np.repeat(np.repeat(np.rint(image * 255).astype(np.uint8), 12, 0), 12, 1)

    for r in range(rows):
        assert np.array_equal(cell(r, 0), big(generated[r]))
        for j in range(k):
            assert np.array_equal(cell(r, 1 + j), big(features[r, j]))
            assert np.array_equal(cell(r, 1 + k + j), big(pixels[r, j]))
    # the two groups are separated by a grey line
    for x in layout.separators():
        assert (panel[layout.cell(0, 0)[0], x] == 96).all()


# --- the command ------------------------------------------------------------------------

def test_a_memorising_generator_is_caught(capsys, data, tmp_path):
    out = tmp_path / "panel.png"
    code, stdout, err = run_cli(capsys, "evaluate", data["fake"], "--nearest", 3,
                                "--reference", data["real"], "--holdout", data["held"],
                                "--nearest-rows", 4, "--nearest-out", out, *_extractor(data))
    assert code == 0, err
    info = json.loads(out.with_suffix(".json").read_text())
    assert (info["k"], info["n_generated"], info["n_held_out"], info["n_searched"]) == \
        (3, 20, 20, 30)
    with Image.open(out) as panel:
        assert panel.size[::-1] == PanelLayout(4, 3, 96, 96).size  # 12x12 enlarged 8 times
    for r, row in enumerate(info["shown"]):  # fake 000..003 are real 020..023
        for space in ("features", "pixels"):
            nearest = row[space][0]
            assert nearest["name"] == f"{20 + r:03d}.png" and nearest["index"] == 20 + r
            assert len(row[space]) == 3
        assert row["pixels"][0]["distance"] == 0.0
        assert row["features"][0]["distance"] < 1e-4 < row["features"][1]["distance"]
    for space in ("features", "pixels"):
        assert info[space]["generated"]["min"] < 1e-4
        # half the images are copies: at least half are closer than 95% of held-out reals
        assert info[space]["suspiciously_close"] >= 0.5
        assert info[space]["held_out_below_threshold"] == 0.05  # 1 of 20
    assert "pixels   generated" in stdout and f"wrote {out} and panel.json" in stdout


def test_without_a_holdout_a_fifth_of_the_reference_is_held_out(capsys, data, tmp_path):
    out = tmp_path / "split.png"
    code, _, err = run_cli(capsys, "evaluate", data["fake"], "--nearest", 2, "--reference",
                           data["real"], "--nearest-n", 10, "--nearest-out", out,
                           "--quiet", *_extractor(data))
    assert code == 0, err
    info = json.loads(out.with_suffix(".json").read_text())
    assert (info["n_generated"], info["n_held_out"], info["n_searched"]) == (10, 6, 24)
    assert "random fifth of the reference" in info["held_out"]
    held = set(np.random.default_rng(0).choice(30, 6, replace=False).tolist())
    found = {n["index"] for row in info["shown"] for s in ("features", "pixels") for n in row[s]}
    assert found and not found & held  # held-out images are never searched


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, make_image_folder):
    images = make_image_folder(tmp_path_factory.mktemp("run") / "images", 10, 24)
    recipe = tiny_recipe("nearest", {"steps": 2, "batch_size": 4, "sample_every": 100,
                                     "grid_every": 100, "grid_size": 2, "checkpoint_every": 2,
                                     "precision": "float32"})
    recipe["dataset"]["path"] = str(images)
    run = gankit.train(recipe, out=tmp_path_factory.mktemp("out") / "run", quiet=True).run_dir
    return run, images


def test_a_run_keeps_the_panel_and_its_report_shows_it(capsys, data, run_dir):
    run, images = run_dir
    write_report(run)
    assert 'id="nearest"' not in (run / "report.html").read_text()  # not computed yet
    code, stdout, err = run_cli(capsys, "evaluate", run, "--nearest", 2, "--reference", images,
                                "--nearest-n", 6, "--nearest-rows", 2, *_extractor(data))
    assert code == 0, err
    assert not list(run.glob("evaluation-*.json"))  # no metrics asked for, none written
    info = json.loads((run / "nearest.json").read_text())
    assert info["panel"] == "nearest.png" and "generator, latest weights" in info["source"]
    assert (info["n_generated"], info["n_held_out"], info["n_searched"]) == (6, 2, 8)
    assert main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    panel = base64.b64encode((run / "nearest.png").read_bytes()).decode()
    assert 'id="nearest"' in page and f"data:image/png;base64,{panel}" in page
    share = f"{100 * info['pixels']['suspiciously_close']:.1f}%"
    assert f"<td>{share}</td>" in page and "held-out real" in page


def test_the_check_of_truncated_latents_says_so(capsys, data, run_dir, tmp_path):
    run, images = run_dir
    out = tmp_path / "near.png"
    code, _, err = run_cli(capsys, "evaluate", run, "--nearest", 2, "--reference", images,
                           "--nearest-n", 6, "--nearest-rows", 2, "--truncation", 1,
                           "--nearest-out", out, *_extractor(data))
    assert code == 0, err
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["source"].endswith("latents truncated to [-1, 1]")


# --- mistakes ---------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--nearest", "0"], "--nearest must be between 1 and 16 (the nearest real images shown"),
    (["--nearest", "-3"], "--nearest must be between 1 and 16"),
    (["--nearest", "100000000"], "--nearest must be between 1 and 16"),
    (["--nearest", "2", "--nearest-rows", "0"], "--nearest-rows must be between 1 and 20"),
    (["--nearest", "2", "--nearest-n", "21"],
     "--nearest-n 21: the source folder {fake} holds only 20 image(s)"),
    (["--nearest-rows", "4"], "--nearest-rows is an option of the memorisation check: give "
                              "--nearest K too"),
    (["--nearest", "2", "--holdout", "{real}"], "--holdout {real} is the --reference itself"),
    (["--nearest", "2", "--holdout", "{tmp}/none"], "--holdout: {tmp}/none does not exist"),
    (["--nearest", "2", "--nearest-out", "{tmp}/x.jpg"], "--nearest-out {tmp}/x.jpg: name a "
                                                         ".png file"),
    (["--nearest", "2", "--no-out"], "--nearest: say where the panel goes with --nearest-out"),
    (["--nearest", "2", "--json", "{tmp}/r.json"], "--json writes the metrics' values"),
    (["--nearest", "4", "--reference", "{small}"], "--nearest 4: the --reference folder "
                                                   "{small} gives 5 image(s), 2 of them held out"),
    (["--nearest", "5", "--reference", "{small}", "--holdout", "{held}"], None),
    (["--nearest", "6", "--reference", "{small}", "--holdout", "{held}"],
     "gives 5 image(s), leaving 5 to search: fewer than the 6 nearest"),
])
def test_mistakes_are_one_line_and_exit_2(capsys, data, tmp_path, args, message):
    small = _images(tmp_path / "small", 5, seed=4)
    names = {"{tmp}": tmp_path, "{real}": data["real"], "{fake}": data["fake"],
             "{small}": small, "{held}": data["held"]}

    def fill(text):
        for key, value in names.items():
            text = text.replace(key, str(value))
        return text

    args = [fill(a) for a in args]
    if "--reference" not in args:
        args += ["--reference", str(data["real"])]
    if "--no-out" in args:
        args.remove("--no-out")
    elif "--nearest-out" not in args:
        args += ["--nearest-out", str(tmp_path / "panel.png")]
    code, out, err = run_cli(capsys, "evaluate", data["fake"], *args, *_extractor(data),
                             "--quiet")
    if message is None:  # the edge that works: 5 images, the 5 nearest, a separate holdout
        assert code == 0, err
        return
    assert code == 2 and err.count("\n") == 1 and not out, err
    assert err.startswith("gankit: error: ") and fill(message) in err, err


def test_a_k_that_is_not_a_number_is_a_usage_error(capsys, data):
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", str(data["fake"]), "--nearest", "four", "--reference",
              str(data["real"])])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1
    assert "argument --nearest: invalid int value: 'four'" in err


def test_mistakes_are_answered_before_tensorflow_loads(tmp_path, data, make_image_folder):
    images = make_image_folder(tmp_path / "images", 5, 24)
    run = tmp_path / "run"  # a run that has not made a generator yet
    run.mkdir()
    recipe = tiny_recipe("untrained", {"steps": 2})
    recipe["dataset"]["path"] = str(images)
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    cases = [[str(run), "--nearest", "2", "--reference", str(images)],
             [str(images), "--nearest", "0", "--reference", str(images), "--nearest-out",
              str(tmp_path / "p.png")],
             [str(images), "--nearest", "4", "--reference", str(images), "--nearest-out",
              str(tmp_path / "p.png")]]
    code = ("import sys; from gankit.cli.main import main; "
            f"codes = [main(['evaluate', *case, '--extractor', 'keras_model', '--set', "
            f"'extractor.path={data['classifier']}']) for case in {cases!r}]; "
            "print(*codes, 'tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.split() == ["2", "2", "2", "False"], done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 3 and all(line.startswith("gankit: error: ") for line in lines)
    assert "has no checkpoint and no generator.keras yet" in lines[0]
    assert "--nearest must be between 1 and 16" in lines[1]
    assert "fewer than the 4 nearest" in lines[2]
