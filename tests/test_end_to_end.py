"""`gankit run recipes/frog_dcgan.yaml` on a real-format CIFAR-10 folder, as a user runs it."""

import csv
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_frog_recipe_runs_and_writes_everything(tmp_path, cifar_folder):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "gankit", "run", str(ROOT / "recipes" / "frog_dcgan.yaml"),
         "--set", f"dataset.path={cifar_folder}", "--set", "train.steps=20", "--out", str(out)],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Finished step 20" in proc.stdout
    assert "step 20/20" in proc.stderr  # the progress display

    resolved = yaml.safe_load((out / "recipe.yaml").read_text())
    assert resolved["train"]["steps"] == 20 and resolved["dataset"]["label"] == "frog"
    assert resolved["dataset"]["path"] == str(cifar_folder)

    with open(out / "losses.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == list(range(1, 21))
    assert all(float(r["d_loss"]) > 0 and float(r["g_loss"]) > 0 for r in rows)

    samples = sorted(p.name for p in (out / "samples").iterdir())
    for step in range(2, 21, 2):  # the article's pair of PNGs every 2 steps
        assert f"generated_{step:06d}.png" in samples
        assert f"real_{step:06d}.png" in samples
    assert "grid_000000.png" in samples and "grid_000020.png" in samples

    checkpoints = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert checkpoints == ["ckpt-00000018", "ckpt-00000020"]  # keep_checkpoints: 2
    assert any((out / "tensorboard").iterdir())

    check = ("import keras; m = keras.models.load_model(%r); "
             "print(m.count_params(), m.input_shape, m.output_shape)") % str(out / "generator.keras")
    loaded = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                            timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.split("\n")[-2] == "6264579 (None, 32) (None, 32, 32, 3)"
