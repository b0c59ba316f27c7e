"""``gankit evaluate`` against hostile folders and arguments (hardening, round three): what the
arguments and the files' headers decide is one line before TensorFlow loads; nothing is
decoded that is a decompression bomb; a run's files are never the output."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def env(tmp_path):
    """Importing TensorFlow exits with 99: these answers must come before it loads."""
    poison = tmp_path / "no-tensorflow" / "tensorflow"
    poison.mkdir(parents=True)
    (poison / "__init__.py").write_text("import os\nos._exit(99)\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(poison.parent), os.environ.get("PYTHONPATH")]))}


def _folder(path, count, size=16):
    path.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
            path / f"{i:03d}.png")
    return path


def _evaluate(env, *args):
    done = subprocess.run([sys.executable, "-m", "gankit", "evaluate", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=60)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, (done.returncode, done.stderr)
    return lines[0]


def test_one_image_is_too_few_for_fid(tmp_path, env):
    one, ref = _folder(tmp_path / "one", 1), _folder(tmp_path / "ref", 4)
    assert "needs at least 2 images in each; the source has 1" in _evaluate(
        env, one, "--metric", "fid", "--reference", ref)


def test_a_fifo_named_png_is_not_counted_and_blocks_nothing(tmp_path, env):
    one, ref = _folder(tmp_path / "one", 1), _folder(tmp_path / "ref", 4)
    os.mkfifo(one / "zz.png")
    assert "the source has 1" in _evaluate(env, one, "--metric", "fid", "--reference", ref)


def test_n_beyond_the_folders_is_refused(tmp_path, env):
    src, ref = _folder(tmp_path / "src", 4), _folder(tmp_path / "ref", 4)
    assert "-n 9: the source folder" in _evaluate(env, src, "--metric", "fid", "--reference",
                                                  ref, "-n", "9")
    assert "--reference-n 9: the --reference folder" in _evaluate(
        env, src, "--metric", "fid", "--reference", ref, "--reference-n", "9")


def test_knn_k_above_the_count_is_refused(tmp_path, env):
    src, ref = _folder(tmp_path / "src", 5), _folder(tmp_path / "ref", 8)
    assert "k is 5 but the source has 5" in _evaluate(
        env, src, "--metric", "precision_recall", "--set", "precision_recall.k=5",
        "--reference", ref)


@pytest.mark.parametrize("kind, message", [
    ("empty", "is empty"), ("gif", "is not a PNG or JPEG file"),
    ("webp", "is not a PNG or JPEG file"), ("bomb", "is too large to decode safely")])
def test_a_file_that_is_not_a_decodable_image_is_named_before_tensorflow(tmp_path, env, kind,
                                                                          message):
    src, ref = _folder(tmp_path / "src", 3), _folder(tmp_path / "ref", 3)
    bad = src / "zz.png"
    if kind == "empty":
        bad.write_bytes(b"")
    elif kind in ("gif", "webp"):
        Image.new("RGB", (8, 8)).save(bad, format=kind.upper())
    else:
        Image.new("1", (20000, 20000)).save(bad)  # 400 Mpixel in about 50 kB
    line = _evaluate(env, src, "--metric", "fid", "--reference", ref)
    assert "zz.png" in line and message in line


@pytest.mark.parametrize("low, high, message", [
    ("0", "inf", "must be finite"), ("nan", "1", "must be finite"),
    ("1", "1", "LOW must be below HIGH"), ("1", "0", "LOW must be below HIGH"),
    ("-10000000", "10000000", "at most")])
def test_a_value_range_that_would_map_every_image_to_one_colour_is_refused(
        tmp_path, env, low, high, message):
    ref = _folder(tmp_path / "ref", 3)
    model = tmp_path / "g.keras"
    model.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    assert message in _evaluate(env, model, "--metric", "fid", "--reference", ref,
                                "--value-range", low, high)


def test_json_never_overwrites_a_runs_file(tmp_path, env):
    run = tmp_path / "run"
    run.mkdir()
    (run / "recipe.yaml").write_text("name: x\n")
    (run / "run.json").write_text("{}")
    src, ref = _folder(tmp_path / "src", 3), _folder(tmp_path / "ref", 3)
    line = _evaluate(env, src, "--metric", "fid", "--reference", ref, "--json",
                     run / "recipe.yaml")
    assert "gankit does not overwrite a run's files" in line
    assert (run / "recipe.yaml").read_text() == "name: x\n"
