"""Shared pieces of the reliability tests (imported by them as ``reliability_kit``; a module
named ``conftest`` would clash with other test folders' conftest files): a tiny image folder, a tiny recipe, the real
``gankit`` command in subprocesses, and exact comparisons of checkpoints.

The recipe trains 40 steps of a tiny frog DCGAN (24x24 images, batch 4, shuffled, dropout
on) with a checkpoint every 2 steps, so a kill can land anywhere in a run that lasts a few
seconds. One uninterrupted run of it (``reference_run``) is shared by the whole session.
"""

from __future__ import annotations

import copy
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from tiny import tiny_recipe

STEPS = 40
CHECKPOINT_EVERY = 2
KEEP = 3

TINY_RECIPE = tiny_recipe("tiny", {
    "steps": STEPS, "batch_size": 4, "seed": 7, "shuffle": True, "sample_every": 4,
    "grid_every": 10, "grid_size": 2, "checkpoint_every": CHECKPOINT_EVERY,
    "keep_checkpoints": KEEP, "precision": "float32"},  # the article's, as the models
    strategy={"type": "gan"})


# --- data and recipes -------------------------------------------------------------------

def write_images(folder: Path, count: int = 24, seed: int = 0) -> Path:
    """A folder of ``count`` random 24x24 RGB PNGs (6 batches of 4: 40 steps see 7 epochs)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(
            folder / f"{i:03d}.png")
    return folder


def recipe_dict(images: Path, **sections) -> dict:
    """The tiny recipe over ``images``; ``sections`` update single keys, e.g.
    ``train={"steps": 20}``."""
    recipe = copy.deepcopy(TINY_RECIPE)
    recipe["dataset"]["path"] = str(images)
    for section, values in sections.items():
        recipe[section].update(values)
    return recipe


def write_recipe(path: Path, images: Path, **sections) -> Path:
    path.write_text(yaml.safe_dump(recipe_dict(images, **sections), sort_keys=False))
    return path


# --- the real command line ----------------------------------------------------------------

def _env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.pop("GANKIT_TEST_PAUSE_IN_CHECKPOINT_WRITE", None)
    env.update(extra or {})
    return env


def _command(args) -> list[str]:
    return [sys.executable, "-m", "gankit", *map(str, args)]


def gankit(*args, env: dict | None = None, timeout: float = 180, cwd: Path | None = None,
           **popen) -> subprocess.CompletedProcess:
    """Run ``gankit ARGS`` to the end; returns the completed process (text output)."""
    return subprocess.run(_command(args), capture_output=True, text=True, env=_env(env),
                          timeout=timeout, cwd=cwd, **popen)


def start_gankit(*args, env: dict | None = None, cwd: Path | None = None) -> subprocess.Popen:
    """Start ``gankit ARGS`` in the background (stderr merged into stdout)."""
    return subprocess.Popen(_command(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=_env(env), cwd=cwd)


def wait_until(condition, proc: subprocess.Popen, timeout: float = 120,
               what: str = "the condition") -> None:
    """Poll ``condition()`` every 5 ms; fail if ``proc`` ends or time runs out first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"gankit exited ({proc.returncode}) before {what}:\n{out}")
        if time.monotonic() > deadline:
            kill(proc)
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


def kill(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> str:
    """Send ``sig`` (default: kill -9), wait for the process, return its output."""
    if proc.poll() is None:
        os.kill(proc.pid, sig)
    out, _ = proc.communicate(timeout=120)
    return out or ""


def finish(proc: subprocess.Popen, timeout: float = 180) -> str:
    out, _ = proc.communicate(timeout=timeout)
    return out or ""


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"exit {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


# --- run directories and checkpoints --------------------------------------------------------

def checkpoint_steps(run_dir: Path) -> list[int]:
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(int(p.name[5:]) for p in folder.iterdir() if p.name.startswith("ckpt-"))


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"ckpt-{step:08d}"


def leftovers(run_dir: Path) -> list[str]:
    folder = Path(run_dir) / "checkpoints"
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".tmp-"))


def load_state(ckpt: Path) -> dict[str, np.ndarray]:
    """Every tensor of a checkpoint's state, by its name in the checkpoint's object graph
    (``generator/...``, ``discriminator_optimizer/...``, ``step/...``)."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(Path(ckpt) / "state"))
    return {name: np.asarray(reader.get_tensor(name))
            for name in reader.get_variable_to_shape_map()
            if not name.startswith("_CHECKPOINTABLE_OBJECT_GRAPH")}


def assert_same_state(a: Path, b: Path) -> None:
    """Two checkpoints hold bit-identical state (and the same step)."""
    sa, sb = load_state(a), load_state(b)
    assert sorted(sa) == sorted(sb)
    # A variable is stored once, under the first path to it (often an optimizer's list of
    # the variables it trains), so the model names need not appear as prefixes.
    groups = {name.split("/", 1)[0] for name in sa}
    assert {"discriminator_optimizer", "generator_optimizer", "step"} <= groups
    assert len(sa) > 20
    different = [name for name in sa
                 if sa[name].dtype != sb[name].dtype or not np.array_equal(sa[name], sb[name])]
    assert not different, f"{a} and {b} differ in {different[:5]}"
    meta = [yaml.safe_load((Path(c) / "meta.json").read_text()) for c in (a, b)]
    assert meta[0]["step"] == meta[1]["step"]


def assert_same_run(run: Path, reference: Path) -> None:
    """The run ended exactly as the reference: final state, step, losses and sample names."""
    assert checkpoint_steps(run)[-1] == checkpoint_steps(reference)[-1]
    step = checkpoint_steps(reference)[-1]
    assert_same_state(checkpoint_dir(run, step), checkpoint_dir(reference, step))
    # Every step exactly once, with the same losses: no batch replayed or skipped.
    assert (run / "losses.csv").read_text() == (reference / "losses.csv").read_text()
    assert sorted(p.name for p in (run / "samples").iterdir()) == \
        sorted(p.name for p in (reference / "samples").iterdir())
    assert leftovers(run) == []


def file_digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


# --- fixtures -------------------------------------------------------------------------------

