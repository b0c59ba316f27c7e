"""gankit 0.4's import paths keep working for one version, each with a DeprecationWarning
naming the new path (gankit/_compat.py); the new paths give the same objects."""

import importlib
import subprocess
import sys
import warnings

import pytest

from gankit import _compat

# what the docs, the example plugin and the built-ins of 0.4 imported
USED_IN_04 = [
    ("gankit.registry", "create", "gankit.plugin.manager"),
    ("gankit.training.context", "step_context", "gankit.interfaces.context"),
    ("gankit.training.context", "StepContext", "gankit.interfaces.context"),
    ("gankit.run_dir", "RunDir", "gankit.rundir.run_dir"),
    ("gankit.recipe", "load_recipe", "gankit.recipe.validation"),
    ("gankit.plugins", "default_plugins", "gankit.plugin.manager"),
    ("gankit.hookspecs", "gankit_register_components", "gankit.plugin.spec"),
    ("gankit.per_class", "logit_classes", "gankit.interfaces.metrics"),
    ("gankit.training.metric_names", "PER_CLASS", "gankit.interfaces.metric_names"),
    ("gankit.images", "to_uint8", "gankit.util.images"),
]


@pytest.mark.parametrize("old, name, new", USED_IN_04)
def test_an_old_path_gives_the_new_object_with_a_warning(old, name, new):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
        value = getattr(module, name)
    assert value is getattr(importlib.import_module(new), name)
    messages = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    assert any("gankit 0.6" in m and f"{old}" in m for m in messages), messages


def test_training_data_keeps_the_toolkit_names_with_a_warning():
    import gankit
    from gankit.training import data

    with pytest.warns(DeprecationWarning, match="gankit.training.data.fail_unless moved"):
        assert data.fail_unless is gankit.fail_unless


def test_every_moved_module_resolves():
    """Each old module of the table names homes that exist, and its names are found there."""
    for old, homes in _compat.MOVED.items():
        found = [h for h in homes if importlib.util.find_spec(h) is not None]
        assert found, f"{old}: none of {homes} exists"
    with pytest.raises(AttributeError, match="has no attribute 'nothing_here'"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            importlib.import_module("gankit.checkpoints").nothing_here


def test_a_new_path_warns_nothing():
    done = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c",
                           "import gankit, gankit.plugin.manager, gankit.recipe.validation, "
                           "gankit.rundir.run_dir; from gankit import create, step_context"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
