"""Loading plugins from real (tiny) installed distributions: every failure names the
distribution, and the other plugins keep working."""

import json
import sys

import pytest
import yaml

from gankit.errors import ComponentNotFoundError
from gankit.plugin.manager import load_plugins
from gankit.recipe.validation import load_recipe


def _info(loaded, name):
    return next(p for p in loaded.plugins if p.name == name)


def _builtins_still_work(loaded):
    assert loaded.registry.get("generator", "frog_dcgan").distribution == "gankit"
    assert {p.name: p.status for p in loaded.plugins}["dcgan"] == "loaded"


def test_a_plugin_that_fails_to_import_names_its_distribution_and_the_rest_load(site):
    site.add("gankit-broken", "0.3", {"broken": "broken_plugin"},
             {"broken_plugin": "import a_package_that_is_not_installed\n"})
    site.add_good("gankit-fine", "fine", "fine_gen")

    loaded = load_plugins()

    info = _info(loaded, "broken")
    assert info.status == "failed"
    assert info.error.startswith("plugin 'broken' from distribution 'gankit-broken' failed to "
                                 "load: ModuleNotFoundError: No module named "
                                 "'a_package_that_is_not_installed'")
    assert "disable it with GANKIT_DISABLE_PLUGINS=broken" in info.error
    assert loaded.errors == [info.error]
    assert loaded.registry.get("generator", "fine_gen").distribution == "gankit-fine"
    _builtins_still_work(loaded)


def test_a_plugin_that_exits_on_import_does_not_stop_gankit(site):
    site.add("gankit-exits", "1.0", {"exits": "exits_plugin"},
             {"exits_plugin": "raise SystemExit('needs a GPU')\n"})
    loaded = load_plugins()
    assert "distribution 'gankit-exits' failed to load: SystemExit: needs a GPU" in \
        _info(loaded, "exits").error
    _builtins_still_work(loaded)


def test_a_misspelled_hook_names_the_distribution_and_the_hook_meant(site):
    site.add("gankit-typo", "2.0", {"typo": "typo_plugin"}, {"typo_plugin": """
        import gankit

        @gankit.hookimpl
        def gankit_register_component(register):
            pass
        """})
    loaded = load_plugins()
    error = _info(loaded, "typo").error
    assert error.startswith("plugin 'typo' from distribution 'gankit-typo' failed to load: it "
                            "implements an unknown hook 'gankit_register_component' (did you "
                            "mean 'gankit_register_components'?)")
    _builtins_still_work(loaded)


def test_a_hook_without_the_decorator_is_an_error_not_silence(site):
    site.add("gankit-bare", "1.0", {"bare": "bare_plugin"}, {"bare_plugin": """
        def gankit_register_components(register):
            pass
        """})
    error = _info(load_plugins(), "bare").error
    assert "distribution 'gankit-bare'" in error
    assert ("its function 'gankit_register_components' is not decorated with @gankit.hookimpl "
            "(decorate it with @gankit.hookimpl)") in error


def test_a_plugin_with_no_hook_at_all_is_reported(site):
    site.add("gankit-empty", "1.0", {"empty": "empty_plugin"}, {"empty_plugin": "X = 1\n"})
    error = _info(load_plugins(), "empty").error
    assert "distribution 'gankit-empty'" in error and "implements no gankit hook" in error


def test_a_hook_with_a_misnamed_argument_is_one_line_naming_the_distribution(site):
    site.add("gankit-args", "1.0", {"args": "args_plugin"}, {"args_plugin": """
        import gankit

        @gankit.hookimpl
        def gankit_register_components(registry):
            pass
        """})
    error = _info(load_plugins(), "args").error
    assert "distribution 'gankit-args'" in error and "registry" in error
    assert "\n" not in error


def test_a_plugin_failing_half_way_leaves_nothing_registered(site):
    site.add("gankit-half", "1.0", {"half": "half_plugin"}, {"half_plugin": """
        import gankit
        from gankit import Generator

        class Half(Generator):
            name = "half_gen"
            latent_dim = 1
            image_shape = (1, 1, 1)
            def build(self):
                pass

        @gankit.hookimpl
        def gankit_register_components(register):
            register(Half)
            register(object)
        """})
    loaded = load_plugins()
    info = _info(loaded, "half")
    assert "distribution 'gankit-half'" in info.error and "not a gankit component" in info.error
    assert info.provides == []
    assert "half_gen" not in loaded.registry.names("generator")


def test_the_disable_switch_skips_plugins_by_plugin_or_distribution_name(site, monkeypatch):
    site.add("gankit-broken", "0.3", {"broken": "broken_plugin"},
             {"broken_plugin": "import a_package_that_is_not_installed\n"})
    site.add_good("gankit-fine", "fine", "fine_gen")
    for switch in ("broken", "gankit-broken", "Gankit_Broken", " broken , other_thing"):
        monkeypatch.setenv("GANKIT_DISABLE_PLUGINS", switch)
        loaded = load_plugins()
        assert _info(loaded, "broken").status == "disabled"
        assert loaded.errors == []
        assert loaded.registry.get("generator", "fine_gen")
    assert "broken_plugin" not in sys.modules  # a disabled plugin is never imported

    monkeypatch.setenv("GANKIT_DISABLE_PLUGINS", "fine")
    loaded = load_plugins()
    assert _info(loaded, "fine").status == "disabled"
    names = loaded.registry.names("generator")  # the built-ins, and any installed plugin's
    assert "fine_gen" not in names and {"dcgan", "frog_dcgan", "resnet"} <= set(names)


def test_a_disable_switch_naming_no_plugin_warns_with_the_closest_name(site, monkeypatch):
    site.add_good("gankit-fine", "fine", "fine_gen")
    monkeypatch.setenv("GANKIT_DISABLE_PLUGINS", "fien")
    loaded = load_plugins()
    assert _info(loaded, "fine").status == "loaded"
    assert loaded.warnings == ["GANKIT_DISABLE_PLUGINS names 'fien', but no installed plugin or "
                               "distribution has that name (did you mean 'fine'?)"]


def test_two_plugins_with_the_same_component_name_is_an_error_naming_both(site, tmp_path):
    site.add_good("gankit-alpha", "alpha", "twin", version="1.1")
    site.add_good("gankit-beta", "beta", "twin", version="2.2")
    registry = load_plugins().registry

    with pytest.raises(ComponentNotFoundError) as caught:
        registry.get("generator", "twin", path="generator.type")
    message = str(caught.value)
    assert "'alpha:twin' (distribution 'gankit-alpha')" in message
    assert "'beta:twin' (distribution 'gankit-beta')" in message
    assert "write the qualified name" in message

    assert registry.get("generator", "alpha:twin").distribution == "gankit-alpha"
    assert registry.get("generator", "beta:twin").distribution == "gankit-beta"
    with pytest.raises(ComponentNotFoundError, match="did you mean 'beta:twin'"):
        registry.get("generator", "betta:twin")


def test_a_recipe_chooses_between_clashing_names_with_the_plugin_namespace(site, tmp_path):
    site.add_good("gankit-alpha", "alpha", "twin")
    site.add_good("gankit-beta", "beta", "twin")
    registry = load_plugins().registry
    shape = {"height": 24, "width": 24, "channels": 1}
    recipe = {"generator": {"type": "twin"}, "discriminator": {"type": "frog_dcgan", **shape},
              "dataset": {"type": "image_folder", "path": "x", **shape},
              "loss": {"type": "bce"}, "train": {"steps": 1}}
    path = tmp_path / "twin.yaml"
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(ComponentNotFoundError) as caught:
        load_recipe(path, registry=registry)
    assert str(caught.value).startswith(f"{path}: generator.type: the generator name 'twin' is "
                                        "registered by more than one plugin")
    assert "gankit-alpha" in str(caught.value) and "gankit-beta" in str(caught.value)

    for plugin in ("alpha", "beta"):
        spec = load_recipe(path, [f"generator.type={plugin}:twin"],
                           registry=registry).components["generator"]
        assert spec.registration.distribution == f"gankit-{plugin}"
        assert spec.type == f"{plugin}:twin"  # stored qualified, so a resume resolves it alike


def test_two_distributions_claiming_one_plugin_name_are_both_named(site):
    site.add_good("gankit-first", "same", "first_gen")
    site.add("gankit-second", "1.0", {"same": "second_plugin"},
             {"second_plugin": "raise AssertionError('must not be imported')\n"})
    loaded = load_plugins()
    failed = [p for p in loaded.plugins if p.name == "same" and p.status == "failed"]
    assert len(failed) == 1
    assert failed[0].error.startswith(
        f"plugin 'same' from distribution '{failed[0].distribution}' failed to load: the "
        f"plugin name 'same' is already taken by distribution ")
    assert {"gankit-first", "gankit-second"} <= set(failed[0].error.replace("'", " ").split())


def test_the_trace_switch_shows_each_load_hook_call_and_registration(site, monkeypatch, capsys):
    site.add_good("gankit-fine", "fine", "fine_gen", version="3.1")
    load_plugins()
    assert capsys.readouterr().err == ""

    monkeypatch.setenv("GANKIT_TRACE_HOOKS", "1")
    load_plugins()
    err = capsys.readouterr().err
    assert "[gankit hooks] load plugin 'fine' = fine_plugin (gankit-fine 3.1)\n" in err
    assert ("[gankit hooks] call gankit_register_components(register) on 'fine' "
            "(gankit-fine 3.1)\n") in err
    assert ("[gankit hooks]   'fine' registered generator 'fine:fine_gen' = "
            "fine_plugin.FineGenerator\n") in err
    assert "[gankit hooks] finish gankit_register_components in " in err
    assert "[gankit hooks] load plugin 'dcgan' = gankit_dcgan (gankit " in err


def test_the_trace_shows_why_a_plugin_failed(site, monkeypatch, capsys):
    site.add("gankit-broken", "0.3", {"broken": "broken_plugin"},
             {"broken_plugin": "import a_package_that_is_not_installed\n"})
    load_plugins(trace=True)
    assert ("[gankit hooks] failed: plugin 'broken' from distribution 'gankit-broken' failed "
            "to load") in capsys.readouterr().err


# --- the `gankit plugins` command, in a subprocess that sees the fake distributions -------

def test_gankit_plugins_shows_versions_and_what_each_plugin_provides(site):
    site.add_good("gankit-fine", "fine", "fine_gen", version="3.1")
    result = site.gankit("plugins")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.split()[:4] == ["fine_gen", "fine:fine_gen", "gankit-fine", "3.1"]
               for line in lines), result.stdout
    plugin_line = next(line for line in lines if line.strip().startswith("fine "))
    assert plugin_line.split(None, 1)[1] == "gankit-fine 3.1  loaded: generator fine_gen"
    plugins = lines[lines.index("plugins:") + 1:]
    dcgan_line = next(line for line in plugins if line.strip().startswith("dcgan "))
    assert dcgan_line.endswith("loaded: generator frog_dcgan, discriminator frog_dcgan")
    training_line = next(line for line in plugins if line.strip().startswith("training "))
    assert "loss bce" in training_line and "strategy gan" in training_line


def test_gankit_plugins_json_has_versions_provides_and_errors(site):
    site.add_good("gankit-fine", "fine", "fine_gen", version="3.1")
    site.add("gankit-broken", "0.3", {"broken": "broken_plugin"},
             {"broken_plugin": "import a_package_that_is_not_installed\n"})
    result = site.gankit("plugins", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    plugins = {p["name"]: p for p in data["plugins"]}
    assert plugins["fine"] == {"name": "fine", "distribution": "gankit-fine", "version": "3.1",
                               "entry_point": "fine_plugin", "status": "loaded", "error": None,
                               "provides": ["generator:fine_gen"]}
    assert plugins["broken"]["status"] == "failed"
    assert "distribution 'gankit-broken'" in plugins["broken"]["error"]
    assert plugins["dcgan"]["distribution"] == "gankit" and plugins["dcgan"]["version"]
    fine = next(c for c in data["components"]["generator"] if c["name"] == "fine_gen")
    assert (fine["qualified_name"], fine["distribution"], fine["version"]) == \
        ("fine:fine_gen", "gankit-fine", "3.1")


def test_a_broken_plugin_is_one_error_line_and_the_cli_keeps_working(site):
    site.add("gankit-broken", "0.3", {"broken": "broken_plugin"},
             {"broken_plugin": "import a_package_that_is_not_installed\n"})
    result = site.gankit("plugins")
    assert result.returncode == 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("gankit: error:")]
    assert errors == ["gankit: error: plugin 'broken' from distribution 'gankit-broken' failed "
                      "to load: ModuleNotFoundError: No module named "
                      "'a_package_that_is_not_installed' (disable it with "
                      "GANKIT_DISABLE_PLUGINS=broken)"]
    assert "Traceback" not in result.stderr
    assert "frog_dcgan" in result.stdout

    quiet = site.gankit("plugins", GANKIT_DISABLE_PLUGINS="broken")
    assert "gankit: error" not in quiet.stderr
    assert "broken           gankit-broken 0.3  disabled" in quiet.stdout


def test_the_trace_switch_works_from_the_command_line(site):
    site.add_good("gankit-fine", "fine", "fine_gen", version="3.1")
    result = site.gankit("plugins", GANKIT_TRACE_HOOKS="1")
    assert "[gankit hooks] call gankit_register_components(register) on 'fine'" in result.stderr


def test_gankit_plugins_marks_a_name_clash_and_lists_both_providers(site):
    site.add_good("gankit-alpha", "alpha", "twin", version="1.1")
    site.add_good("gankit-beta", "beta", "twin", version="2.2")
    lines = [line for line in site.gankit("plugins").stdout.splitlines()
             if line.strip().startswith("twin ")]
    assert [line.split()[1:4] for line in lines] == [["alpha:twin", "gankit-alpha", "1.1"],
                                                     ["beta:twin", "gankit-beta", "2.2"]]
    assert all(line.endswith("[name clash: recipes must write the qualified name]")
               for line in lines)
