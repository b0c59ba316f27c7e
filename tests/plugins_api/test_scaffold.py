"""`gankit new-plugin`: what it writes, and what it refuses. (That the skeleton's own tests
pass once installed is shown in test_fresh_venv.py.)"""

import sys

import pytest

from gankit.cli import main
from gankit.scaffold import plugin_names, write_plugin


def test_new_plugin_writes_a_complete_package(tmp_path, capsys):
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    assert main(["new-plugin", "my-plugin", "--dir", str(tmp_path)]) == 0
    folder = tmp_path / "gankit-my-plugin"
    assert f"Created {folder}" in capsys.readouterr().out
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert files == ["README.md", "gankit_my_plugin/__init__.py",
                     "gankit_my_plugin/generator.py", "pyproject.toml",
                     "recipes/example.yaml", "tests/test_my_plugin.py"]
    project = tomllib.loads((folder / "pyproject.toml").read_text())
    assert project["project"]["name"] == "gankit-my-plugin"
    assert project["project"]["entry-points"]["gankit"] == {"my_plugin": "gankit_my_plugin"}
    assert "type: my_plugin:mlp" in (folder / "recipes" / "example.yaml").read_text()
    for path in folder.rglob("*.py"):
        compile(path.read_text(), str(path), "exec")


def test_the_skeleton_component_and_recipe_work_without_installing(tmp_path, monkeypatch):
    from gankit.plugins import load_plugins
    from gankit.recipe import load_recipe
    from gankit.testing import check_generator

    folder = write_plugin("demo_two", tmp_path)
    monkeypatch.syspath_prepend(str(folder))
    try:
        import gankit_demo_two
        from gankit_demo_two.generator import MLPGenerator

        check_generator(MLPGenerator(latent_dim=4, height=4, width=4, units=4))
        loaded = load_plugins(extra=[("demo_two", gankit_demo_two)])
        assert loaded.errors == []
        recipe = load_recipe(folder / "recipes" / "example.yaml", registry=loaded.registry)
        assert recipe.components["generator"].registration.component is MLPGenerator
    finally:
        for module in ("gankit_demo_two", "gankit_demo_two.generator"):
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
