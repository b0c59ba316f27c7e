"""``gankit evaluate``: values checked against an independent computation, the reference
cache, generator sources, and user mistakes as one line with exit code 2."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from tiny import tiny_classifier

from gankit.cli.main import main
from gankit.evaluation.features import ImageFolderSource, ReferenceCache, evaluate
from gankit_metrics.extractors import KerasModelExtractor
from gankit_metrics.metrics import FIDMetric

ROOT = Path(__file__).resolve().parents[2]
SIZE = 12


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(folder))
    return folder


def _write_folder(folder, n, seed, brightness=0.0, size=SIZE):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        pixels = np.clip(rng.normal(128 + brightness, 60, (size, size, 3)), 0, 255)
        Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    return {"fake": _write_folder(root / "fake", 40, seed=1, brightness=30.0),
            "real": _write_folder(root / "real", 50, seed=2),
            "classifier": tiny_classifier(root / "clf.keras", SIZE)}


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _independent_fid(classifier, fake_folder, real_folder):
    """Features with Keras directly, FID with numpy's general eigenvalues."""
    import keras

    model = keras.models.load_model(classifier, compile=False)
    pool = keras.Model(model.inputs[0], model.get_layer("pool").output)

    def stats(folder):
        images = np.stack([np.asarray(Image.open(f).convert("RGB"))
                           for f in sorted(folder.glob("*.png"))]).astype(np.float32) / 255.0
        features = np.asarray(pool(images), dtype=np.float64)
        return features.mean(axis=0), np.cov(features, rowvar=False)

    (m1, s1), (m2, s2) = stats(fake_folder), stats(real_folder)
    trace_root = np.sqrt(np.linalg.eigvals(s1 @ s2).real.clip(0)).sum()
    return ((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * trace_root


def _evaluate_folder(capsys, data, tmp_path, *extra, name="result.json"):
    out = tmp_path / name
    code, stdout, err = run_cli(capsys, "evaluate", data["fake"], "--metric", "fid",
                                "--reference", data["real"], "--extractor", "keras_model",
                                "--set", f"extractor.path={data['classifier']}",
                                "--json", out, *extra)
    assert code == 0, err
    return json.loads(out.read_text()), stdout, err


def test_fid_of_a_folder_matches_an_independent_computation(capsys, data, tmp_path):
    result, stdout, _ = _evaluate_folder(capsys, data, tmp_path, "--metric", "kid",
                                         "--set", "kid.subsets=5")
    expected = _independent_fid(data["classifier"], data["fake"], data["real"])
    assert expected > 0.01
    assert result["values"]["fid"] == pytest.approx(expected, rel=1e-3)
    assert list(result["values"]) == ["fid", "kid", "kid_std"]
    assert result["n_fake"] == 40 and result["n_real"] == 50
    protocol = result["protocol"]
    assert protocol["extractor"]["type"] == "keras_model"
    assert protocol["extractor"]["layer"] == "pool"
    assert protocol["metrics"]["kid"] == {"subsets": 5, "subset_size": 1000}
    assert stdout.splitlines()[0].split()[0] == "fid"
    assert f"wrote {tmp_path / 'result.json'}" in stdout


def test_the_reference_is_cached_and_a_changed_folder_invalidates_it(capsys, data, tmp_path,
                                                                       monkeypatch):
    seen = []
    real_extract = KerasModelExtractor.extract
    monkeypatch.setattr(KerasModelExtractor, "extract",
                        lambda self, images: seen.append(len(images)) or real_extract(self, images))
    real = Path(shutil.copytree(data["real"], tmp_path / "real"))
    args = ("evaluate", data["fake"], "--metric", "fid", "--reference", real, "--extractor",
            "keras_model", "--set", f"extractor.path={data['classifier']}", "--json")

    def evaluated(name):
        seen.clear()
        code, _, err = run_cli(capsys, *args, tmp_path / name)
        assert code == 0, err
        return json.loads((tmp_path / name).read_text()), sum(seen), err

    first, images, _ = evaluated("1.json")
    assert not first["reference_cached"] and images == 40 + 50
    second, images, err = evaluated("2.json")
    assert second["reference_cached"] and images == 40  # only the generated side
    assert "reference features from the cache" in err
    assert second["values"] == first["values"]

    Image.fromarray(np.zeros((SIZE, SIZE, 3), np.uint8)).save(real / "000.png")
    third, images, _ = evaluated("3.json")
    assert not third["reference_cached"] and images == 40 + 50
    assert third["values"]["fid"] != first["values"]["fid"]
    assert len(list((tmp_path / "cache" / "reference").glob("*.json"))) == 2


def test_a_corrupt_cache_entry_is_recomputed_with_a_warning(capsys, data, tmp_path, cache_dir):
    first, _, _ = _evaluate_folder(capsys, data, tmp_path, name="a.json")
    [entry] = (cache_dir / "reference").glob("*.npz")
    meta = json.loads(entry.with_suffix(".json").read_text())
    assert meta["n"] == 50 and meta["protocol"]["type"] == "keras_model" and meta["created"]
    entry.write_bytes(b"garbage")
    again, _, err = _evaluate_folder(capsys, data, tmp_path, name="b.json")
    assert "gankit: warning: the cached reference features" in err and "unreadable" in err
    assert not again["reference_cached"] and again["values"] == first["values"]
    third, _, _ = _evaluate_folder(capsys, data, tmp_path, name="c.json")
    assert third["reference_cached"]
    entry.write_bytes(entry.read_bytes()[:-40])  # truncated, as by a full disk
    fourth, _, err = _evaluate_folder(capsys, data, tmp_path, name="d.json")
    assert "unreadable" in err and not fourth["reference_cached"]
    assert fourth["values"] == first["values"]


def test_a_recipe_dataset_as_reference_equals_its_folder(capsys, data, tmp_path):
    real = _write_folder(tmp_path / "real24", 30, seed=5, size=24)  # the frog nets' size
    recipe = yaml.safe_load((ROOT / "recipes" / "frog_dcgan.yaml").read_text())
    recipe["dataset"] = {"type": "image_folder", "path": str(real), "height": 24,
                         "width": 24, "scale": [-1.0, 1.0]}
    for key in ("generator", "discriminator"):
        recipe[key].update(height=24, width=24)
    (tmp_path / "ref.yaml").write_text(yaml.safe_dump(recipe))
    # just a dataset section, its path relative to the file, is enough
    (tmp_path / "only.yaml").write_text(yaml.safe_dump({"dataset": {**recipe["dataset"],
                                                                    "path": "real24"}}))
    results = {}
    for name, reference in (("folder", real), ("recipe", tmp_path / "ref.yaml"),
                            ("only", tmp_path / "only.yaml")):
        code, _, err = run_cli(capsys, "evaluate", data["fake"], "--metric", "fid",
                               "--reference", reference, "--extractor", "keras_model", "--set",
                               f"extractor.path={data['classifier']}", "--json",
                               tmp_path / f"{name}.json")
        assert code == 0, err
        results[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert results["recipe"]["protocol"]["reference"] == f"dataset image_folder of {tmp_path}/ref.yaml"
    for name in ("recipe", "only"):
        assert results[name]["values"]["fid"] == pytest.approx(
            results["folder"]["values"]["fid"], rel=1e-9)


def test_the_library_api(data, tmp_path):
    extractor = KerasModelExtractor(path=str(data["classifier"]))
    cache = ReferenceCache(tmp_path / "lib-cache")
    result = evaluate(ImageFolderSource(data["fake"]), ImageFolderSource(data["real"]),
                      extractor, [FIDMetric()], n=20, reference_n=30, cache=cache,
                      progress=False)
    assert (result.n_fake, result.n_real) == (20, 30)
    assert json.loads(result.to_json())["values"]["fid"] == result.values["fid"]
    assert len(list(cache.root.glob("*.npz"))) == 1


def _generator_and_its_images(tmp_path, latents):
    """A tiny tanh generator of 5-long latents saved as ``gen.keras``, and the images it
    makes of ``latents`` written as PNGs by hand ([-1, 1] -> 8 bits) in ``samples/``."""
    import keras

    keras.utils.set_random_seed(3)
    latent = keras.Input((5,))
    x = keras.layers.Dense(SIZE * SIZE * 3, activation="tanh")(latent)
    generator = keras.Model(latent, keras.layers.Reshape((SIZE, SIZE, 3))(x))
    generator.save(tmp_path / "gen.keras")
    pixels = np.clip(np.rint((np.asarray(generator(latents)) + 1) / 2 * 255), 0, 255)
    folder = tmp_path / "samples"
    folder.mkdir()
    for i, image in enumerate(pixels.astype(np.uint8)):
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    return folder


def test_a_keras_generator_is_scored_on_seeded_latents(capsys, data, tmp_path):
    # the same images, written as PNGs by hand: latents from default_rng(seed)
    folder = _generator_and_its_images(
        tmp_path, np.random.default_rng(4).standard_normal((30, 5)).astype(np.float32))
    common = ("--metric", "fid", "--reference", data["real"], "--extractor", "keras_model",
              "--set", f"extractor.path={data['classifier']}", "--json")
    code, _, err = run_cli(capsys, "evaluate", tmp_path / "gen.keras", "-n", 30, "--seed", 4,
                           "--batch-size", 7, *common, tmp_path / "gen.json")
    assert code == 0, err
    code, _, err = run_cli(capsys, "evaluate", folder, *common, tmp_path / "png.json")
    assert code == 0, err
    from_model = json.loads((tmp_path / "gen.json").read_text())
    from_pngs = json.loads((tmp_path / "png.json").read_text())
    assert from_model["n_fake"] == 30
    assert from_model["values"]["fid"] == pytest.approx(from_pngs["values"]["fid"], rel=1e-6)


def test_a_keras_generator_is_scored_on_truncated_latents(capsys, data, tmp_path):
    from gankit.util.latents import draw_latents

    # drawn all at once here, batch after batch (7 a time) by gankit: the same latents
    folder = _generator_and_its_images(tmp_path,
                                       draw_latents(np.random.default_rng(4), (30, 5), 0.8))
    common = ("--metric", "fid", "--reference", data["real"], "--extractor", "keras_model",
              "--set", f"extractor.path={data['classifier']}", "--json")
    for name, extra in (("cut.json", ("--truncation", "0.8")), ("plain.json", ())):
        code, _, err = run_cli(capsys, "evaluate", tmp_path / "gen.keras", "-n", 30, "--seed", 4,
                               "--batch-size", 7, *extra, *common, tmp_path / name)
        assert code == 0, err
    code, _, err = run_cli(capsys, "evaluate", folder, *common, tmp_path / "png.json")
    assert code == 0, err
    cut, plain, from_pngs = (json.loads((tmp_path / name).read_text())
                             for name in ("cut.json", "plain.json", "png.json"))
    assert cut["values"]["fid"] == pytest.approx(from_pngs["values"]["fid"], rel=1e-6)
    assert cut["values"]["fid"] != pytest.approx(plain["values"]["fid"], rel=1e-3)
    assert cut["protocol"]["truncation"] == 0.8 and "truncation" not in plain["protocol"]
    assert cut["protocol"]["source"].endswith("latents truncated to [-0.8, 0.8]")
    code, _, err = run_cli(capsys, "evaluate", folder, "--truncation", "0.8", *common,
                           tmp_path / "x.json")
    assert code == 2 and err == (f"gankit: error: --truncation is for a run directory or a "
                                 f".keras generator; {folder} is a folder of images\n")


def test_a_run_directory_and_its_best_generator(capsys, data, tmp_path):
    from gankit.cli.main import main as gankit

    recipe = {
        "name": "tiny",
        "generator": {"type": "frog_dcgan", "latent_dim": 4, "height": 24, "width": 24,
                      "base_filters": 4, "filters": 4},
        "discriminator": {"type": "frog_dcgan", "height": 24, "width": 24, "filters": 4},
        "dataset": {"type": "image_folder", "path": str(data["real"]), "height": 24,
                    "width": 24, "on_size_mismatch": "resize", "scale": [-1.0, 1.0]},
        "loss": "bce", "ema": {"decay": 0.9},
        # float32: a run directory's checkpoint is sampled in float32, which equals the
        # saved generator only when the run computed in float32 too
        "train": {"steps": 2, "batch_size": 4, "checkpoint_every": 2, "grid_every": 2,
                  "sample_every": 2, "grid_size": 1, "precision": "float32"},
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(recipe))
    run = tmp_path / "run"
    assert gankit(["run", str(tmp_path / "tiny.yaml"), "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    common = ("--metric", "fid", "--reference", data["real"], "--extractor", "keras_model",
              "--set", f"extractor.path={data['classifier']}", "-n", 16)
    code, stdout, err = run_cli(capsys, "evaluate", run, *common)
    assert code == 0, err
    [written] = run.glob("evaluation-*.json")  # beside the run by default
    result = json.loads(written.read_text())
    assert result["n_fake"] == 16 and "EMA" in result["protocol"]["source"]
    # the saved EMA generator in the dataset's [-1, 1] range gives the same images
    code, _, err = run_cli(capsys, "evaluate", run / "generator_ema.keras", *common,
                           "--json", tmp_path / "saved.json")
    assert code == 0, err
    saved = json.loads((tmp_path / "saved.json").read_text())
    assert saved["values"]["fid"] == pytest.approx(result["values"]["fid"], rel=1e-6)

    code, _, err = run_cli(capsys, "evaluate", run, "--best", *common)
    assert code == 2 and "has no best generator" in err and err.count("\n") == 1
    (run / "best").mkdir()
    shutil.copy(run / "generator_ema.keras", run / "best" / "generator_ema.keras")
    code, _, err = run_cli(capsys, "evaluate", run, "--best", *common, "--json",
                           tmp_path / "best.json")
    assert code == 0, err
    best = json.loads((tmp_path / "best.json").read_text())
    assert "best/generator_ema.keras" in best["protocol"]["source"]
    assert best["values"]["fid"] == pytest.approx(result["values"]["fid"], rel=1e-6)


@pytest.mark.parametrize("args, message", [
    (["--metric", "fdi"], "--metric: no metric named 'fdi' (did you mean 'fid'?); registered "
                          "metrics: class_accuracy (gankit), fid (gankit), inception_score "
                          "(gankit), intra_fid (gankit), kid (gankit), precision_recall (gankit)"),
    (["--metric", "fid", "--reference", "{tmp}/nowhere"],
     "--reference: {tmp}/nowhere does not exist; expected a folder of images or a recipe .yaml"),
    (["--metric", "fid", "--set", "extractor.pth=x.keras"],
     "extractor.pth: unknown key (did you mean 'path'?); valid keys here: class_names, "
     "input_range, layer, logits_layer, path"),
    (["--metric", "fid", "--set", "kid.subsets=3"], "--set kid.subsets: 'kid' is neither "
                                                    "'extractor' nor a --metric given"),
    (["--metric", "kid", "--set", "kid.subsets=0"], "kid.subsets: expected an integer in "
                                                    "[1, 100000], got 0"),
    (["--metric", "fid", "-n", "0"], "-n must be between 2 and 1,000,000, got 0"),
    (["--metric", "fid", "--extractor", "inception"],
     "--extractor: no feature_extractor named 'inception' (did you mean 'inception_v3'?)"),
    (["--metric", "fid", "--best"], "--best is for a run directory or a .keras generator"),
    (["--metric", "fid", "--set", "extractor.path={tmp}/none.keras"],
     "extractor.path: {tmp}/none.keras does not exist; expected a .keras model file"),
    ([], "name at least one metric, e.g. --metric fid"),
    (["--metric", "fid", "--truncation", "0"], "--truncation must be between 0.01 and 10"),
    (["--metric", "fid", "--truncation", "nan"], "--truncation must be between 0.01 and 10"),
])
def test_mistakes_are_one_line_and_exit_2(capsys, data, tmp_path, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--reference" not in args:
        args += ["--reference", str(data["real"])]
    if "--extractor" not in args:
        args += ["--extractor", "keras_model"]
        if not any(a.startswith("extractor.") for a in args):
            args += ["--set", f"extractor.path={data['classifier']}"]
    code, out, err = run_cli(capsys, "evaluate", data["fake"], *args)
    assert code == 2
    err = re.sub(r"\w+ \((?!gankit\))[\w.-]+\), ", "", err)  # an installed third-party plugin's
    assert err.startswith("gankit: error: ") and message.replace("{tmp}", str(tmp_path)) in err, err
    assert err.count("\n") == 1 and not out


def test_mistakes_are_answered_before_tensorflow_loads(tmp_path):
    (tmp_path / "fake").mkdir()
    code = ("import sys; from gankit.cli.main import main; "
            f"code = main(['evaluate', {str(tmp_path / 'fake')!r}, '--metric', 'fid', "
            f"'--reference', {str(tmp_path)!r}]); "
            "print(code, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["2", "False"]
    assert out.stderr.strip() == (f"gankit: error: --reference folder {tmp_path} holds no "
                                  f".png/.jpg/.jpeg images (subfolders are not read)")
