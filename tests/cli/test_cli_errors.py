"""User mistakes at the command line: one clear line on stderr, exit code 2, no traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

from gankit.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
FROG = str(ROOT / "recipes" / "frog_dcgan.yaml")


def run_cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("args, message", [
    (["--set", "train.batchsize=3"],
     "train.batchsize: unknown key (did you mean 'batch_size'?); valid keys here: batch_size,"),
    (["--set", "generator.type=frog_dcgn"],
     "generator.type: no generator named 'frog_dcgn' (did you mean 'frog_dcgan'?); "
     "registered generators: dcgan (gankit), frog_dcgan (gankit), resnet (gankit)"),
    (["--set", "train.batch_size='64'"],
     "train.batch_size: expected an integer in [1, 65536], got the string '64'"),
    (["--set", "optimizers.generator.clipvalue=-1"],
     "optimizers.generator.clipvalue: expected a number > 0.0 (or null), got -1.0"),
    (["--set", "strategy.label_noise=0.1"], "strategy.label_noise: 'label_noise' is a legacy name"),
    (["--set", "train.steps"], "--set: expected KEY=VALUE (e.g. train.steps=20), got 'train.steps'"),
    # a mistake across sections, and one only a component's constructor can see
    (["--set", "loss=hinge"], "loss: the loss 'hinge' expects logits, but the discriminator "
                              "'frog_dcgan' outputs probabilities (a sigmoid output)"),
    (["--set", "regularizers=[{type: r1, every: 2000}]"],
     "regularizers[0].every: 2000 is more than train.steps (1000)"),
    (["--set", "optimizers.generator.clipnorm=1", "--set", "optimizers.generator.clipvalue=1"],
     "optimizers.generator.clipvalue: set at most one of clipnorm, clipvalue and global_clipnorm"),
    (["--set", "augmenter={type: diffaugment, policy: [colour]}"], "augmenter.policy: "),
])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_recipe_mistakes(capsys, tmp_path, command, args, message):
    extra = ["--out", str(tmp_path / "run")] if command == "run" else []
    code, out, err = run_cli(capsys, command, FROG, *args, *extra)
    assert code == 2
    assert err.startswith("gankit: error: ") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_validate_ok(capsys):
    code, out, err = run_cli(capsys, "validate", FROG)
    assert code == 0
    assert "OK: generator frog_dcgan, discriminator frog_dcgan, dataset cifar10, loss bce, " \
           "augmenter none, strategy gan; 1000 steps of batch 2" in out


def test_validate_print_shows_every_default(capsys):
    code, out, _ = run_cli(capsys, "validate", FROG, "--print", "--set", "train.steps=7")
    assert code == 0
    assert "steps: 7" in out and "leaky_relu_slope: 0.3" in out and "rho: 0.9" in out


def test_missing_recipe_file(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", str(tmp_path / "missing.yaml"))
    assert code == 2 and "missing.yaml: recipe file not found" in err


def test_missing_dataset_path_fails_before_writing_anything(capsys, tmp_path):
    out_dir = tmp_path / "run"
    code, _, err = run_cli(capsys, "run", FROG, "--set", f"dataset.path={tmp_path / 'nowhere'}",
                           "--out", str(out_dir), "--quiet")
    assert code == 2
    assert "nowhere" in err and "does not exist" in err, err
    assert "Traceback" not in err and not out_dir.exists()


def test_offline_download_says_how_to_supply_the_archive(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", FROG, "--quiet", "--out", str(tmp_path / "run"),
                           "--set", f"dataset.cache_dir={tmp_path / 'cache'}",
                           "--set", "dataset.url=http://127.0.0.1:9/cifar-10-python.tar.gz")
    assert code == 2
    assert "could not download CIFAR-10" in err
    assert "dataset.path=/path/to/cifar-10-python.tar.gz" in err
    assert "Traceback" not in err


def test_occupied_run_directory(capsys, tmp_path, cifar_folder):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "something").write_text("x")
    code, _, err = run_cli(capsys, "run", FROG, "--out", str(tmp_path / "run"),
                           "--set", f"dataset.path={cifar_folder}")
    assert code == 2 and "already exists and is not empty" in err


def test_real_process_prints_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "gankit", "validate", FROG, "--set",
                           "train.batch_size=0"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"gankit: error: {FROG}: train.batch_size: expected an "
                                   "integer in [1, 65536], got 0")
