"""train.distribute: mirrored on two logical CPU devices reaches the same weights as one
device at the same global batch (the body runs in its own process: see mirrored_body.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path


def test_mirrored_on_two_devices_equals_one_device_and_resumes(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    body = Path(__file__).with_name("mirrored_body.py")
    done = subprocess.run([sys.executable, str(body), str(tmp_path)], capture_output=True,
                          text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert result["steps"] == [4, 4]
    assert result["compared"] > 20
    # Summation order differs between one device and two replicas: float rounding only.
    assert result["max_weight_difference"] < 1e-5, result
    assert result["loss_rows"] == [4, 4]  # the resumed run logged every step once
    assert result["max_loss_difference"] < 1e-5, result
    assert result["grids"] == ["grid_000000.png", "grid_000002.png", "grid_000004.png"]
