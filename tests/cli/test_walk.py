"""``gankit sample RUN --walk N``: spherical walks between latents, as PNG strips or a GIF."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from tiny import tiny_recipe

import gankit
from gankit.app.walk import check_walk, slerp, walk_latents
from gankit.errors import GankitError

RECIPE = tiny_recipe("walk", {"steps": 2, "batch_size": 4, "seed": 1, "sample_every": 100,
                              "grid_every": 100, "grid_size": 2, "checkpoint_every": 2,
                              "precision": "float32"})


def test_slerp_keeps_the_ends_and_the_norm_of_orthogonal_unit_vectors():
    a, b = np.array([1.0, 0.0], np.float32), np.array([0.0, 1.0], np.float32)
    path = slerp(a, b, np.linspace(0, 1, 5))
    assert np.allclose(path[0], a) and np.allclose(path[-1], b)
    assert np.allclose(np.linalg.norm(path, axis=1), 1.0)
    assert np.allclose(slerp(a, a, np.array([0.5])), a)  # parallel: no division by zero


def test_walks_are_chained_and_seeded():
    z = walk_latents(3, 4, 8, seed=2)
    assert z.shape == (3, 4, 8)
    assert np.allclose(z[0, -1], z[1, 0]) and np.allclose(z[1, -1], z[2, 0])
    assert np.array_equal(z, walk_latents(3, 4, 8, seed=2))


def test_truncated_walks_start_and_end_within_the_truncation():
    z = walk_latents(3, 5, 64, seed=2, truncation=0.5)
    ends = np.concatenate([z[:, 0], z[-1:, -1]])
    assert np.abs(ends).max() <= 0.5 and np.abs(ends).max() > 0.4
    assert np.allclose(z[0, -1], z[1, 0])
    assert not np.allclose(z, walk_latents(3, 5, 64, seed=2))


@pytest.mark.parametrize("walks, steps, out, message", [
    (0, 8, None, "--walk must be between 1 and 32"),
    (2, 1, None, "--steps must be between 2 and 64"),
    (2, 8, "walk.jpg", "a walk is written as .png strips or a .gif animation"),
])
def test_bad_walks_are_refused(walks, steps, out, message):
    with pytest.raises(GankitError, match=message):
        check_walk(walks, steps, out)


@pytest.fixture(scope="module")
def run(tmp_path_factory, make_image_folder):
    images = make_image_folder(tmp_path_factory.mktemp("walk") / "images", 8, 24)
    raw = json.loads(json.dumps(RECIPE))
    raw["dataset"]["path"] = str(images)
    return gankit.train(raw, out=tmp_path_factory.mktemp("run") / "run", quiet=True).run_dir


def test_a_walk_is_written_as_strips_and_as_a_gif(run, tmp_path):
    png, gif = tmp_path / "walk.png", tmp_path / "walk.gif"
    for out in (png, gif):
        done = subprocess.run([sys.executable, "-m", "gankit", "sample", str(run), "--walk",
                               "3", "--steps", "5", "--out", str(out)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    strips = Image.open(png)
    assert strips.size == (2 * (5 * 25 + 1), 2 * (3 * 25 + 1))  # 3 rows of 5, 24 px, upscaled
    animation = Image.open(gif)
    assert animation.n_frames == 5 + 3  # there and back
    done = subprocess.run([sys.executable, "-m", "gankit", "sample", str(run), "--walk", "2",
                           "-n", "4"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "leave out -n" in done.stderr
    done = subprocess.run([sys.executable, "-m", "gankit", "sample", str(run), "--walk", "2",
                           "--steps", "3", "--truncation", "1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(run / "samples" / "walk_seed0_truncation1.png")
    assert Image.open(run / "samples" / "walk_seed0_truncation1.png").size == \
        (2 * (3 * 25 + 1), 2 * (2 * 25 + 1))
