"""A plugin author's path, end to end, in a fresh virtual environment: install gankit,
install a plugin (the docs' example, or a `gankit new-plugin` skeleton), see it in
`gankit plugins`, train its recipe for a few steps, run its own tests.

The venv sees the site-packages of the Python that runs the tests (the system's, or those
of the virtualenv gankit is installed in), so that TensorFlow is not installed again; gankit
and the plugins are installed into the venv itself (``--no-deps``), and the tests check
that the venv's copies are the ones used.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
import venv as venv_module
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "examples" / "gankit-example"
BUILD_LEFTOVERS = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist", "runs",
                                         ".pytest_cache")
TIMEOUT = 300


class Venv:
    """A virtual environment that sees the running Python's site-packages after its own.

    ``system_site_packages`` would show the *base* interpreter's site-packages, which lack
    TensorFlow when the tests run in a virtualenv; a ``.pth`` file naming the running
    Python's site-packages folders shows them instead, behind the venv's own (their own
    ``.pth`` files, such as an editable install of gankit, are not run).
    """

    def __init__(self, path: Path, create: bool = True) -> None:
        self.path = path
        self.bin = path / "bin"
        self.python = str(self.bin / "python")
        if not create:  # one made before (by another test process of this session)
            return
        self._create(with_pip=False)
        if self.run(self.python, "-m", "pip", "--version").returncode != 0:
            self._create(with_pip=True)  # no pip among the running Python's packages

    def _create(self, with_pip: bool) -> None:
        venv_module.EnvBuilder(with_pip=with_pip, clear=True).create(self.path)
        own = self.run(self.python, "-c",
                       "import sysconfig; print(sysconfig.get_paths()['purelib'])")
        assert own.returncode == 0, own.stderr
        outer = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
        (Path(own.stdout.strip()) / "_outer_site_packages.pth").write_text(
            "".join(f"{folder}\n" for folder in outer))

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTEST_ADDOPTS")
               and not k.startswith(("GANKIT_", "PYTEST_"))}
        env.update(VIRTUAL_ENV=str(self.path), PATH=f"{self.bin}{os.pathsep}{env.get('PATH', '')}",
                   PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1",
                   TF_CPP_MIN_LOG_LEVEL="2")
        return env

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), capture_output=True, text=True, env=self.env,
                              cwd=cwd or self.path, timeout=TIMEOUT)

    def gankit(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        return self.run(str(self.bin / "gankit"), *args, cwd=cwd)

    def pip_install(self, *args: str) -> None:
        """``pip install --no-deps`` into the venv, building with the setuptools at hand;
        if that one cannot build the project, with a newer one from PyPI."""
        command = [self.python, "-m", "pip", "install", "--no-deps", "--no-build-isolation"]
        result = self.run(*command, *args)
        if result.returncode != 0:
            upgrade = self.run(self.python, "-m", "pip", "install", "setuptools>=68", "wheel")
            assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
            result = self.run(*command, *args)
        assert result.returncode == 0, result.stdout + result.stderr


def _copy(source: Path, target: Path) -> Path:
    """A clean copy of a source tree, so that building it leaves nothing in the checkout."""
    shutil.copytree(source, target, ignore=BUILD_LEFTOVERS)
    return target


@pytest.fixture(scope="module")
def venv(build_once) -> Venv:
    """A fresh venv with gankit installed from (a copy of) this checkout; made once per
    session and shared by the xdist workers (``build_once``)."""

    def make(root: Path) -> None:
        env = Venv(root / "venv")
        source = root / "gankit-src"
        source.mkdir()
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            if (REPO / name).exists():
                shutil.copy(REPO / name, source / name)
        for name in ("gankit", "plugins"):
            _copy(REPO / name, source / name)
        env.pip_install(str(source))

    env = Venv(build_once("fresh", make) / "venv", create=False)
    where = env.run(env.python, "-c", "import gankit, gankit_dcgan, gankit_training; "
                                      "print(gankit.__file__); print(gankit_dcgan.__file__); "
                                      "print(gankit_training.__file__)")
    assert where.returncode == 0, where.stderr
    assert all(line.startswith(str(env.path)) for line in where.stdout.split()), where.stdout
    return env


@pytest.fixture(scope="module")
def example(venv, build_once) -> Path:
    """The example plugin, installed into the venv with a plain `pip install FOLDER`."""

    def make(root: Path) -> None:
        venv.pip_install(str(_copy(EXAMPLE, root / "gankit-example")))

    return build_once("example", make) / "gankit-example"


EXAMPLE_PARTS = (("generator", "upsampling"), ("generator", "styled"),
                 ("discriminator", "conv_critic"), ("dataset", "shapes"),
                 ("loss", "noisy_least_squares"), ("loss", "relativistic_average"),
                 ("regularizer", "consistency"), ("callback", "fooled_share"),
                 ("metric", "density_coverage"), ("feature_extractor", "thumbnail"))


def test_gankit_plugins_shows_the_example_plugins_components(venv, example):
    result = venv.gankit("plugins", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    plugin = next(p for p in data["plugins"] if p["name"] == "example")
    assert plugin == {"name": "example", "distribution": "gankit-example", "version": "0.3.0",
                      "entry_point": "gankit_example", "status": "loaded", "error": None,
                      "provides": [f"{kind}:{name}" for kind, name in EXAMPLE_PARTS]}
    for kind, name in EXAMPLE_PARTS:
        entry = next(c for c in data["components"][kind] if c["name"] == name)
        assert (entry["qualified_name"], entry["version"]) == (f"example:{name}", "0.3.0")
    # The example brings no strategy: its recipe is trained by gankit's own.
    strategies = {c["qualified_name"]: c["distribution"] for c in data["components"]["strategy"]}
    assert strategies.get("training:gan") == "gankit"
    assert "gankit-example" not in strategies.values()
    assert all(p["status"] == "loaded" for p in data["plugins"]), data["plugins"]

    text = venv.gankit("plugins").stdout
    assert ("example          gankit-example 0.3.0  loaded: generator upsampling, generator "
            "styled, discriminator conv_critic, dataset shapes, loss noisy_least_squares, loss "
            "relativistic_average, regularizer consistency, callback fooled_share, metric "
            "density_coverage, feature_extractor thumbnail") in text


def test_the_plugins_own_parts_train_resume_and_load_in_fresh_processes(venv, example,
                                                                       tmp_path):
    # The styled generator has the plugin's own Keras layers and an Embedding, the loss is
    # relativistic, the callback logs a column every few steps, the metric and extractor are
    # the plugin's: every command below is a new process that knows the layers only through
    # the plugin's gankit_keras_objects hook.
    recipe = example / "recipes" / "shapes_styled.yaml"
    run = tmp_path / "styled"
    tiny = ["--set", "train.steps=4", "--set", "train.batch_size=8", "--set", "dataset.count=32",
            "--set", "metrics.every=2", "--set", "metrics.samples=16",
            "--set", "callbacks[0].every=2", "--set", "callbacks[0].samples=8",
            "--set", "generator.filters=8", "--set", "discriminator.filters=8",
            "--set", "train.grid_size=2", "--set", "train.precision=float32"]
    first = venv.gankit("run", str(recipe), "--out", str(run), "--quiet", *tiny, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    longer = venv.gankit("resume", str(run), "--set", "train.steps=6", "--quiet", cwd=tmp_path)
    assert longer.returncode == 0, longer.stderr[-3000:]
    header, *rows = (run / "losses.csv").read_text().splitlines()
    columns = header.split(",")
    assert {"d_fooled", "coverage", "density"} <= set(columns) and len(rows) == 6
    fooled = [row.split(",")[columns.index("d_fooled")] for row in rows]
    assert [bool(v) for v in fooled] == [False, True, False, True, False, True]
    best = venv.gankit("sample", str(run), "--best", "-n", "4", "--label", "square",
                       "--out", str(tmp_path / "best.png"), cwd=tmp_path)
    assert best.returncode == 0, best.stderr[-3000:]
    assert (tmp_path / "best.png").is_file()
    evaluated = venv.gankit("evaluate", str(run), "--best", "--reference",
                            str(run / "recipe.yaml"), "--metric", "example:density_coverage",
                            "--extractor", "example:thumbnail", "-n", "16", "--reference-n",
                            "16", "--json", str(tmp_path / "evaluation.json"), cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "coverage" in evaluated.stdout and (tmp_path / "evaluation.json").is_file()


def test_the_example_plugins_own_tests_pass_in_the_venv(venv, example):
    result = venv.run(venv.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=example)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    # pytest's closing line, e.g. "17 passed, 2 skipped, 20 warnings in 36.2s" (the skipped
    # ones compare the code with docs/writing-plugins.md, which a copy does not have).
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary


def test_a_new_plugin_skeleton_passes_its_own_tests_after_pip_install_e(venv, tmp_path):
    made = venv.gankit("new-plugin", "skeleton_demo", "--dir", str(tmp_path))
    assert made.returncode == 0, made.stderr
    folder = tmp_path / "gankit-skeleton-demo"
    venv.pip_install("-e", str(folder))

    listing = json.loads(venv.gankit("plugins", "--json").stdout)
    plugin = next(p for p in listing["plugins"] if p["name"] == "skeleton_demo")
    assert (plugin["distribution"], plugin["status"], plugin["provides"]) == \
        ("gankit-skeleton-demo", "loaded", ["generator:mlp", "loss:smoothed_bce"])

    result = venv.run(venv.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=folder)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "4 passed" in result.stdout
