"""Class-conditional runs after training: class names in run.json, per-class grids (in
training and from `gankit sample --label/--per-class`), intra-FID and the classifier's
per-class accuracy (their math, `gankit evaluate`, the recipe's metrics section, the report)."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from gankit.app.sample import plan_sample, sample_grid
from gankit.cli.main import main
from gankit.errors import GankitError
from gankit.interfaces import Features
from gankit.rundir.run_dir import RunDir
from gankit.util.images import label_rows, make_grid, to_uint8
from gankit_metrics import math as metric_math
from gankit_metrics.metrics import ClassAccuracyMetric, FIDMetric, IntraFIDMetric

CLASSES = ("cat", "dog", "frog")
# The classifier knows one class more, in another order: logits are matched by name.
CLASSIFIER_CLASSES = ["frog", "airplane", "cat", "dog"]
LATENT, GRID, STEPS, SEED = 8, 3, 4, 1


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path / "cache"))


def _write_classes(root: Path, per_class: int = 6) -> Path:
    """32x32 PNGs in one sub-folder per class, each class a different brightness."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(rng.normal(60 + 60 * c, 30, (32, 32, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def _write_classifier(path: Path, centres) -> Path:
    """A fake classifier: features are the mean colour, and logit k is highest for the
    class whose centre (a mean brightness in [0, 1]) is nearest: 2 c_k m - c_k^2 summed
    over the channels. Its report names the classes, as gankit train-classifier's does."""
    import keras

    inputs = keras.Input((32, 32, 3))
    features = keras.layers.GlobalAveragePooling2D(name="features")(inputs)
    logits = keras.layers.Dense(len(centres), name="logits")(features)
    model = keras.Model(inputs, logits)
    c = np.asarray(centres, np.float32)
    model.get_layer("logits").set_weights([np.tile(2 * c, (3, 1)), -3 * c ** 2])
    model.save(path)
    path.with_suffix(".json").write_text(json.dumps({"classes": CLASSIFIER_CLASSES}))
    return path


@pytest.fixture(scope="module")
def conditional(tmp_path_factory):
    """A 4-step run of a tiny conditional DCGAN on three classes, with per-class metrics."""
    root = tmp_path_factory.mktemp("per_class")
    data = _write_classes(root / "data")
    classifier = _write_classifier(root / "classifier.keras", [0.8, 0.05, 0.2, 0.5])
    recipe = {
        "name": "conditional",
        "generator": {"type": "dcgan", "latent_dim": LATENT, "base_filters": 4,
                      "num_classes": 3},
        "discriminator": {"type": "dcgan", "base_filters": 4, "num_classes": 3},
        "dataset": {"type": "image_folder", "path": str(data), "labels": True,
                    "scale": [-1.0, 1.0]},
        "loss": "hinge",
        "train": {"steps": STEPS, "batch_size": 4, "seed": SEED, "sample_every": 2,
                  "grid_every": 2, "grid_size": GRID, "checkpoint_every": 2, "xla": "off"},
        "metrics": {"use": ["intra_fid", "class_accuracy"], "every": 2, "samples": 12,
                    "extractor": {"type": "keras_model", "path": str(classifier)}},
    }
    path = root / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    run = root / "run"
    old = Path.cwd()
    assert main(["run", str(path), "--out", str(run), "--quiet"]) == 0
    assert Path.cwd() == old
    return {"run": run, "data": data, "classifier": classifier, "root": root}


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path)).astype(np.int16)


def _generator(run: Path):
    import keras

    return keras.models.load_model(run / "generator.keras", compile=False)


def _close(a: np.ndarray, b: np.ndarray) -> None:
    """Equal up to a rounding step of a few pixels (a compiled and an eager call of the
    same model may differ in the last float bit)."""
    assert a.shape == b.shape
    assert np.abs(a - b).max() <= 1 and (a != b).mean() < 0.01


# --- run.json and the grids of training ---------------------------------------------------

def test_run_json_keeps_the_class_names(conditional):
    run = RunDir(conditional["run"])
    assert run.class_names() == CLASSES
    assert run.read_status()["class_names"] == list(CLASSES)


def test_training_grids_have_a_labelled_row_per_class_from_fixed_latents(conditional):
    run = conditional["run"]
    latents = np.random.default_rng([SEED, 1]).standard_normal((GRID, LATENT)).astype(np.float32)
    inputs = [np.tile(latents, (3, 1)), np.repeat(np.arange(3), GRID).astype(np.int32)]
    images = to_uint8(np.asarray(_generator(run)(inputs, training=False)), (-1.0, 1.0))
    expected = label_rows(make_grid(images, columns=GRID), CLASSES)
    grid = _pixels(run / "samples" / f"grid_{STEPS:06d}.png")
    _close(grid, expected.astype(np.int16))
    assert grid.shape[0] == 2 * (3 * 33 + 1) and grid.shape[1] > 2 * (GRID * 33 + 1)


# --- gankit sample --label / --per-class --------------------------------------------------

def test_per_class_grid_has_one_row_per_class_with_the_names_beside(conditional, tmp_path):
    out = sample_grid(conditional["run"], per_class=4, seed=5, out=tmp_path / "g.png")
    grid = _pixels(out)
    margin = grid.shape[1] - 2 * (4 * 33 + 1)
    assert grid.shape[0] == 2 * (3 * 33 + 1) and margin > 20
    for row in range(3):  # some dark text beside each row, and none beside the gaps
        band = grid[2 * (1 + 33 * row) + 8: 2 * (33 + 33 * row) - 8, :margin - 2]
        assert (band < 100).any(), row
    assert (grid[:2, :margin] == 255).all()
    # The same latents in every row: each row is `--label CLASS` with the same seed.
    rows = _tiles(grid[:, margin:][::2, ::2], 3, 4)
    for c, name in enumerate(CLASSES):
        alone = _pixels(sample_grid(conditional["run"], n=4, seed=5, label=name,
                                    out=tmp_path / f"{name}.png"))
        _close(np.stack(_tiles(alone[::2, ::2], 2, 2)), np.stack(rows[4 * c:4 * c + 4]))
    assert not np.array_equal(rows[0], rows[4])


def _tiles(grid: np.ndarray, rows: int, columns: int) -> list[np.ndarray]:
    """The 32x32 images of an (unscaled) grid with 1-pixel gaps, row by row."""
    assert grid.shape[:2] == (rows * 33 + 1, columns * 33 + 1)
    return [grid[1 + 33 * r:33 + 33 * r, 1 + 33 * c:33 + 33 * c]
            for r in range(rows) for c in range(columns)]


def test_label_by_name_or_index_draws_that_class(conditional, tmp_path):
    run = conditional["run"]
    by_name = sample_grid(run, n=4, seed=2, label="dog", out=tmp_path / "a.png")
    by_index = sample_grid(run, n=4, seed=2, label=1, out=tmp_path / "b.png")
    assert np.array_equal(_pixels(by_name), _pixels(by_index))
    latents = np.random.default_rng(2).standard_normal((4, LATENT)).astype(np.float32)
    images = np.asarray(_generator(run)([latents, np.full(4, 1, np.int32)], training=False))
    _close(_pixels(by_name)[::2, ::2], make_grid(to_uint8(images, (-1.0, 1.0))).astype(np.int16))
    other = sample_grid(run, n=4, seed=2, label="cat", out=tmp_path / "c.png")
    assert not np.array_equal(_pixels(other), _pixels(by_name))
    # default file names say which class
    assert plan_sample(run, label="frog").out.name == "sample_class2_seed0.png"
    assert plan_sample(run, per_class=3).out.name == "sample_per_class3_seed0.png"


@pytest.mark.parametrize("args, message", [
    (["--label", "forg"], "--label: no class named 'forg' (did you mean 'frog'?); the run's "
                          "classes: cat, dog, frog"),
    (["--label", "3"], "--label 3: out of range; the run has 3 classes, indices 0 to 2"),
    (["--label", "-1"], "--label -1: out of range"),
    (["--per-class", "2", "--label", "cat"], "--label and --per-class exclude each other"),
    (["--per-class", "2", "-n", "6"], "-n and --per-class exclude each other"),
    (["--per-class", "0"], "--per-class must be between 1 and 100, got 0"),
    (["--per-class", "101"], "--per-class must be between 1 and 100, got 101"),
], ids=["unknown-name", "index-too-big", "negative-index", "label-and-per-class",
        "n-and-per-class", "per-class-zero", "per-class-huge"])
def test_bad_label_requests_are_one_line_errors(conditional, capsys, args, message):
    assert main(["sample", str(conditional["run"]), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gankit: error: ") and message in err and "\n" not in err, err


def test_a_bad_label_is_answered_before_tensorflow_loads(conditional):
    code = ("import sys; from gankit.cli.main import main; "
            f"code = main(['sample', {str(conditional['run'])!r}, '--label', 'forg']); "
            "print(code, 'tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["2", "False"], result.stderr
    assert "no class named 'forg'" in result.stderr


# --- the metrics' math ----------------------------------------------------------------------

def test_intra_fid_is_the_mean_of_each_classs_fid():
    rng = np.random.default_rng(0)
    fake = rng.standard_normal((60, 5)) + np.repeat(np.arange(3), 20)[:, None] * 0.5
    real = rng.standard_normal((45, 5)) * 1.3
    fake_labels, real_labels = np.repeat(np.arange(3), 20), np.arange(45) % 3
    per_class = metric_math.per_class_fid(fake, fake_labels, real, real_labels, 3)
    for c in range(3):  # against numpy's own covariance and general eigenvalues
        a, b = fake[fake_labels == c], real[real_labels == c]
        s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        root = np.sqrt(np.linalg.eigvals(s1 @ s2).real.clip(0)).sum()
        expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1 + s2) - 2 * root
        assert per_class[c] == pytest.approx(expected, rel=1e-9)
        assert per_class[c] == pytest.approx(FIDMetric().compute(
            Features(a), Features(b), rng)["fid"], rel=1e-12)
    values = IntraFIDMetric().compute(Features(fake, None, fake_labels, CLASSES),
                                      Features(real, None, real_labels, CLASSES), rng)
    assert list(values) == ["intra_fid", "intra_fid/cat", "intra_fid/dog", "intra_fid/frog"]
    assert values["intra_fid"] == pytest.approx(per_class.mean(), rel=1e-12)
    assert [values[f"intra_fid/{c}"] for c in CLASSES] == pytest.approx(per_class, rel=1e-12)
    assert list(IntraFIDMetric(per_class=False).compute(
        Features(fake, None, fake_labels, CLASSES),
        Features(real, None, real_labels, CLASSES), rng)) == ["intra_fid"]


def test_class_accuracy_counts_the_largest_logit_per_class():
    logits = np.array([[5, 0, 0, 9],   # class 0 taken for an extra class: wrong
                       [5, 0, 0, 1],   # class 0: right
                       [0, 3, 1, 0],   # class 1: right
                       [0, 1, 3, 0],   # class 2: right
                       [3, 0, 1, 0]],  # class 2 taken for class 0: wrong
                      np.float64)
    labels = np.array([0, 0, 1, 2, 2])
    assert metric_math.per_class_accuracy(logits, labels, 3).tolist() == [0.5, 1.0, 0.5]
    values = ClassAccuracyMetric().compute(Features(np.zeros((5, 2)), logits, labels, CLASSES),
                                           None, np.random.default_rng(0))
    assert values == {"class_accuracy": pytest.approx(2 / 3), "class_accuracy/cat": 0.5,
                      "class_accuracy/dog": 1.0, "class_accuracy/frog": 0.5}


@pytest.mark.parametrize("call, message", [
    (lambda: metric_math.per_class_fid(np.zeros((4, 2)), np.array([0, 0, 1, 1]),
                                       np.zeros((3, 2)), np.array([0, 0, 1]), 2, ("a", "b")),
     "class 'b' has 2 generated and 1 real images"),
    (lambda: metric_math.per_class_fid(np.zeros((4, 2)), np.array([0, 0, 1, 3]),
                                       np.zeros((4, 2)), np.array([0, 0, 1, 1]), 2),
     "labels must lie in 0..1"),
    (lambda: metric_math.per_class_fid(np.zeros((4, 2)), np.array([0.0, 0, 1, 1]),
                                       np.zeros((4, 2)), np.array([0, 0, 1, 1]), 2),
     "must be 4 integer class indices"),
    (lambda: metric_math.per_class_accuracy(np.zeros((4, 2)), np.array([0, 1, 2, 0]), 3),
     "2 columns, fewer than the 3 classes"),
    (lambda: metric_math.per_class_accuracy(np.zeros((4, 3)), np.array([0, 1, 1, 0]), 3),
     "no image of class '2'"),
])
def test_per_class_math_refuses_what_it_cannot_compute(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_per_class_metrics_refuse_unlabelled_or_disagreeing_features():
    x = np.random.default_rng(0).standard_normal((6, 2))
    labels = np.arange(6) % 2
    with pytest.raises(GankitError, match="the generated images have no labels"):
        IntraFIDMetric().compute(Features(x), Features(x, None, labels), None)
    with pytest.raises(GankitError, match="the real images have no labels"):
        IntraFIDMetric().compute(Features(x, None, labels), Features(x), None)
    with pytest.raises(GankitError, match=r"classes \(a, b\) are not the real images' \(b, a\)"):
        IntraFIDMetric().compute(Features(x, None, labels, ("a", "b")),
                                 Features(x, None, labels, ("b", "a")), None)


# --- gankit evaluate and the Python API ---------------------------------------------------

def _brightness_generator(levels):
    """A tiny conditional generator: class c's images have brightness ``levels[c]`` (in
    [0, 1]) plus a little noise from the latents."""
    import keras

    latents, labels = keras.Input((4,)), keras.Input((), dtype="int32")
    level = keras.layers.Embedding(len(levels), 1, embeddings_initializer=keras.initializers
                                   .Constant(np.asarray(levels)[:, None] * 2 - 1))(labels)
    noise = keras.layers.Dense(32 * 32 * 3, use_bias=False,
                               kernel_initializer=keras.initializers.RandomNormal(0, 0.02))(latents)
    image = keras.layers.Reshape((32, 32, 3))(keras.layers.Add()([noise, level]))
    return keras.Model([latents, labels], image)


def test_evaluate_per_class_metrics_against_an_independent_computation(conditional, tmp_path):
    from gankit import create
    from gankit.evaluation.features import DatasetSource, GeneratorSource, evaluate
    from gankit_metrics.extractors import KerasModelExtractor

    # cat, dog, frog at the classifier's cat, frog (!), frog centres: dog is taken for frog
    generator = _brightness_generator([0.2, 0.8, 0.8])
    source = GeneratorSource(generator, num_classes=3, class_names=CLASSES)
    dataset = create("dataset", {"type": "image_folder", "path": str(conditional["data"]),
                                 "labels": True})
    reference = DatasetSource(dataset)
    extractor = KerasModelExtractor(path=str(conditional["classifier"]))
    result = evaluate(source, reference, extractor, [IntraFIDMetric(), ClassAccuracyMetric()],
                      n=30, seed=3, progress=False, cache=False)
    values = result.values
    assert values["class_accuracy/cat"] == 1.0 and values["class_accuracy/frog"] == 1.0
    assert values["class_accuracy/dog"] == 0.0
    assert values["class_accuracy"] == pytest.approx(2 / 3)
    assert result.protocol["classes"] == list(CLASSES)
    assert result.protocol["extractor"]["classes"] == CLASSIFIER_CLASSES

    # intra-FID: the classifier's features (mean colours) of each class, by hand
    import keras

    model = keras.models.load_model(conditional["classifier"], compile=False)
    pool = keras.Model(model.inputs[0], model.get_layer("features").output)
    z = np.random.default_rng(3).standard_normal((30, 4)).astype(np.float32)
    fake_labels = np.arange(30) % 3
    fake = to_uint8(np.asarray(generator([z, fake_labels.astype(np.int32)])), (-1, 1))
    fake = np.asarray(pool(fake.astype(np.float32) / 255), np.float64)
    real, real_labels = [], []
    for c, name in enumerate(CLASSES):
        for f in sorted((conditional["data"] / name).glob("*.png")):
            real.append(np.asarray(Image.open(f)))
            real_labels.append(c)
    real = np.asarray(pool(np.stack(real).astype(np.float32) / 255), np.float64)
    expected = metric_math.per_class_fid(fake, fake_labels, real, np.array(real_labels), 3)
    assert [values[f"intra_fid/{c}"] for c in CLASSES] == pytest.approx(expected, rel=1e-4)
    assert values["intra_fid"] == pytest.approx(expected.mean(), rel=1e-4)


def test_the_evaluate_command_scores_a_conditional_run(conditional, tmp_path, capsys):
    ref = tmp_path / "ref.yaml"
    ref.write_text(yaml.safe_dump({"dataset": {"type": "image_folder", "labels": True,
                                               "path": str(conditional["data"])}}))
    out = tmp_path / "e.json"
    args = ["evaluate", str(conditional["run"]), "--metric", "intra_fid", "--metric",
            "class_accuracy", "-n", "12", "--reference", str(ref), "--extractor",
            "keras_model", "--set", f"extractor.path={conditional['classifier']}", "--quiet"]
    assert main(args + ["--json", str(out)]) == 0
    assert capsys.readouterr().out.startswith("intra_fid ")
    values = json.loads(out.read_text())["values"]
    assert list(values) == ["intra_fid", *(f"intra_fid/{c}" for c in CLASSES),
                            "class_accuracy", *(f"class_accuracy/{c}" for c in CLASSES)]
    assert values["intra_fid"] == pytest.approx(np.mean([values[f"intra_fid/{c}"]
                                                         for c in CLASSES]))
    # the same 12 latents as the metrics section of the run (seed 1): the same values
    rows = list(csv.DictReader((conditional["run"] / "losses.csv").open()))
    last = next(r for r in reversed(rows) if r["intra_fid"])
    assert main(args + ["--seed", "1", "--json", str(tmp_path / "s.json")]) == 0
    again = json.loads((tmp_path / "s.json").read_text())["values"]
    assert again["intra_fid"] == pytest.approx(float(last["intra_fid"]), rel=1e-4)


@pytest.mark.parametrize("args, message", [
    (["--metric", "intra_fid", "--reference", "{unlabelled}"],
     "intra_fid compares each class with the real images of that class, and dataset "
     "image_folder of {unlabelled} has no labels; give --reference a recipe whose dataset "
     "has labels: true"),
    (["--metric", "intra_fid", "--reference", "{data}/cat"], "{data}/cat has no labels"),
    (["--metric", "class_accuracy"], "class_accuracy: the classifier's logits are matched "
                                     "with the generator's classes by name, and the extractor "
                                     "'inception_v3' does not name its classes"),
    (["--metric", "class_accuracy", "--extractor", "keras_model", "--set",
      "extractor.path={classifier}", "--set", "extractor.class_names=[cat, dog, horse, ship]"],
     "class_accuracy: the classifier knows no class 'frog'; its classes: cat, dog, horse, ship"),
    (["--metric", "class_accuracy", "--extractor", "keras_model", "--set",
      "extractor.path={classifier}", "--set", "extractor.class_names=[cat, cat]"],
     "extractor.class_names: expected distinct class names"),
    (["--metric", "intra_fid", "--reference", "{labelled}", "-n", "5"],
     "-n 5: intra_fid needs at least 2 generated image(s) of each of the 3 classes; give -n 6 "
     "or more"),
], ids=["unlabelled-dataset", "folder", "inception-has-no-names", "missing-class",
        "duplicate-names", "too-few-images"])
def test_per_class_evaluation_mistakes_are_one_line(conditional, tmp_path, capsys, args,
                                                     message):
    unlabelled, labelled = tmp_path / "u.yaml", tmp_path / "l.yaml"
    unlabelled.write_text(yaml.safe_dump({"dataset": {
        "type": "image_folder", "path": str(conditional["data"] / "cat")}}))
    labelled.write_text(yaml.safe_dump({"dataset": {
        "type": "image_folder", "path": str(conditional["data"]), "labels": True}}))
    fill = {"{unlabelled}": str(unlabelled), "{labelled}": str(labelled),
            "{data}": str(conditional["data"]),
            "{classifier}": str(conditional["classifier"])}
    for key, value in fill.items():
        args = [a.replace(key, value) for a in args]
        message = message.replace(key, value)
    assert main(["evaluate", str(conditional["run"]), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gankit: error: ") and message in err and err.count("\n") == 1, err


def test_per_class_metrics_need_a_conditional_source(conditional, capsys):
    assert main(["evaluate", str(conditional["data"] / "cat"), "--metric", "class_accuracy",
                 "--extractor", "keras_model", "--set",
                 f"extractor.path={conditional['classifier']}"]) == 2
    assert "is not a conditional generator" in capsys.readouterr().err


# --- the metrics section, validation and the report ---------------------------------------

def test_training_logs_each_classs_values_and_the_report_tables_them(conditional):
    run = conditional["run"]
    rows = list(csv.DictReader((run / "losses.csv").open()))
    measured = [r for r in rows if r["intra_fid"]]
    assert [r["step"] for r in measured] == ["2", "4"]
    for row in measured:
        for name in ("intra_fid", "class_accuracy"):
            per_class = [float(row[f"{name}/{c}"]) for c in CLASSES]
            assert float(row[name]) == pytest.approx(np.mean(per_class), rel=1e-5)
    best = json.loads((run / "best" / "best.json").read_text())
    assert best["name"] == "intra_fid" and "intra_fid/frog" in best["values"]
    report = (run / "report.html").read_text()
    section = report[report.index('id="per-class"'):report.index('id="curves"')]
    assert "<th>frog</th>" in section and "<th>class_accuracy</th>" in section
    assert "intra_fid/frog" not in report[report.index('id="curves"'):]


def _recipe(conditional, **changes) -> dict:
    recipe = yaml.safe_load((conditional["root"] / "recipe.yaml").read_text())
    for key, value in changes.items():
        section, _, name = key.partition(".")
        recipe[section][name] = value
    return recipe


@pytest.mark.parametrize("changes, message", [
    ({"dataset.labels": False, "generator.num_classes": 0, "discriminator.num_classes": 0},
     "metrics.use[0]: intra_fid scores the generated images of each class and needs labelled "
     "real images; set dataset.labels: true"),
    ({"metrics.extractor": {"type": "inception_v3"}, "metrics.use": ["class_accuracy"]},
     "metrics.use[0]: the classifier's logits are matched with the generator's classes by "
     "name, and the extractor 'inception_v3' does not name its classes"),
    ({"metrics.best": "intra_fid/frgo"}, "metrics.best: 'intra_fid/frgo' is not a value of "
                                         "the metrics (did you mean 'intra_fid/frog'?)"),
    ({"metrics.samples": 5}, "metrics.samples: intra_fid needs at least 2 generated images of "
                             "each of the 3 classes; set it to 6 or more"),
], ids=["unlabelled", "no-class-names", "best-per-class-typo", "too-few-samples"])
def test_per_class_metrics_in_a_recipe_are_checked_at_validation(conditional, tmp_path, capsys,
                                                                  changes, message):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(_recipe(conditional, **changes)))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
