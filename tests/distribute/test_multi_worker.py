"""train.distribute: multi_worker with two local worker processes on 127.0.0.1: they train
together, only the chief writes the run directory, and after one worker is killed both
resume from the last checkpoint and finish."""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
from PIL import Image

STEPS = 400  # far more than the test waits for: the first run is killed part way


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def tf_configs():
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    return [json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})
            for i in range(2)]


def start(args, tf_config, scratch, cwd):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_CONFIG": tf_config,
           "TMPDIR": str(scratch)}
    return subprocess.Popen([sys.executable, "-m", "gankit", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def checkpoints(run):
    folder = run / "checkpoints"
    return sorted(int(p.name[5:]) for p in folder.glob("ckpt-*")) if folder.is_dir() else []


def wait_for(condition, procs, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        ended = [p for p in procs if p.poll() is not None]
        if ended or time.monotonic() > deadline:
            out = "\n".join((p.stdout.read() if p.poll() is not None else "") for p in procs)
            for p in procs:
                p.kill()
            pytest.fail(f"waiting for {what}: {'a worker exited' if ended else 'timed out'}"
                        f"\n{out[-3000:]}")
        time.sleep(0.02)


@pytest.fixture
def recipe(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(
            images / f"{i}.png")
    raw = {
        "name": "two_workers",
        "generator": {"type": "frog_dcgan", "latent_dim": 8, "height": 24, "width": 24,
                      "base_filters": 4, "filters": 4},
        "discriminator": {"type": "frog_dcgan", "height": 24, "width": 24, "filters": 4,
                          "dropout": 0.0},
        "dataset": {"type": "image_folder", "path": str(images), "height": 24, "width": 24},
        "loss": {"type": "bce", "real_label": 0.0, "fake_label": 1.0, "label_noise": 0.05},
        "train": {"steps": STEPS, "batch_size": 4, "seed": 5, "shuffle": True,
                  "sample_every": 2, "grid_every": 50, "grid_size": 2, "checkpoint_every": 2,
                  "distribute": "multi_worker"},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_two_workers_train_survive_a_killed_worker_and_resume(tmp_path, recipe):
    run = tmp_path / "run"
    scratch = tmp_path / "scratch"  # the workers' TMPDIR: worker 1's outputs go there
    scratch.mkdir()
    procs = [start(["run", str(recipe), "--out", str(run), "--quiet"], config, scratch,
                   tmp_path) for config in tf_configs()]
    # Worker 1 writes its outputs to a temporary run directory, never into the chief's.
    wait_for(lambda: checkpoints(run) and list(scratch.glob("gankit-worker1-*/run/checkpoints/"
                                                            "ckpt-*")),
             procs, 300, "the first checkpoint of each worker")
    procs[1].kill()  # worker 1 dies; the chief finds out from the collective ops
    out, _ = procs[0].communicate(timeout=180)
    procs[1].communicate()
    assert procs[0].returncode == 1, out[-3000:]
    error = [line for line in out.splitlines() if line.startswith("gankit: error:")]
    assert error and "another worker stopped or cannot be reached" in error[0], out[-3000:]
    assert "Traceback" not in out
    kept = checkpoints(run)
    last = kept[-1]
    assert last < STEPS
    status = json.loads((run / "run.json").read_text())
    assert status["status"] == "failed"
    killed = set(scratch.glob("gankit-worker*"))  # kill -9 leaves its temporary folder

    # Both restart with resume and finish a few steps after the last checkpoint.
    end = last + 4
    procs = [start(["resume", str(run), "--quiet", "--set", f"train.steps={end}"], config,
                   scratch, tmp_path) for config in tf_configs()]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-2000:] for o in outs)
    assert f"resuming {run} at step {last}" in outs[0]
    assert f"resuming two_workers at step {last}" in outs[1]  # the worker read the same one
    assert checkpoints(run)[-1] == end
    assert json.loads((run / "run.json").read_text())["status"] == "completed"
    rows = (run / "losses.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(1, end + 1))
    assert (run / "generator.keras").is_file()
    # The resumed worker 1 deleted its temporary run directory at the end.
    assert set(scratch.glob("gankit-worker*")) == killed
