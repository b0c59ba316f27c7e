"""The recipe's metrics section: values in losses.csv on their steps, best/ kept apart,
`gankit sample --best`, and the report written at the end of the run."""

import csv
import json
import sys
from pathlib import Path

import keras
import pytest
import yaml

from gankit.cli.main import main

sys.path.insert(0, str(Path(__file__).parents[1] / "reliability"))
from reliability_kit import recipe_dict, write_images  # noqa: E402


@pytest.fixture
def classifier(tmp_path):
    model = keras.Sequential([keras.Input((24, 24, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(name="features"),
                              keras.layers.Dense(5, name="logits")])
    path = tmp_path / "classifier.keras"
    model.save(path)
    return path


def test_metrics_are_logged_and_the_best_generator_is_kept(tmp_path, classifier, capsys):
    images = write_images(tmp_path / "images")
    recipe = recipe_dict(images, train={"steps": 6, "checkpoint_every": 3})
    recipe["ema"] = {"decay": 0.5}
    recipe["metrics"] = {"use": ["fid", "kid"], "every": 3, "samples": 16,
                         "extractor": {"type": "keras_model", "path": str(classifier)}}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    run = tmp_path / "run"
    assert main(["run", str(path), "--out", str(run), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "step 3: fid " in err and "step 6: fid " in err
    rows = list(csv.DictReader((run / "losses.csv").open()))
    assert [r["step"] for r in rows if r["fid"]] == ["3", "6"]
    assert all(r["kid"] == "" for r in rows if r["step"] not in ("3", "6"))
    best = json.loads((run / "best" / "best.json").read_text())
    assert best["name"] == "fid" and best["step"] in (3, 6)
    assert best["value"] == pytest.approx(min(float(r["fid"]) for r in rows if r["fid"]), rel=1e-5)
    assert (run / "best" / "generator_ema.keras").is_file()
    assert (run / "report.html").is_file()
    assert main(["sample", str(run), "--best", "-n", "4", "--out", str(tmp_path / "b.png")]) == 0
    # a resumed run keeps comparing with the saved best
    assert main(["resume", str(run), "--set", "train.steps=9", "--quiet"]) == 0
    rows = list(csv.DictReader((run / "losses.csv").open()))
    assert [r["step"] for r in rows if r["fid"]] == ["3", "6", "9"]
    best = json.loads((run / "best" / "best.json").read_text())
    assert best["value"] == pytest.approx(min(float(r["fid"]) for r in rows if r["fid"]), rel=1e-5)


def test_a_bad_metrics_section_is_one_line(tmp_path, capsys):
    images = write_images(tmp_path / "images")
    recipe = recipe_dict(images)
    recipe["metrics"] = {"use": ["fid", "fdi"]}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "metrics.use[1].type: no metric named 'fdi' (did you mean 'fid'?)" in err
    assert err.count("\n") == 1


def test_reference_samples_beyond_the_data_is_refused_before_the_run_directory(
        tmp_path, classifier, capsys):
    """Hardening round three: 0.4 created the run directory first and left it `failed`."""
    images = write_images(tmp_path / "images")  # 24 images
    recipe = recipe_dict(images, train={"steps": 4})
    recipe["metrics"] = {"use": ["fid"], "every": 2, "samples": 8, "reference_samples": 500,
                         "extractor": {"type": "keras_model", "path": str(classifier)}}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    run = tmp_path / "run"
    assert main(["run", str(path), "--out", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("gankit: error: metrics.reference_samples is 500 but the "
                              "training data holds 24 images")
    assert not run.exists()


@pytest.fixture(autouse=True)
def _reference_cache_in_tmp(tmp_path, monkeypatch):
    """Training-time metrics cache the training data's features: here, not in ~/.cache."""
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path / "cache"))


def test_a_run_with_metrics_caches_the_reference_features_and_the_next_run_reads_them(
        tmp_path, classifier, capsys):
    """Issue 21, item 6: the run said "(cached after the first run)" and never wrote the
    cache, with every extractor (here the built-in keras_model)."""
    import numpy as np

    images = write_images(tmp_path / "images", count=8)
    recipe = recipe_dict(images, train={"steps": 2, "checkpoint_every": 2})
    recipe["metrics"] = {"use": ["fid"], "every": 2, "samples": 8,
                         "extractor": {"type": "keras_model", "path": str(classifier)}}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["run", str(path), "--out", str(tmp_path / "one"), "--quiet"]) == 0
    first = capsys.readouterr().err
    assert "computing the training data's features for fid" in first
    entries = sorted((tmp_path / "cache" / "reference").glob("*.npz"))
    assert len(entries) == 1 and entries[0].with_suffix(".json").is_file()
    meta = json.loads(entries[0].with_suffix(".json").read_text())
    assert meta["n"] == 8 and meta["protocol"]["type"] == "keras_model"
    fid = [float(r["fid"]) for r in csv.DictReader((tmp_path / "one" / "losses.csv").open())
           if r["fid"]]
    # The second run reads the entry: features moved far away there move its FID.
    with np.load(entries[0]) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["features"] = arrays["features"] + 100.0
    np.savez(entries[0], **arrays)
    assert main(["run", str(path), "--out", str(tmp_path / "two"), "--quiet"]) == 0
    second = capsys.readouterr().err
    assert "computing the training data's features" not in second
    assert "the training data's features for fid come from the cache" in second
    moved = [float(r["fid"]) for r in csv.DictReader((tmp_path / "two" / "losses.csv").open())
             if r["fid"]]
    assert moved[-1] > fid[-1] + 1000.0
