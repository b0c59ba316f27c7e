"""Runs that must stop: a NaN or Inf loss, a full disk, a file-size limit, an output path
that cannot be created. Each stops with a one-line error and a non-zero exit code, and the
last good checkpoint is left exactly as it was."""

import errno
import math
import os
import sys

import numpy as np
import pytest
from reliability_kit import (
    STEPS,
    checkpoint_dir,
    checkpoint_steps,
    file_digests,
    leftovers,
    load_state,
    recipe_dict,
    write_recipe,
)
from reliability_kit import gankit as run_cli

import gankit
from gankit.cli.main import main
from gankit.errors import TrainingError
from gankit.params import Param
from gankit.plugin.manager import load_plugins
from gankit.recipe.validation import validate
from gankit.rundir import checkpoints
from gankit.rundir.run_dir import RunDir
from gankit.training.callbacks import grids, samples
from gankit.training.loop import Trainer
from gankit_training.strategy import GANStrategy

# --- non-finite losses ----------------------------------------------------------------------

class PoisonedStrategy(GANStrategy):
    """The gan strategy, with a NaN/Inf put into one loss (or the generator's weights) from
    a given step on."""

    name = "poisoned"
    params = {**GANStrategy.params,
              "poison": Param(str, "g_loss", choices=("d_loss", "g_loss", "weights")),
              "value": Param(str, "nan", choices=("nan", "inf")),
              "from_step": Param(int, 3, min=1)}

    def train_step(self, batch, models, ctx):
        import tensorflow as tf

        out = super().train_step(batch, models, ctx)
        hit = ctx.step + 1 >= self.config["from_step"]  # the trainer counts from 1
        bad = tf.constant(float(self.config["value"]))
        if self.config["poison"] == "weights":  # the losses of this step are still finite
            kernel = models.generator.variables[0]
            kernel.assign(tf.where(hit, bad * tf.ones_like(kernel), kernel))
            return out
        metrics = dict(out.metrics)
        name = self.config["poison"]
        metrics[name] = tf.where(hit, bad, metrics[name])
        return out._replace(metrics=metrics)


class PoisonPlugin:
    @gankit.hookimpl
    def gankit_register_components(self, register):
        register(PoisonedStrategy)


@pytest.mark.parametrize("poison,value", [("d_loss", "nan"), ("g_loss", "inf"),
                                          ("weights", "nan")])
def test_a_non_finite_loss_or_weight_stops_within_one_step(images, tmp_path, poison, value):
    registry = load_plugins(extra=[("poison_test", PoisonPlugin())]).registry
    recipe = validate(recipe_dict(images, strategy={"type": "poisoned", "poison": poison,
                                                    "value": value, "from_step": 3},
                                  train={"steps": 6, "checkpoint_every": 1}), registry)
    run = RunDir(tmp_path / "run").create()
    run.write_recipe(recipe.to_dict())
    with pytest.raises(TrainingError) as err:
        Trainer(recipe, run, progress=False).run()
    message = str(err.value)
    if poison == "weights":
        assert "the generator state became NaN or Inf at step 3" in message
    else:
        assert f"{poison} became {value} at step 3" in message
    assert "the last checkpoint (step 2) is untouched" in message
    assert err.value.exit_code != 0
    assert checkpoint_steps(run.path) == [1, 2]
    assert all(np.isfinite(v).all() for v in load_state(checkpoint_dir(run.path, 2)).values())
    assert run.read_status()["status"] == "failed"
    assert leftovers(run.path) == []


def test_nan_from_a_huge_learning_rate_stops_the_cli_and_keeps_the_checkpoint(
        copy_of_reference):
    run = copy_of_reference
    before = file_digests(run / "checkpoints")
    result = run_cli("resume", run, "--set", f"train.steps={STEPS + 10}",
                     "--set", "train.checkpoint_every=1",
                     "--set", "optimizers.discriminator={type: SGD, learning_rate: 1.0e+30}",
                     "--force", "--quiet")
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("gankit: error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert "became nan" in errors[0] or "became inf" in errors[0]
    assert f"the last checkpoint (step {STEPS}) is untouched" in errors[0]
    # Stopped at the first non-finite step: it is the last one logged, all before are finite.
    rows = (run / "losses.csv").read_text().splitlines()[1:]
    last = rows[-1].split(",")
    assert f"at step {last[0]};" in errors[0]
    assert not all(math.isfinite(float(v)) for v in last[1:])
    assert all(math.isfinite(float(v)) for row in rows[:-1] for v in row.split(",")[1:])
    assert file_digests(run / "checkpoints") == before


# --- write failures ---------------------------------------------------------------------------

def test_disk_full_while_checkpointing_stops_the_cli_with_the_previous_checkpoint_intact(
        images, tmp_path, monkeypatch, capsys):
    recipe = write_recipe(tmp_path / "tiny.yaml", images, train={"steps": 8})
    real_save, calls = checkpoints.CheckpointStore.save, []

    def save_then_disk_full(self, step, write_state, meta):
        calls.append(1)

        def partial(prefix):
            with open(f"{prefix}.data-00000-of-00001", "wb") as f:
                f.write(b"partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(self, step, partial if len(calls) >= 3 else write_state, meta)

    monkeypatch.setattr(checkpoints.CheckpointStore, "save", save_then_disk_full)
    run = tmp_path / "run"
    assert main(["run", str(recipe), "--out", str(run), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("gankit: error: could not write checkpoint")
    assert "ckpt-00000006: No space left on device" in err
    assert "the previous checkpoint (step 4) is intact" in err
    assert checkpoint_steps(run) == [2, 4] and leftovers(run) == []
    assert checkpoints.CheckpointStore(run / "checkpoints").load_latest().step == 4
    assert RunDir(run).read_status()["status"] == "failed"


def test_a_failed_sample_write_is_a_clear_error(images, tmp_path, monkeypatch, capsys):
    recipe = write_recipe(tmp_path / "tiny.yaml", images, train={"steps": 8})

    def no_space(image, path, upscale=1):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    for module in (grids, samples):
        monkeypatch.setattr(module, "save_png", no_space)
    assert main(["run", str(recipe), "--out", str(tmp_path / "run"), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("gankit: error: could not write ") and "grid_000000.png" in err
    assert "No space left on device" in err


_LIMITED = """
import resource, runpy, sys
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
sys.argv = ["gankit", *sys.argv[1:]]
runpy.run_module("gankit", run_name="__main__")
"""


def test_a_real_write_failure_while_checkpointing_leaves_the_previous_checkpoint_intact(
        copy_of_reference):
    """A file-size limit (RLIMIT_FSIZE) makes the kernel refuse the checkpoint's state.data-00000-of-00001
    (EFBIG) just as a full disk would (ENOSPC), even for root."""
    import subprocess

    run = copy_of_reference
    assert (checkpoint_dir(run, STEPS) / "state.data-00000-of-00001").stat().st_size > 100_000
    before = file_digests(run / "checkpoints")
    result = subprocess.run([sys.executable, "-c", _LIMITED, "resume", str(run),
                             "--set", f"train.steps={STEPS + 4}", "--quiet"],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("gankit: error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"could not write checkpoint {checkpoint_dir(run, STEPS + 2)}: File too large" \
        in errors[0]
    assert f"the previous checkpoint (step {STEPS}) is intact" in errors[0]
    assert file_digests(run / "checkpoints") == before  # nothing pruned, nothing half-written
    assert RunDir(run).read_status()["status"] == "failed"


def test_an_output_directory_that_cannot_be_created_is_a_clear_error(recipe_file, tmp_path,
                                                                      capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    assert main(["run", str(recipe_file), "--out", str(blocker / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"gankit: error: cannot create the run directory {blocker / 'run'}")
    assert "choose another with --out" in err[-1]
