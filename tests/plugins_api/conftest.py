"""Real, tiny distributions on disk, so importlib.metadata finds their entry points."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

GOOD_PLUGIN = '''
import gankit
from gankit import Generator, Param


class {cls}(Generator):
    """A stand-in generator from {dist}."""

    name = "{component}"
    params = {{"latent_dim": Param(int, 4, min=1)}}

    @property
    def latent_dim(self):
        return self.config["latent_dim"]

    @property
    def image_shape(self):
        return (24, 24, 1)

    def build(self):
        raise NotImplementedError


@gankit.hookimpl
def gankit_register_components(register):
    register({cls})
'''


class FakeSite:
    """A folder on ``sys.path`` holding ``*.dist-info`` distributions and their modules."""

    def __init__(self, path: Path, monkeypatch) -> None:
        self.path = path
        self.modules: list[str] = []
        path.mkdir()
        monkeypatch.syspath_prepend(str(path))

    def add(self, dist: str, version: str, entry_points: dict[str, str],
            modules: dict[str, str]) -> None:
        """Install distribution ``dist`` with ``gankit`` entry points (name -> module) and
        the given module sources."""
        info = self.path / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
        (info / "entry_points.txt").write_text(f"[gankit]\n{lines}")
        for module, source in modules.items():
            (self.path / f"{module}.py").write_text(textwrap.dedent(source))
            self.modules.append(module)

    def add_good(self, dist: str, plugin: str, component: str, version: str = "1.0") -> None:
        """A distribution whose plugin registers one generator named ``component``."""
        module = f"{plugin}_plugin"
        self.add(dist, version, {plugin: module}, {module: GOOD_PLUGIN.format(
            cls=f"{plugin.capitalize()}Generator", dist=dist, component=component)})

    def env(self, **extra: str) -> dict[str, str]:
        """The environment for a ``gankit`` subprocess that sees these distributions."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("GANKIT_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.path),
                                                          env.get("PYTHONPATH")]))
        env.update(extra)
        return env

    def gankit(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        """Run ``python -m gankit ARGS`` with these distributions installed."""
        return subprocess.run([sys.executable, "-m", "gankit", *args], capture_output=True,
                              text=True, env=self.env(**env), timeout=120)


@pytest.fixture
def site(tmp_path, monkeypatch):
    """Fake installed distributions; their modules are forgotten after the test."""
    for name in ("GANKIT_DISABLE_PLUGINS", "GANKIT_TRACE_HOOKS"):
        monkeypatch.delenv(name, raising=False)
    fake = FakeSite(tmp_path / "site", monkeypatch)
    yield fake
    for module in fake.modules:
        sys.modules.pop(module, None)
