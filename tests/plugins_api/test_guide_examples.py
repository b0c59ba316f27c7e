"""Every example class of docs/writing-plugins.md is tested code: the guide shows each class
exactly as docs/examples/ defines it, and each passes the check of its kind."""

import importlib.util
import inspect
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from gankit.plugin.manager import default_plugins
from gankit.plugin.registry import Registry, using_registry
from gankit.testing import (
    AUGMENTER_CHECKS,
    OPTIMIZER_CHECKS,
    SCHEDULE_CHECKS,
    ConformanceError,
    check_augmenter,
    check_config,
    check_optimizer,
    check_schedule,
    check_strategy,
)

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "writing-plugins.md").read_text()


def _module(path: Path):
    """A module of docs/examples loaded from its file, under a name of its own: putting the
    example plugin's folder on sys.path would also show an egg-info left there by an
    editable install, and with it the plugin's entry point, to every later test."""
    name = "guide_example_" + "_".join(path.with_suffix("").parts[-2:])
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_GUIDE = ROOT / "docs" / "examples" / "guide"
_EXAMPLE = ROOT / "docs" / "examples" / "gankit-example" / "gankit_example"
AdaptiveNoise = _module(_GUIDE / "adaptive.py").AdaptiveNoise
AdaptNoise = sys.modules["guide_example_guide_adaptive"].AdaptNoise
Adafactor = _module(_GUIDE / "optim.py").Adafactor
LinearWarmup = sys.modules["guide_example_guide_optim"].LinearWarmup
SimultaneousStrategy = _module(_GUIDE / "simultaneous.py").SimultaneousStrategy
FooledShare = _module(_EXAMPLE / "callbacks.py").FooledShare
ConvCritic = _module(_EXAMPLE / "critic.py").ConvCritic
UpsamplingGenerator = _module(_EXAMPLE / "generator.py").UpsamplingGenerator
RelativisticAverageLoss = _module(_EXAMPLE / "relativistic.py").RelativisticAverageLoss

TINY = {"height": 8, "width": 8, "channels": 1}
SHOWN = [AdaptiveNoise, AdaptNoise, Adafactor, LinearWarmup, SimultaneousStrategy, FooledShare,
         RelativisticAverageLoss]


@pytest.mark.parametrize("component", SHOWN, ids=lambda c: c.__name__)
def test_the_guide_shows_the_class_as_it_is_tested(component):
    assert inspect.getsource(component) in GUIDE, (
        f"docs/writing-plugins.md no longer shows {component.__name__} as "
        f"{inspect.getsourcefile(component)} defines it")


def test_every_class_the_guide_defines_is_one_of_the_tested_ones():
    # A new example in the guide must come with its tested copy (here or in the example
    # plugin, whose own tests compare its modules with the guide).
    shown = set(re.findall(r"^class (\w+)\(", GUIDE, re.M))
    example = {name for path in (ROOT / "docs/examples/gankit-example/gankit_example").glob("*.py")
               for name in re.findall(r"^class (\w+)\(", path.read_text(), re.M)}
    keras_objects = {"PixelNorm"}  # tested by tests/plugins_api/test_keras_objects.py
    untested = shown - example - {c.__name__ for c in SHOWN} - keras_objects
    assert not untested, f"the guide shows untested classes: {sorted(untested)}"


@pytest.fixture(scope="module")
def registry():
    out = Registry()
    for reg in default_plugins().registry:
        out.register(reg.component, reg.name, plugin=reg.plugin, distribution=reg.distribution)
    for component in (Adafactor, LinearWarmup):
        out.register(component, plugin="guide")
    return out


def test_the_adaptive_augmenter_passes_its_checks():
    assert check_augmenter(AdaptiveNoise(stddev=0.2)).passed == AUGMENTER_CHECKS


def test_the_callback_raises_the_noise_while_real_images_score_high():
    import tensorflow as tf

    augmenter = AdaptiveNoise(stddev=0.1)
    callback = AdaptNoise(target=0.6, step_size=0.05)
    check_config(callback)

    class Session:
        pass

    class Run:
        session = Session()

    Run.session.augmenter = augmenter
    callback.on_train_begin(Run())
    callback.on_step_end(1, {"d_on_real": 0.9})
    assert float(augmenter.state()["stddev"].numpy()) == pytest.approx(0.15)
    for step in range(2, 6):
        callback.on_step_end(step, {"d_on_real": 0.1})
    assert float(augmenter.state()["stddev"].numpy()) == 0.0  # never below 0
    assert isinstance(augmenter.state()["stddev"], tf.Variable)


def test_the_schedule_passes_its_checks_and_rises_linearly():
    schedule = LinearWarmup(rate=1e-3, warmup_steps=10)
    assert check_schedule(schedule).passed == SCHEDULE_CHECKS
    made = schedule.create()
    assert [float(made(s)) for s in (0, 5, 10, 20)] == pytest.approx([1e-4, 5.5e-4, 1e-3, 1e-3])


def test_the_optimizer_passes_its_checks_with_a_rate_and_with_a_schedule(registry):
    assert check_optimizer(Adafactor()).passed == OPTIMIZER_CHECKS
    with using_registry(registry):
        scheduled = Adafactor(learning_rate={"type": "LinearWarmup", "rate": 1e-3})
        assert check_optimizer(scheduled).passed == OPTIMIZER_CHECKS


def test_a_broken_optimizer_and_schedule_fail_the_matching_check():
    class Shared(Adafactor):
        made = None

        def create(self):
            Shared.made = Shared.made or super().create()
            return Shared.made

    class Frozen(Adafactor):
        def create(self):
            import keras

            return keras.optimizers.SGD(learning_rate=0.0)

    class Zero(LinearWarmup):
        def create(self):
            import keras

            return keras.optimizers.schedules.ExponentialDecay(0.0, 10, 0.5)

    for component, check, match in [
            (Shared(), check_optimizer, "returned the same optimizer twice"),
            (Frozen(), check_optimizer, "left the variable unchanged"),
            (Zero(rate=1e-3), check_schedule, "the rate is 0 at every step")]:
        with pytest.raises(ConformanceError, match=match):
            check(component)


def test_the_strategy_trains_with_a_relativistic_loss():
    report = check_strategy(SimultaneousStrategy(),
                            UpsamplingGenerator(latent_dim=4, filters=4, **TINY),
                            ConvCritic(filters=4, **TINY), loss=RelativisticAverageLoss(),
                            images=np.zeros((4, 8, 8, 1), np.float32), skip=["determinism"])
    assert "training" in report.passed and "resume" in report.passed
