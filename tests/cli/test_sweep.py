"""``gankit sweep``: a tiny sweep end to end (trained, scored, resumed, a table, a CSV and a
page), and its mistakes as one line with exit code 2 before anything trains."""

import csv
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from gankit.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
SIZE = 24

RECIPE = {
    "name": "tiny_sweep",
    "generator": {"type": "frog_dcgan", "latent_dim": 8, "height": SIZE, "width": SIZE,
                  "base_filters": 4, "filters": 4},
    "discriminator": {"type": "frog_dcgan", "height": SIZE, "width": SIZE, "filters": 4},
    # --train's folder replaces the path
    "dataset": {"type": "image_folder", "path": "frogs", "height": SIZE, "width": SIZE},
    "loss": "bce",
    "strategy": {"type": "gan"},
    "train": {"steps": 6, "batch_size": 4, "seed": 3, "sample_every": 3, "grid_every": 6,
              "grid_size": 2, "checkpoint_every": 6, "precision": "float32"},
}
TRIALS = {"base": {},
          "ema": {"what": "with an EMA copy", "set": {"ema.decay": 0.9, "train.steps": 4}}}


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import keras

    root = tmp_path_factory.mktemp("sweep")
    frogs = root / "frogs"
    frogs.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(
            frogs / f"{i:02d}.png")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, activation="tanh")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    keras.Model(inputs, keras.layers.Dense(3, name="logits")(x)).save(root / "clf.keras")
    (root / "base.yaml").write_text(yaml.safe_dump(RECIPE))
    (root / "trials.yaml").write_text(yaml.safe_dump(TRIALS))
    return root


def sweep(files, out, *extra):
    return ["sweep", str(files / "base.yaml"), "--trials", str(files / "trials.yaml"),
            "--minutes", "5", "--train", str(files / "frogs"), "--holdout", "0.5", "-n", "6",
            "--set", f"extractor.path={files / 'clf.keras'}", "--out", str(out), *extra]


def test_a_tiny_sweep_trains_scores_and_continues(files, tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(sweep(files, out, "--only", "base")) == 0
    captured = capsys.readouterr()
    assert "| `base` | the base recipe | 6 |" in captured.out
    state = json.loads((out / "sweep.json").read_text())
    assert list(state["trials"]) == ["base"]
    # the held-out split: the last 6 of 12 files by name, linked, never trained on
    assert sorted(p.name for p in (out / "data" / "holdout").iterdir()) == \
        [f"{i:02d}.png" for i in range(6, 12)]
    stored = yaml.safe_load((out / "runs" / "base" / "recipe.yaml").read_text())
    assert stored["dataset"]["path"] == str(out / "data" / "train")
    assert stored["train"]["max_minutes"] == 5.0
    # again, all trials: base is kept, ema trains; both of its generators are scored
    assert main(sweep(files, out)) == 0
    captured = capsys.readouterr()
    assert "base: done already" in captured.err
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {r["trial"] for r in rows} == {"base", "ema"}
    ema = next(r for r in rows if r["trial"] == "ema")
    base = next(r for r in rows if r["trial"] == "base")
    assert ema["steps"] == "4" and ema["fid_ema"] and ema["fid_trained"]
    assert base["fid_ema"] == "" and float(base["fid_trained"]) >= 0
    # the scores are gankit evaluate's: the same command gives the same FID
    evaluation = json.loads((out / "evals" / "ema-ema.json").read_text())
    assert float(ema["fid_ema"]) == pytest.approx(evaluation["values"]["fid"], rel=1e-3)
    for name in ("base-trained", "ema-ema", "ema-trained"):
        with Image.open(out / "grids" / f"{name}.png") as grid:
            assert grid.size[0] > SIZE
    page = (out / "index.html").read_text()
    assert 'src="grids/ema-ema.png"' in page and "Content-Security-Policy" in page
    # two settings of one seed each: settings.csv has a row for each, no medians are printed
    settings = list(csv.DictReader((out / "settings.csv").open()))
    assert sorted((r["trials"], r["seeds"], r["n"]) for r in settings) == \
        [("base", "3", "1"), ("ema", "3", "1")]
    assert "By setting" not in captured.out and "By setting" not in page
    assert main(["sweep", str(files / "base.yaml"), "--trials", "x", "--minutes", "1",
                 "--out", str(out), "--table"]) == 0
    assert "`ema`" in capsys.readouterr().out
    # a changed setting of the sweep would make its trials incomparable
    code = main(sweep(files, out, "-n", "4"))
    assert code == 2
    assert "holds a sweep with other settings (n: 6 -> 4)" in capsys.readouterr().err


def test_a_trial_whose_steps_changed_is_refused_until_rerun(files, tmp_path, capsys):
    """Changing a scored trial's train.steps (which a recipe's digest leaves out, so that a run
    can be extended) is a changed trial: refused in one line, and --rerun trains it again. A
    row of an older sweep, without the whole recipe's fingerprint, is judged by its digest."""
    out = tmp_path / "sweep"
    trials = tmp_path / "trials.yaml"
    trials.write_text(yaml.safe_dump({"base": {}}))
    args = sweep(files, out)
    args[args.index("--trials") + 1] = str(trials)
    assert main(args) == 0
    trials.write_text(yaml.safe_dump({"base": {"set": {"train.steps": 5}}}))
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("trial base changed since it ran (its recipe is not the one in "
                        f"{out / 'runs' / 'base'}); give it a new name, or pass --rerun base")
    assert len(err.splitlines()) == 1
    assert main(args + ["--rerun", "base"]) == 0
    state = json.loads((out / "sweep.json").read_text())
    assert state["trials"]["base"]["steps"] == 5
    # as an older gankit wrote it: no fingerprint, setting or seed; the digest matches
    row = state["trials"]["base"]
    for key in ("fingerprint", "setting", "seed"):
        row.pop(key)
    (out / "sweep.json").write_text(json.dumps(state))
    assert main(args) == 0
    assert "base: done already" in capsys.readouterr().err
    row = json.loads((out / "sweep.json").read_text())["trials"]["base"]
    assert row["seed"] == 3 and row["setting"] and "fingerprint" not in row


def test_a_trial_that_stopped_while_training_is_trained_again(files, tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(sweep(files, out, "--only", "base")) == 0
    run = out / "runs" / "base"
    status = json.loads((run / "run.json").read_text())
    status["status"] = "interrupted"
    (run / "run.json").write_text(json.dumps(status))
    state = json.loads((out / "sweep.json").read_text())
    state["trials"]["base"]["status"] = "training"
    (out / "sweep.json").write_text(json.dumps(state))
    capsys.readouterr()
    assert main(sweep(files, out, "--only", "base")) == 0
    assert "did not finish training; training it again" in capsys.readouterr().err
    assert json.loads((run / "run.json").read_text())["status"] == "completed"


@pytest.mark.parametrize("change, message", [
    (["--minutes", "0"], "--minutes must be above 0"),
    (["--minutes", "nan"], "--minutes must be above 0"),
    (["--holdout", "1.5"], "--holdout must be between 0 and 1"),
    (["--holdout", "0.01"], "leaves 11 to train on and 1 to score against"),
    (["--snapshot-minutes", "7"], "--snapshot-minutes: each mark must be above 0 and below"),
    (["--only", "bsae"], "--only bsae: no such trial in"),
    (["-n", "1"], "-n must be between 2"),
    (["--reference", "REF"], "--holdout and --reference exclude each other"),
    (["--set", "extractor.layer_x=1"], "extractor.layer_x"),
    (["--extractor", "inceptoin_v3"], "inception_v3"),
])
def test_mistakes_are_one_line_and_exit_2(files, tmp_path, capsys, change, message):
    args = sweep(files, tmp_path / "out")
    for i in range(0, len(change), 2):
        flag, value = change[i], change[i + 1]
        if flag in args and flag not in ("--set",):
            args[args.index(flag) + 1] = value.replace("REF", str(files / "frogs"))
        else:
            args += [flag, value.replace("REF", str(files / "frogs"))]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("trials, message", [
    ("[a, b]", "a recipe must be a mapping"),
    ("{}", "no trials"),
    ("{'bad name': {}}", "bad name: a trial name is 1-64 letters"),
    ("{t: {sett: {}}}", "t.sett: unknown key (did you mean 'set'?)"),
    ("{t: {set: {generator.base_filter: 8}}}", "generator.base_filter"),
    ("{t: {set: [train.steps]}}", "t.set: a list of 'set' items is of KEY=VALUE strings"),
    ("{t: {recipe: missing.yaml}}", "recipe file not found"),
    ("{t: {set: {train.batch_size: -1}}}", "train.batch_size"),
    ("{t: 5}", "t: expected a mapping"),
])
def test_bad_trials_files_are_one_line_naming_the_trial(files, tmp_path, capsys, trials,
                                                        message):
    (tmp_path / "trials.yaml").write_text(trials)
    args = sweep(files, tmp_path / "out")
    args[args.index("--trials") + 1] = str(tmp_path / "trials.yaml")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_mistakes_are_answered_before_tensorflow_loads(files, tmp_path):
    code = ("import sys; from gankit.cli.main import main; code = main(sys.argv[1:]); "
            "assert 'tensorflow' not in sys.modules; sys.exit(code)")
    args = sweep(files, tmp_path / "out")
    args[args.index("--minutes") + 1] = "-1"
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("gankit: error: --minutes must be above 0")


def test_a_second_sweep_in_the_same_folder_is_refused(files, tmp_path):
    import fcntl
    import os

    out = tmp_path / "sweep"
    out.mkdir()
    fd = os.open(out / ".sweep.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, b"4242")
    try:
        done = subprocess.run([sys.executable, "-m", "gankit", *sweep(files, out)],
                              capture_output=True, text=True, timeout=120)
    finally:
        os.close(fd)
    assert done.returncode == 2
    assert "is in use by another gankit sweep (pid 4242)" in done.stderr


def test_sigint_to_the_sweep_stops_its_trial_and_the_next_sweep_trains_it_again(files,
                                                                                tmp_path):
    import os
    import signal
    import time

    long = tmp_path / "long.yaml"
    long.write_text(yaml.safe_dump({"slow": {"set": {"train.steps": 100000,
                                                     "train.checkpoint_every": 1000}}}))
    out = tmp_path / "sweep"
    args = sweep(files, out)
    args[args.index("--trials") + 1] = str(long)
    sweeper = subprocess.Popen([sys.executable, "-m", "gankit", *args], stderr=subprocess.PIPE,
                               text=True)
    losses = out / "runs" / "slow" / "losses.csv"
    deadline = time.monotonic() + 120
    while not (losses.exists() and len(losses.read_text().splitlines()) > 3):
        assert sweeper.poll() is None and time.monotonic() < deadline, sweeper.stderr.read()
        time.sleep(0.2)
    os.kill(sweeper.pid, signal.SIGINT)  # to the sweep alone, as `kill -INT` sends it
    assert sweeper.wait(timeout=120) == 130
    assert "interrupted" in sweeper.stderr.read()
    status = json.loads((out / "runs" / "slow" / "run.json").read_text())
    assert status["status"] == "interrupted"  # the run stopped as a run stops
    state = json.loads((out / "sweep.json").read_text()) if (out / "sweep.json").exists() \
        else {"trials": {}}
    assert "slow" not in state["trials"]


def _row(name, setting, seed, ema=None, trained=None, status="scored"):
    end = {"step": 10}
    for key, fid in (("ema", ema), ("trained", trained)):
        if fid is not None:
            end[key] = {"fid": fid, "kid": 0.1, "kid_std": 0.01}
    return {"name": name, "what": f"what {name}", "status": status, "setting": setting,
            "seed": seed, "steps": 10, "images_seen": 40, "scores": {"end": end}}


def test_trials_that_differ_only_in_their_seed_are_summed_up_by_their_medians():
    """settings.csv, the printed table and index.html give each setting's median FID over
    its seeds and its range, best first; failed trials and singletons are not in the
    medians' table, and a trial recorded without a setting is a setting of its own."""
    from gankit.app import sweep as sweep_module

    state = {"config": {}, "trials": {r["name"]: r for r in [
        _row("a_seed2", "X", 2, ema=6.0, trained=9.0), _row("a", "X", 0, ema=5.0, trained=7.0),
        _row("a_seed1", "X", 1, ema=8.0, trained=4.0),
        _row("a_failed", "X", 3, ema=0.1, status="failed"),
        _row("b", "Y", 0, trained=3.0), _row("b_seed1", "Y", 1, trained=5.0),
        _row("c", None, 0, ema=1.0, trained=1.0), _row("d", ["garbled"], 0, ema=2.0)]}}
    groups = sweep_module.settings(state)
    assert [g["trials"] for g in groups] == [["c"], ["d"], ["b", "b_seed1"],
                                             ["a", "a_seed1", "a_seed2"]]
    a = groups[-1]
    assert a["seeds"] == [0, 1, 2] and a["what"] == "what a"
    assert a["ema"] == {"median": 6.0, "min": 5.0, "max": 8.0, "n": 3}
    assert a["trained"] == {"median": 7.0, "min": 4.0, "max": 9.0, "n": 3}
    assert groups[2]["ema"] is None and groups[2]["trained"]["median"] == 4.0
    rows = list(csv.DictReader(sweep_module.settings_csv(state).splitlines(keepends=True)))
    assert [(r["setting"], r["trials"], r["seeds"], r["n"]) for r in rows][-1] == \
        ("a", "a a_seed1 a_seed2", "0 1 2", "3")
    assert (rows[-1]["median_fid_ema"], rows[-1]["min_fid_ema"], rows[-1]["max_fid_trained"]) \
        == ("6", "5", "9")
    assert rows[2]["median_fid_ema"] == "" and rows[2]["median_fid_trained"] == "4"
    lines = sweep_module.report(state).splitlines()
    assert "By setting, over its seeds:" in lines
    assert lines[-2:] == [
        "| what b | `b` (0), `b_seed1` (1) | – | 4.00 (3.00–5.00) |",
        "| what a | `a` (0), `a_seed1` (1), `a_seed2` (2) | 6.00 (5.00–8.00) "
        "| 7.00 (4.00–9.00) |"]
    page = sweep_module.page(state)
    assert "By setting, over its seeds" in page and "6.00 (5.00–8.00)" in page
    singles = {"config": {}, "trials": {"c": _row("c", "Z", 0, trained=1.0)}}
    assert sweep_module.settings_table(singles) == ""
    assert sweep_module.report(singles) == sweep_module.table(singles)


def test_the_plan_gives_the_seeds_of_one_setting_one_digest(files, tmp_path):
    from gankit.app.sweep import plan_sweep

    (tmp_path / "t.yaml").write_text(yaml.safe_dump({
        "a": {}, "a9": {"set": {"train.seed": 9}}, "b": {"set": {"train.steps": 5}},
        "b9": {"set": {"train.steps": 5, "train.seed": 9}}}))
    plan = plan_sweep(str(files / "base.yaml"), str(tmp_path / "t.yaml"), minutes=1,
                      reference=None, train=str(files / "frogs"), holdout=0.5, n=6,
                      extractor_overrides=[f"extractor.path={files / 'clf.keras'}"],
                      out=str(tmp_path / "out"))
    a, a9, b, b9 = plan.trials
    assert (a.seed, a9.seed, b.seed, b9.seed) == (3, 9, 3, 9)
    assert a.setting == a9.setting != b.setting == b9.setting
    assert len({a.fingerprint, a9.fingerprint, b.fingerprint, b9.fingerprint}) == 4


def test_a_hand_edited_state_still_gives_a_table_and_files(tmp_path, capsys):
    """--table, results.csv, scores.csv and index.html leave out what a garbled sweep.json
    holds instead of failing on it."""
    from gankit.app import sweep as sweep_module

    state = {"config": {}, "trials": {
        "good": {"name": "good", "what": "a | b\nc", "status": "scored", "steps": 12,
                 "images_seen": 24, "scores": {"end": {"trained": {
                     "fid": 3.5, "kid": 0.1, "kid_std": 0.01}, "step": 12}}},
        "text": {"name": "text", "status": "scored", "steps": "x",
                 "scores": {"end": {"ema": {"fid": "q"}}}},
        "list": {"status": "scored", "scores": []},
        "bool": {"name": "bool", "status": "scored", "scores": {"end": {"trained": {"fid": True}},
                                                                  "minute_1": 3}}}}
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "sweep.json").write_text(json.dumps(state))
    (tmp_path / "t.yaml").write_text("good: {}\n")
    assert main(["sweep", str(ROOT / "recipes" / "frog_fast.yaml"), "--trials",
                 str(tmp_path / "t.yaml"), "--minutes", "1", "--out", str(tmp_path / "out"),
                 "--table"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == ("| `good` | a \\| b c | 12 | 24 | – | – | 3.50 | 0.100 ± 0.010 |")
    assert sum("damaged entry" in line for line in lines) == 3
    rows = list(csv.DictReader(sweep_module.results_csv(state).splitlines(keepends=True)))
    assert (rows[0]["trial"], rows[0]["fid_trained"]) == ("good", "3.5")
    scores = list(csv.reader(sweep_module.scores_csv(state).splitlines()))[1:]
    assert [(r[0], r[5]) for r in scores] == [("good", "3.5"), ("text", ""), ("bool", "")]
    assert "grids/good-trained.png" in sweep_module.page(state)
    settings = list(csv.DictReader(sweep_module.settings_csv(state).splitlines(keepends=True)))
    assert [(r["setting"], r["median_fid_trained"]) for r in settings][0] == ("good", "3.5")


@pytest.mark.parametrize("base, trials", [
    ("benchmarks/frog_fast_sweep_base.yaml", "benchmarks/sweeps/frog_fast_amx.yaml"),
    ("benchmarks/sweeps/frog_fast_040.yaml", "benchmarks/sweeps/frog_fast_avx2_5min.yaml"),
    ("benchmarks/sweeps/frog_fast_040.yaml", "benchmarks/sweeps/frog_fast_avx2_15min.yaml"),
    ("recipes/frog_fast.yaml", "benchmarks/sweeps/frog_fast_avx2_steps.yaml"),
    ("recipes/frog_fast.yaml", "benchmarks/sweeps/frog_fast_avx2_round9.yaml"),
    ("recipes/frog_fast.yaml", "benchmarks/sweeps/frog_fast_avx2_round9_long.yaml"),
    ("recipes/frog_fast.yaml", "benchmarks/sweeps/frog_fast_avx2_round10.yaml"),
    ("recipes/frog_fast.yaml", "benchmarks/sweeps/frog_fast_avx2_round10_steps.yaml"),
    ("recipes/frog_fast.yaml", "benchmarks/sweeps/frog_fast_avx2_round11.yaml"),
    ("recipes/frog_fast.yaml", "benchmarks/sweeps/frog_fast_avx2_round12.yaml"),
    ("recipes/frog_fast.yaml", "benchmarks/sweeps/frog_fast_avx2_round13.yaml"),
])
def test_the_shipped_sweeps_plan(files, tmp_path, monkeypatch, base, trials):
    """Every trial of the frog_fast sweeps in benchmarks/sweeps/ is a recipe gankit accepts,
    as docs/frog_fast.md runs them (the projected trials find their backbone in classifiers/
    of the folder the sweep runs from)."""
    from gankit.app.sweep import plan_sweep

    monkeypatch.chdir(tmp_path)
    (tmp_path / "classifiers").mkdir()
    zipfile.ZipFile(tmp_path / "classifiers" / "backbone_w16_s1.keras", "w").close()  # checked as a zip
    plan = plan_sweep(str(ROOT / base), str(ROOT / trials), minutes=2.7,
                      reference=None, train=str(files / "frogs"), holdout=0.5, n=6,
                      extractor_overrides=[f"extractor.path={files / 'clf.keras'}"],
                      snapshot_minutes=[0.9, 1.8], out=str(tmp_path / "out"))
    assert len(plan.trials) == len(yaml.safe_load((ROOT / trials).read_text()))
    assert all(t.digest for t in plan.trials)
