"""Fixtures of the reliability tests; the helpers live in reliability_kit.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from reliability_kit import finish, start_gankit, write_images, write_recipe

# The session-scoped data, recipes and reference runs are built once for all xdist workers
# (``build_once``): each reference fixture trains two tiny runs, 30-40 s a worker.

@pytest.fixture(scope="session")
def images(build_once) -> Path:
    return build_once("images", lambda folder: write_images(folder / "images")) / "images"


@pytest.fixture(scope="session")
def recipe_file(build_once, images) -> Path:
    return build_once("recipes-tiny",
                      lambda folder: write_recipe(folder / "tiny.yaml", images)) / "tiny.yaml"


TWO_RUNS = ("run", "twin")  # the folders of _two_runs


def _two_runs(folder: Path, recipe: Path) -> tuple[Path, Path]:
    """Two uninterrupted runs of ``recipe``, in separate processes at the same time."""
    runs = [folder / name for name in TWO_RUNS]
    procs = [start_gankit("run", recipe, "--out", run, "--quiet") for run in runs]
    for proc in procs:
        out = finish(proc)
        assert proc.returncode == 0, out
    return runs[0], runs[1]


@pytest.fixture(scope="session")
def reference_runs(build_once, recipe_file) -> tuple[Path, Path]:
    """Two uninterrupted runs of the tiny recipe, in separate processes at the same time."""
    folder = build_once("reference", lambda folder: _two_runs(folder, recipe_file))
    return tuple(folder / name for name in TWO_RUNS)


@pytest.fixture(scope="session")
def reference_run(reference_runs) -> Path:
    """An uninterrupted run of the tiny recipe (do not modify it: copy it)."""
    return reference_runs[0]


@pytest.fixture
def copy_of_reference(reference_run, tmp_path) -> Path:
    """A private copy of the reference run directory, free to damage."""
    return Path(shutil.copytree(reference_run, tmp_path / "run"))


FULL = {"regularizers": [{"type": "r1", "gamma": 1.0, "every": 2}],
        "augmenter": {"type": "diffaugment"}, "ema": {"decay": 0.9, "start": 4},
        "strategy": {"type": "gan", "d_steps": 2}}


@pytest.fixture(scope="session")
def full_recipe_file(build_once, images) -> Path:
    """The tiny recipe with EMA, lazy R1, DiffAugment and two discriminator updates."""
    import yaml
    from reliability_kit import recipe_dict

    def make(folder):
        (folder / "full.yaml").write_text(
            yaml.safe_dump({**recipe_dict(images), **FULL}, sort_keys=False))

    return build_once("recipes-full", make) / "full.yaml"


@pytest.fixture(scope="session")
def full_reference_runs(build_once, full_recipe_file) -> tuple[Path, Path]:
    """Two uninterrupted runs of the recipe with every part."""
    folder = build_once("full", lambda folder: _two_runs(folder, full_recipe_file))
    return tuple(folder / name for name in TWO_RUNS)
