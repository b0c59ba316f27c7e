"""`gankit new-plugin`: what it writes, and what it refuses. (That the skeleton's own tests
pass once installed is shown in test_fresh_venv.py.)"""

import errno
import sys
from pathlib import Path

import pytest

from gankit.cli.main import main
from gankit.plugin.scaffold import plugin_names, write_plugin


def test_new_plugin_writes_a_complete_package(tmp_path, capsys):
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    assert main(["new-plugin", "my-plugin", "--dir", str(tmp_path)]) == 0
    folder = tmp_path / "gankit-my-plugin"
    assert f"Created {folder}" in capsys.readouterr().out
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert files == ["README.md", "gankit_my_plugin/__init__.py",
                     "gankit_my_plugin/generator.py", "gankit_my_plugin/losses.py",
                     "pyproject.toml", "recipes/example.yaml", "tests/test_my_plugin.py"]
    project = tomllib.loads((folder / "pyproject.toml").read_text())
    assert project["project"]["name"] == "gankit-my-plugin"
    assert project["project"]["entry-points"]["gankit"] == {"my_plugin": "gankit_my_plugin"}
    recipe = (folder / "recipes" / "example.yaml").read_text()
    assert "type: my_plugin:mlp" in recipe and "type: my_plugin:smoothed_bce" in recipe
    for path in folder.rglob("*.py"):
        compile(path.read_text(), str(path), "exec")


def test_the_skeleton_components_and_recipe_work_without_installing(tmp_path, monkeypatch):
    from gankit.plugin.manager import load_plugins
    from gankit.recipe.validation import load_recipe
    from gankit.testing import check_generator, check_loss

    folder = write_plugin("demo_two", tmp_path)
    monkeypatch.syspath_prepend(str(folder))
    try:
        import gankit_demo_two
        from gankit_demo_two.generator import MLPGenerator
        from gankit_demo_two.losses import SmoothedBCELoss

        check_generator(MLPGenerator(latent_dim=4, height=4, width=4, units=4))
        check_loss(SmoothedBCELoss())
        loaded = load_plugins(extra=[("demo_two", gankit_demo_two)])
        assert loaded.errors == []
        recipe = load_recipe(folder / "recipes" / "example.yaml", registry=loaded.registry)
        parts = {kind: spec.registration for kind, spec in recipe.components.items()}
        assert parts["generator"].component is MLPGenerator
        assert parts["loss"].component is SmoothedBCELoss
        # The skeleton brings a generator and a loss; the strategy is gankit's own.
        assert (parts["strategy"].name, parts["strategy"].distribution) == ("gan", "gankit")
    finally:
        for module in ("gankit_demo_two", "gankit_demo_two.generator", "gankit_demo_two.losses"):
            sys.modules.pop(module, None)


def test_an_existing_folder_is_never_overwritten(tmp_path, capsys):
    folder = tmp_path / "gankit-mine"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    assert main(["new-plugin", "mine", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == (f"gankit: error: {folder} already exists; choose another name or --dir "
                   "(new-plugin never overwrites files)\n")
    assert [p.name for p in folder.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize("name, message", [
    ("My Plugin", "invalid plugin name 'My Plugin': use lowercase letters and digits, "
                  "optionally joined by '_' or '-', starting with a letter (e.g. 'my_plugin')"),
    ("2fast", "invalid plugin name '2fast'"),
    ("a--b", "invalid plugin name 'a--b'"),
    ("", "invalid plugin name ''"),
    ("gankit-foo", "leave out the 'gankit' prefix, it is added to the package and distribution "
                   "names (use 'foo')"),
    ("class", "it is a Python keyword"),
    ("dcgan", "a plugin named 'dcgan' is already installed (distribution 'gankit')"),
])
def test_a_bad_name_is_one_error_line_and_exit_code_2(name, message, tmp_path, capsys):
    assert main(["new-plugin", name, "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gankit: error: ") and message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_names_derived_from_a_hyphenated_name():
    names = plugin_names("pix2pix-extra")
    assert (names.plugin, names.package, names.distribution, names.title) == \
        ("pix2pix_extra", "gankit_pix2pix_extra", "gankit-pix2pix-extra", "Pix2pixExtra")


@pytest.mark.parametrize("length, ok", [(64, True), (65, False), (300, False), (5000, False)])
def test_name_length_is_bounded(length, ok, tmp_path, capsys):
    name = "a" * length
    code = main(["new-plugin", name, "--dir", str(tmp_path)])
    err = capsys.readouterr().err
    if ok:
        assert code == 0 and (tmp_path / f"gankit-{name}" / "pyproject.toml").is_file()
        return
    assert code == 2
    assert err == (f"gankit: error: invalid plugin name '{'a' * 20}...' ({length} characters): "
                   f"use at most 64\n")
    assert list(tmp_path.iterdir()) == []


def test_a_dir_that_is_a_file_is_one_error_line(tmp_path, capsys):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    assert main(["new-plugin", "fine", "--dir", str(not_a_folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gankit: error: cannot create {not_a_folder / 'gankit-fine'}: ")
    assert err.count("\n") == 1


def test_a_path_too_long_for_the_file_system_is_one_error_line(tmp_path, capsys):
    deep = tmp_path / ("d" * 250) / ("d" * 250)
    assert main(["new-plugin", "fine", "--dir", str(deep / ("d" * 300))]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gankit: error: cannot create ") and "File name too long" in err
    assert err.count("\n") == 1


def test_a_failed_write_leaves_no_half_written_plugin(tmp_path, monkeypatch, capsys):
    real_write_text = Path.write_text
    written = []

    def write_text(self, *args, **kwargs):
        if len(written) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        written.append(self)
        return real_write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    assert main(["new-plugin", "full", "--dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"gankit: error: cannot write the plugin into "
                                       f"{tmp_path / 'gankit-full'}: No space left on device\n")
    assert list(tmp_path.iterdir()) == []  # so a second try is not "already exists"
