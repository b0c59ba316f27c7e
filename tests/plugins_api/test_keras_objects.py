"""Custom Keras layers: a plugin declares them in its gankit_keras_objects hook, and every
place gankit loads a saved model finds them, in a fresh process too; without the hook the
one-line error names the class, its module and the plugin that should declare it."""

import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

import gankit
from gankit.errors import GankitError, RecipeError
from gankit.plugin import manager
from gankit.plugin.keras_objects import declared_objects, load_keras_model, saved_objects
from gankit.plugin.manager import load_plugins
from gankit.testing import MODEL_CHECKS, check_generator

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "writing-plugins.md"
# The guide's example plugin, installed under other names so that it cannot meet an
# installed gankit-example: (name in the guide, name here).
RENAMES = [("gankit_pixelnorm", "pixelnorm_example")]
PACKAGE, DIST, PLUGIN = "pixelnorm_example", "gankit-pixelnorm", "pixelnorm"


def guide_code(first_line: str) -> str:
    """The python block of the guide's 'Custom Keras layers' section that starts with
    ``first_line``."""
    text = GUIDE.read_text()
    section = text[text.index("### Custom Keras layers"):]
    section = section[:section.index("\n## ")]
    for block in re.findall(r"```python\n(.*?)```", section, re.S):
        if block.startswith(first_line):
            return block
    raise AssertionError(f"the guide's 'Custom Keras layers' has no block starting {first_line}")


def renamed(text: str, back: bool = False) -> str:
    for theirs, ours in RENAMES:
        text = text.replace(ours, theirs) if back else text.replace(theirs, ours)
    return text


GENERATOR = '''
from gankit import Generator, Param


class PixelNormGenerator(Generator):
    name = "pixelnorm"
    params = {"latent_dim": Param(int, 4, min=1)}

    @property
    def image_shape(self):
        return (4, 4, 1)

    def build(self):
        import keras
        from keras import layers

        from pixelnorm_example.layers import PixelNorm

        z = keras.Input((self.latent_dim,))
        x = layers.Dense(16, activation="tanh")(PixelNorm()(z))
        return keras.Model(z, layers.Reshape((4, 4, 1))(x))
'''

PLUGIN_MODULE = '''import gankit

from pixelnorm_example.generator import PixelNormGenerator


@gankit.hookimpl
def gankit_register_components(register):
    register(PixelNormGenerator)
'''


@pytest.fixture
def install(site, monkeypatch):
    """Install the guide's example (with or without its hook) as a plugin; the default
    plugins are loaded afresh, and its modules forgotten after the test."""

    def install(hook: bool = True):
        folder = site.path / PACKAGE
        folder.mkdir()
        (folder / "layers.py").write_text(renamed(guide_code("# gankit_pixelnorm/layers.py")))
        (folder / "generator.py").write_text(GENERATOR)
        hook_code = renamed(guide_code("# gankit_pixelnorm/__init__.py")) if hook else ""
        (folder / "__init__.py").write_text(PLUGIN_MODULE + "\n\n" + hook_code)
        site.add(DIST, "1.0", {PLUGIN: PACKAGE}, {})
        monkeypatch.setattr(manager, "_cached", None)
        return site

    yield install
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]


def test_the_guides_layer_and_hook_pass_the_save_check_in_a_fresh_process(install, tmp_path):
    install(hook=True)
    from pixelnorm_example.generator import PixelNormGenerator

    generator = PixelNormGenerator()
    report = check_generator(generator, skip=[c for c in MODEL_CHECKS if c != "save"])
    assert report.passed == ("save",)
    path = tmp_path / "generator.keras"
    generator.build().save(path)
    # What makes the check load it in a second process: a class that is not Keras' own.
    [needed] = saved_objects(path)
    assert (needed.name, needed.lookup_name, needed.module) == (
        "PixelNorm", "pixelnorm_example>PixelNorm", "pixelnorm_example.layers")


LOAD = """
import sys
import gankit
gankit.default_plugins()
print("tensorflow" in sys.modules)
try:
    model = gankit.load_keras_model(sys.argv[1])
    print("loaded", type(model.layers[1]).__name__)
except gankit.GankitError as exc:
    print(exc)
"""


def _load_in_a_new_process(site, path: Path) -> list[str]:
    done = subprocess.run([sys.executable, "-c", LOAD, str(path)], capture_output=True,
                          text=True, env=site.env(TF_CPP_MIN_LOG_LEVEL="2"), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()


def test_without_the_hook_a_new_process_names_the_class_its_module_and_the_plugin(install,
                                                                                  tmp_path):
    site = install(hook=False)
    from pixelnorm_example.generator import PixelNormGenerator

    path = tmp_path / "runs" / "shapes" / "generator.keras"
    path.parent.mkdir(parents=True)
    PixelNormGenerator().build().save(path)  # registered here, so it loads here
    assert type(load_keras_model(path).layers[1]).__name__ == "PixelNorm"

    tensorflow_after_plugins, message = _load_in_a_new_process(site, path)
    assert tensorflow_after_plugins == "False"
    message = renamed(message.replace(str(tmp_path) + "/", ""), back=True)
    assert message in GUIDE.read_text(), message  # the guide shows this very message
    assert message.startswith("cannot load runs/shapes/generator.keras: it uses the Keras class "
                              "'PixelNorm' (saved as 'gankit_pixelnorm>PixelNorm', from module "
                              "'gankit_pixelnorm.layers'), which no loaded plugin declares; it "
                              "comes from plugin 'pixelnorm' (distribution 'gankit-pixelnorm'): "
                              "return it from that plugin's gankit_keras_objects hook")


def test_loading_a_plugin_with_the_hook_imports_no_tensorflow(install):
    site = install(hook=True)
    code = ("import sys, gankit; loaded = gankit.default_plugins(); "
            "print([p.status for p in loaded.plugins if p.name == 'pixelnorm'], "
            "sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=site.env(), timeout=120)
    assert done.stdout.strip() == "['loaded'] []", done.stderr[-2000:]


# --- in this process: hooks given directly, layers never registered with Keras ------------

def _layers():
    import keras

    class Twice(keras.layers.Layer):  # not registered: only a hook makes it known
        def call(self, x):
            return x * 2.0

    class Thrice(keras.layers.Layer):
        def call(self, x):
            return x * 3.0

    return Twice, Thrice


def _save(tmp_path, layer, name="model.keras") -> Path:
    import keras

    z = keras.Input((2,))
    path = tmp_path / name
    keras.Model(z, keras.layers.Dense(3)(layer(name="custom")(z))).save(path)
    return path


def _plugin(name: str, answer):
    """A plugin module whose gankit_keras_objects hook returns ``answer`` (or raises it)."""
    module = types.ModuleType(name)

    def gankit_keras_objects():
        if isinstance(answer, Exception):
            raise answer
        return answer

    module.gankit_keras_objects = gankit.hookimpl(gankit_keras_objects)
    gankit_keras_objects.__module__ = name
    return module


def _loaded(*plugins):
    return load_plugins(entry_points=False, extra=[(p.__name__, p) for p in plugins])


def test_load_saved_finds_a_layer_a_plugin_declares_and_names_it_when_none_does(tmp_path,
                                                                                monkeypatch):
    from gankit.rundir.generators import load_saved

    twice, _ = _layers()
    path = _save(tmp_path, twice, "generator.keras")
    run = types.SimpleNamespace(path=tmp_path)
    monkeypatch.setattr(manager, "_cached", load_plugins(extra=[("local", _plugin("local",
                                                                                    [twice]))]))
    assert type(load_saved(run, path).layers[1]).__name__ == "Twice"
    monkeypatch.setattr(manager, "_cached", load_plugins())
    with pytest.raises(GankitError) as caught:
        load_saved(run, path)
    message = str(caught.value)
    assert message.startswith(f"cannot load {path}: it uses the Keras class 'Twice' (from module "
                              f"'{twice.__module__}'), which no loaded plugin declares; ")
    assert "gankit_keras_objects hook" in message and "\n" not in message


def test_a_hook_may_return_a_dict_and_a_broken_hook_spoils_only_its_own_plugin(tmp_path):
    twice, thrice = _layers()
    path = _save(tmp_path, twice)
    loaded = _loaded(_plugin("renamed", {"Twice": twice}), _plugin("raises", ImportError("no")),
                     _plugin("bad", "Twice"), _plugin("fine", [thrice]))
    declared = declared_objects(loaded)
    assert declared.objects["Twice"] is twice and declared.objects["Thrice"] is thrice
    assert declared.problems == {
        "raises": "its gankit_keras_objects hook raised ImportError: no",
        "bad": "its gankit_keras_objects hook returned str; expected a list of classes and "
               "functions or a dict of them by name"}
    assert type(load_keras_model(path, plugins=loaded).layers[1]).__name__ == "Twice"


def test_a_name_two_plugins_declare_for_different_objects_is_left_out_and_named(tmp_path):
    twice, _ = _layers()
    other, _ = _layers()  # another class of the same name
    path = _save(tmp_path, twice)
    loaded = _loaded(_plugin("one", [twice]), _plugin("two", [other]))
    assert "Twice" not in declared_objects(loaded).objects
    with pytest.raises(GankitError, match="which plugins 'one' and 'two' each declare for a "
                                          "different object; register each with"):
        load_keras_model(path, plugins=loaded)
    assert declared_objects(_loaded(_plugin("one", [twice]),
                                    _plugin("two", [twice]))).objects["Twice"] is twice


def test_a_damaged_file_keeps_keras_reason(tmp_path):
    path = tmp_path / "broken.keras"
    path.write_bytes(b"not a zip")
    with pytest.raises(GankitError, match=f"^cannot load {re.escape(str(path))}: "):
        load_keras_model(path, plugins=_loaded())


def test_the_keras_model_extractor_and_the_projected_backbone_load_through_the_hooks(
        tmp_path, monkeypatch):
    from gankit_metrics.extractors import KerasModelExtractor
    from gankit_nets.projected import _load_backbone

    twice, _ = _layers()
    path = _save(tmp_path, twice)
    monkeypatch.setattr(manager, "_cached", load_plugins())
    with pytest.raises(GankitError, match="^extractor.path: cannot load .*the Keras class "
                                          "'Twice'"):
        KerasModelExtractor(path=str(path))._load()
    with pytest.raises(RecipeError, match="cannot load .* as a Keras model: it uses the Keras "
                                          "class 'Twice'"):
        _load_backbone(str(path))
    monkeypatch.setattr(manager, "_cached", load_plugins(extra=[("local", _plugin("local",
                                                                                    [twice]))]))
    assert KerasModelExtractor(path=str(path))._load()[1] == "custom"  # the layer before last
    assert type(_load_backbone(str(path)).layers[1]).__name__ == "Twice"


def test_a_model_of_keras_layers_only_needs_no_second_process(tmp_path):
    import keras

    z = keras.Input((2,))
    path = tmp_path / "plain.keras"
    keras.Model(z, keras.layers.Dense(3, activation="relu")(
        keras.layers.Embedding(4, 2)(keras.ops.cast(z, "int32")))).save(path)
    assert saved_objects(path) == []


def test_the_fresh_load_worker_is_shared_by_the_tests_of_a_session(monkeypatch):
    # pytest names the running test in the environment; a new name must not start a new
    # worker (and its TensorFlow import) for every test that checks a saved model.
    from gankit.testing.models import _FreshLoader

    monkeypatch.setenv("PYTEST_CURRENT_TEST", "tests/a.py::test_one (call)")
    first = _FreshLoader.for_here()
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "tests/b.py::test_two (call)")
    try:
        assert _FreshLoader.for_here() is first
        assert "PYTEST_CURRENT_TEST" not in first_env(first)
    finally:
        first.close()


def first_env(worker) -> dict:
    key = next(k for k, w in type(worker)._workers.items() if w is worker)
    return dict(key)


EXPORTED = """
import sys, numpy as np
z = np.load(sys.argv[2])
if sys.argv[3] == "saved_model":
    import tensorflow as tf
    loaded = tf.saved_model.load(sys.argv[1])  # kept: its functions need its variables
    out = loaded.serve(z).numpy()
elif sys.argv[3] == "onnx":
    import onnxruntime as ort
    out = ort.InferenceSession(sys.argv[1]).run(None, {"latent": z})[0]
elif sys.argv[3] == "litert":
    from ai_edge_litert.interpreter import Interpreter
    out = next(iter(Interpreter(model_path=sys.argv[1]).get_signature_runner()(latent=z).values()))
else:
    import gankit
    gankit.default_plugins()
    out = np.asarray(gankit.load_keras_model(sys.argv[1])(z))
assert (sys.argv[3] == "keras") == ("gankit" in sys.modules)
np.save(sys.argv[4], out)
"""


def test_a_generator_with_a_plugins_layer_exports_and_runs_elsewhere(install, tmp_path):
    import json
    import os

    import numpy as np

    from gankit.app.export import export, plan_export
    from gankit.util.images import to_uint8

    site = install(hook=True)
    from pixelnorm_example.generator import PixelNormGenerator

    model = PixelNormGenerator().build()
    model.save(tmp_path / "pixelnorm.keras")
    z = np.random.default_rng(3).standard_normal((8, 4)).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    expected = to_uint8(np.asarray(model(z, training=False)), (-1.0, 1.0))
    plain = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    formats = [("saved_model", tmp_path / "sm", plain),  # no plugin needed
               ("keras", tmp_path / "out.keras", site.env())]
    import importlib.util

    if importlib.util.find_spec("tf2onnx") and importlib.util.find_spec("onnxruntime"):
        formats.append(("onnx", tmp_path / "out.onnx", plain))
    if importlib.util.find_spec("ai_edge_litert"):
        formats.append(("litert", tmp_path / "out.tflite", plain))
    for fmt, out, env in formats:
        card = export(plan_export(tmp_path / "pixelnorm.keras", fmt, out=out))
        done = subprocess.run([sys.executable, "-c", EXPORTED, str(out), str(tmp_path / "z.npy"),
                               fmt, str(tmp_path / f"{fmt}.npy")], capture_output=True,
                              text=True, env={**env, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        got = np.load(tmp_path / f"{fmt}.npy")
        assert got.dtype == np.uint8 and np.abs(got.astype(int) - expected).max() <= 1, fmt
        if fmt != "keras":
            assert "needs" not in card
    card_file = json.loads((tmp_path / "out.keras.model.json").read_text())
    assert card_file["needs"] == [{"class": "PixelNorm", "saved_as": "pixelnorm_example>PixelNorm",
                                   "module": "pixelnorm_example.layers",
                                   "distribution": "gankit-pixelnorm"}]
    assert card_file["usage"][2].startswith("model = gankit.load_keras_model('out.keras')  # its "
                                            "layers come from gankit-pixelnorm: pip install it")
