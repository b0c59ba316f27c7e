"""``gankit export``: each format runs without gankit and gives the images ``gankit sample``
would (uint8, at most 1 apart); bad requests are one line, exit 2, before TensorFlow."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
from tiny import tiny_recipe

import gankit
from gankit.app.export import plan_export
from gankit.errors import GankitError
from gankit.util.images import to_uint8

RECIPE = tiny_recipe("export", {"steps": 2, "batch_size": 4, "seed": 1, "sample_every": 100,
                                "grid_every": 100, "grid_size": 2, "checkpoint_every": 2,
                                "precision": "float32"})
LATENT = RECIPE["generator"]["latent_dim"]

# Loads an export with the runtime named, no gankit imported, and saves its images.
RUNNERS = {
    "saved_model": """
import sys, numpy as np, tensorflow as tf
z = np.load(sys.argv[2])
model = tf.saved_model.load(sys.argv[1])  # kept: its functions need its variables
out = model.serve(z).numpy()
""",
    "keras": """
import sys, numpy as np, keras
z = np.load(sys.argv[2])
out = np.asarray(keras.saving.load_model(sys.argv[1])(z))
""",
    "onnx": """
import sys, numpy as np, onnxruntime as ort
z = np.load(sys.argv[2])
out = ort.InferenceSession(sys.argv[1]).run(None, {"latent": z})[0]
""",
    "litert": """
import sys, numpy as np
from ai_edge_litert.interpreter import Interpreter
z = np.load(sys.argv[2])
runner = Interpreter(model_path=sys.argv[1]).get_signature_runner()
out = next(iter(runner(latent=z).values()))
""",
}
TAIL = """
assert "gankit" not in sys.modules
np.save(sys.argv[3], out)
"""
NEEDS = {"onnx": ("tf2onnx", "onnxruntime"), "litert": ("ai_edge_litert",)}


@pytest.fixture(scope="module")
def run(tmp_path_factory, make_image_folder):
    images = make_image_folder(tmp_path_factory.mktemp("export") / "images", 8, 24)
    raw = json.loads(json.dumps(RECIPE))
    raw["dataset"]["path"] = str(images)
    return gankit.train(raw, out=tmp_path_factory.mktemp("run") / "run", quiet=True).run_dir


@pytest.mark.parametrize("fmt", ["saved_model", "keras", "onnx", "litert"])
def test_each_format_gives_the_images_of_the_generator_without_gankit(run, tmp_path, fmt):
    missing = [m for m in NEEDS.get(fmt, ()) if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (pip install 'gankit[export]')")
    from gankit.app.export import export

    plan = plan_export(run, fmt, out=tmp_path / ("frog" + {"saved_model": "", "onnx": ".onnx", "litert": ".tflite", "keras": ".keras"}[fmt]))
    card = export(plan)
    assert plan.out.exists() and card["format"] == fmt and card["latent_dim"] == LATENT
    card_file = plan.out / "model.json" if plan.out.is_dir() else \
        plan.out.with_name(plan.out.name + ".model.json")
    assert json.loads(card_file.read_text()) == card
    assert card["outputs"][0] == {"name": "images", "dtype": "uint8",
                                  "shape": [None, 24, 24, 3], "layout": "NHWC"}
    z = np.random.default_rng(0).standard_normal((64, LATENT)).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    done = subprocess.run([sys.executable, "-c", RUNNERS[fmt] + TAIL, str(plan.out),
                           str(tmp_path / "z.npy"), str(tmp_path / "out.npy")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    got = np.load(tmp_path / "out.npy")
    import keras

    generator = keras.saving.load_model(run / "generator.keras")
    expected = to_uint8(np.asarray(generator(z, training=False)), (0.0, 1.0))
    assert got.dtype == np.uint8 and got.shape == expected.shape == (64, 24, 24, 3)
    difference = np.abs(got.astype(int) - expected.astype(int))
    assert difference.max() <= 1 and (difference > 0).mean() <= 0.001


def test_a_conditional_generator_takes_the_class_index(tmp_path):
    import keras

    from gankit import create
    from gankit.app.export import export

    generator = create("generator", {"type": "dcgan", "latent_dim": 4, "base_filters": 4,
                                     "num_classes": 3})
    model = generator.build()
    model.save(tmp_path / "conditional.keras")
    plan = plan_export(tmp_path / "conditional.keras", "keras", out=tmp_path / "out.keras")
    card = export(plan)
    assert [i["name"] for i in card["inputs"]] == ["latent", "label"]
    exported = keras.saving.load_model(plan.out)
    z = np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32)
    y = np.arange(6, dtype=np.int32) % 3
    got = np.asarray(exported([z, y]))
    expected = to_uint8(np.asarray(model([z, y], training=False)), (-1.0, 1.0))
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


@pytest.mark.parametrize("args, message", [
    (["--format", "tiff"], "argument --format: invalid choice: 'tiff'"),
    (["--format", "onnx", "--best"], None),
])
def test_bad_requests_are_one_line_and_exit_2(run, tmp_path, args, message):
    done = subprocess.run([sys.executable, "-m", "gankit", "export", str(run), *args],
                          capture_output=True, text=True, timeout=120)
    if message is None:  # --best on a run without metrics, or onnx without its packages
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        return
    assert done.returncode == 2 and message in done.stderr and done.stderr.count("\n") == 1


def test_checks_before_tensorflow(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    with pytest.raises(GankitError, match="not a gankit run directory"):
        plan_export(tmp_path / "empty", "keras")
    (tmp_path / "empty" / "recipe.yaml").write_text("name: x\n")
    with pytest.raises(GankitError, match="has no generator yet"):
        plan_export(tmp_path / "empty", "keras")
    with pytest.raises(GankitError, match="does not exist"):
        plan_export(tmp_path / "nowhere", "keras")
    with pytest.raises(GankitError, match="is not one of saved_model, onnx, litert, keras"):
        plan_export(tmp_path / "empty", "tflite")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(GankitError, match=r"needs tf2onnx and onnx, which are not installed: "
                                          r"pip install 'gankit\[export\]'"):
        plan_export(tmp_path / "empty", "onnx")


def test_an_output_that_exists_or_cannot_be_written_is_refused(run, tmp_path):
    (tmp_path / "taken.keras").write_text("")
    with pytest.raises(GankitError, match="exists; remove it or choose another --out"):
        plan_export(run, "keras", out=tmp_path / "taken.keras")
    (tmp_path / "file").write_text("")
    with pytest.raises(GankitError, match="is not a directory"):
        plan_export(run, "keras", out=tmp_path / "file" / "g.keras")
    with pytest.raises(GankitError, match="recipe.yaml"):
        plan_export(run, "keras", out=run / "recipe.yaml")


def test_a_second_export_to_the_same_out_is_refused_while_the_first_writes(run, tmp_path):
    from gankit.app.export import _claimed, export

    out = tmp_path / "g.keras"
    plan = plan_export(run, "keras", out=out)
    with _claimed(out):  # an export in progress (another process holds the same lock)
        with pytest.raises(GankitError, match="another gankit export is writing .*g.keras; "
                                              "wait for it to finish or choose another --out"):
            export(plan)
        assert not out.exists()
    card = export(plan)  # once the first is done, the name is free again
    assert out.is_file() and card["format"] == "keras"
    assert not (tmp_path / ".g.keras.lock").exists()
    with pytest.raises(GankitError, match="g.keras exists; remove it"):
        export(plan)  # planned before the first finished: refused, not overwritten
