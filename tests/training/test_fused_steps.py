"""Several steps per compiled call (``train.steps_per_call``): the same numbers as one step
per call, a NaN stops inside a call at its step, calls end where a callback needs the
models, and a signal stops at the end of the call in progress, after which a resume ends
bit-identical to a run of one step per call."""

from __future__ import annotations

import copy
import os
import signal

import numpy as np
import pytest
import session_kit as kit
import tensorflow as tf
from tiny import tiny_recipe

import gankit
from gankit.errors import TrainingError
from gankit.interfaces import Callback, Examples
from gankit.params import Param
from gankit.plugin.manager import load_plugins
from gankit.recipe.validation import validate
from gankit.rundir.run_dir import RunDir
from gankit.training.data import step_batches
from gankit.training.loop import CallPlan, Interrupted, Trainer
from gankit_training.strategy import GANStrategy

STEPS = 12
RECIPE = tiny_recipe("fused", {
    "steps": STEPS, "batch_size": 4, "seed": 3, "shuffle": True, "sample_every": 3,
    "grid_every": 6, "grid_size": 2, "checkpoint_every": 100, "keep_checkpoints": 5},
    ema={"decay": 0.9, "start": 2})


class PoisonedStrategy(GANStrategy):
    """The gan strategy with g_loss NaN from one step on (counted from 1)."""

    name = "poisoned_fused"
    params = {**GANStrategy.params, "from_step": Param(int, 3, min=1)}

    def train_step(self, batch, models, ctx):
        out = super().train_step(batch, models, ctx)
        hit = ctx.step + 1 >= self.config["from_step"]
        metrics = dict(out.metrics)
        metrics["g_loss"] = tf.where(hit, tf.constant(float("nan")), metrics["g_loss"])
        return out._replace(metrics=metrics)


class _Plugin:
    @gankit.hookimpl
    def gankit_register_components(self, register):
        register(PoisonedStrategy)


class Spy(Callback):
    """Records, at each step, the step counter of the models (where the call has got to),
    and asks for a boundary at step 5; sends a signal at one step if told to."""

    name = "spy"

    def __init__(self, signal_at: int | None = None) -> None:
        self.config = {}
        self.signal_at = signal_at
        self.counter_at: dict[int, int] = {}

    def needs_boundary(self, step: int) -> bool:
        return step == 5

    def on_step_end(self, step, logs):
        self.counter_at[step] = int(self.run.session.step_counter.numpy())
        if step == self.signal_at:
            os.kill(os.getpid(), signal.SIGTERM)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory, make_image_folder):
    return make_image_folder(tmp_path_factory.mktemp("fused") / "images", 16, 24)


def _recipe(images, registry=None, strategy=None, **train):
    raw = copy.deepcopy(RECIPE)
    raw["dataset"]["path"] = str(images)
    raw["train"].update(train)
    if strategy:
        raw["strategy"] = strategy
    return validate(raw, registry or load_plugins().registry)


def _run(recipe, path, callbacks=(), resume=False):
    run = RunDir(path) if resume else RunDir(path).create()
    if not resume:
        run.write_recipe(recipe.to_dict())
    trainer = Trainer(recipe, run, resume=resume, progress=False, callbacks=callbacks)
    return trainer, trainer.run()


def _state(run_path, step):
    reader = tf.train.load_checkpoint(str(run_path / "checkpoints" / f"ckpt-{step:08d}" / "state"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if not name.startswith("_CHECKPOINTABLE")}


def _assert_same_state(a, b):
    assert sorted(a) == sorted(b) and len(a) > 20
    different = [k for k in a if not np.array_equal(a[k], b[k])]
    assert not different, different[:5]


@pytest.fixture(scope="module")
def unfused(image_folder, tmp_path_factory):
    """An uninterrupted run of one step per call."""
    path = tmp_path_factory.mktemp("unfused") / "run"
    _run(_recipe(image_folder, steps_per_call=1), path)
    return path


def test_a_fused_session_gives_the_same_weights_and_metrics_as_one_step_per_call():
    """Calls of 4, 3, 1 and 4 steps against 12 calls of one step, with EMA, two
    discriminator updates and dropout (the trainer's tests below use XLA-compiled updates)."""
    parts = dict(ema=(0.9, 2), d_steps=2, discriminator={"dropout": 0.3})
    one, fused = (kit.session(seed=1, xla="off", **parts) for _ in range(2))
    data = dict(batch_size=4, batches_per_step=2, seed=1, shuffle=True)
    step = one.step_function()
    expected = []
    for s, batch in step_batches(Examples(kit.images(16)), start=0, stop=STEPS, **data):
        metrics, _ = step(s, batch)
        expected.append({k: float(v) for k, v in metrics.items()})
    plan = [(0, 4), (4, 3), (7, 1), (8, 4)]
    calls = step_batches(Examples(kit.images(16)), start=0, stop=0, calls=lambda: iter(plan),
                         **data)
    run_steps = fused.steps_function(calls.element_spec[1])
    got = []
    for (first, k), (steps, batches) in zip(plan, calls, strict=True):
        assert steps.numpy().tolist() == list(range(first, first + k))
        metrics, fakes, n = run_steps(steps[0], batches)
        assert int(n) == steps.shape[0] == fakes.shape[0]
        got += [{k: float(v[j]) for k, v in metrics.items()} for j in range(int(n))]
    assert got == expected
    assert run_steps.experimental_get_tracing_count() == 1  # every call size, one trace
    for a, b in zip(one.generator.variables + one.discriminator.variables + one.ema.shadow.variables,
                    fused.generator.variables + fused.discriminator.variables
                    + fused.ema.shadow.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert int(fused.step_counter.numpy()) == STEPS


def test_signal_inside_a_call_stops_at_its_end_and_resume_matches_one_step_per_call(
        image_folder, unfused, tmp_path):
    path = tmp_path / "run"
    recipe = _recipe(image_folder, steps_per_call=4)
    spy = Spy(signal_at=2)
    with pytest.raises(Interrupted) as stop:
        _run(recipe, path, callbacks=[spy])
    # Calls: 1-4 (the signal at step 2 lets it finish), checkpoint at 4.
    assert stop.value.step == 4 and stop.value.exit_code == 143
    assert "stopped by SIGTERM after step 4" in str(stop.value)
    assert sorted(int(p.name[5:]) for p in (path / "checkpoints").glob("ckpt-*")) == [4]
    assert spy.counter_at == {1: 4, 2: 4, 3: 4, 4: 4}  # one call ran steps 1-4
    assert RunDir(path).read_status()["status"] == "interrupted"

    spy = Spy()
    _, result = _run(recipe, path, callbacks=[spy], resume=True)
    assert result.step == STEPS
    # Calls end at 5 (the spy), 6 (grid), 10 (4 steps), 12 (the last step).
    assert spy.counter_at == {5: 5, 6: 6, 7: 10, 8: 10, 9: 10, 10: 10, 11: 12, 12: 12}
    assert (path / "losses.csv").read_text() == (unfused / "losses.csv").read_text()
    assert sorted(p.name for p in (path / "samples").iterdir()) == \
        sorted(p.name for p in (unfused / "samples").iterdir())
    _assert_same_state(_state(path, STEPS), _state(unfused, STEPS))
    for name in ("generated_000003.png", "generated_000009.png", "real_000003.png",
                 "grid_000006.png", "grid_000012.png"):
        a, b = (p / "samples" / name for p in (path, unfused))
        assert a.read_bytes() == b.read_bytes(), name


def test_a_nan_inside_a_call_stops_at_its_step_and_keeps_the_last_checkpoint(
        image_folder, tmp_path):
    registry = load_plugins(extra=[("poison_fused", _Plugin())]).registry
    recipe = _recipe(image_folder, registry, strategy={"type": "poisoned_fused", "from_step": 7},
                     steps_per_call=8, checkpoint_every=4)
    path = tmp_path / "run"
    with pytest.raises(TrainingError) as err:
        _run(recipe, path)
    message = str(err.value)
    assert "g_loss became nan at step 7; training stopped and the last checkpoint (step 4) " \
           "is untouched" in message
    assert sorted(int(p.name[5:]) for p in (path / "checkpoints").glob("ckpt-*")) == [4]
    rows = (path / "losses.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(1, 8))
    assert "nan" in rows[-1] and "nan" not in "".join(rows[:-1])
    assert RunDir(path).read_status()["status"] == "failed"


def test_the_call_plan_honours_boundaries_the_limit_and_a_deadline():
    plan = CallPlan(3, 30, 4, boundary=lambda s: s % 10 == 0)
    assert list(plan.calls()) == [(3, 4), (7, 3), (10, 4), (14, 4), (18, 2), (20, 4), (24, 4),
                                  (28, 2)]
    auto = CallPlan(0, 1000, "auto", boundary=lambda s: False)
    assert auto.size(0) == 1  # nothing measured yet
    auto.record(1, 9.0)  # the first call compiles: ignored
    assert auto.size(0) == 1
    auto.record(4, 0.04)  # 10 ms a step
    assert auto.size(0) == CallPlan.AUTO_MAX
    auto.record(2, 0.8)
    auto.record(2, 0.8)  # now the median step takes 0.4 s
    assert auto.size(0) == int(CallPlan.AUTO_SECONDS / 0.4)
    import time

    late = CallPlan(0, 1000, 50, boundary=lambda s: False, deadline=time.perf_counter() + 0.3)
    late.record(1, 5.0)
    late.record(10, 1.0)  # 0.1 s a step, 0.3 s left: about 3 steps
    assert 1 <= late.size(0) <= 3
    big = CallPlan(0, 100, 50, boundary=lambda s: False, step_bytes=CallPlan.CALL_BYTES // 2)
    assert big.size(0) == 2  # a call's batches stay under CALL_BYTES
    failing = CallPlan(0, 10, 4, boundary=lambda s: 1 / 0)
    assert list(failing.calls()) == []
    with pytest.raises(ZeroDivisionError):
        failing.check(0, None)


def test_the_calls_pipeline_is_not_autotuned_and_stops_at_once():
    """tf.data's autotuner grew with every call and made deleting the iterator of a
    90-second run wait 53 s (and competed with the steps for the cores)."""
    import time

    images = Examples(np.zeros((8, 4, 4, 3), np.float32))
    calls = lambda: iter([(first, 2) for first in range(0, 400, 2)])  # noqa: E731
    data = step_batches(images, batch_size=2, batches_per_step=1, seed=0, shuffle=True,
                        start=0, stop=400, calls=calls)
    assert data.options().autotune.enabled is False
    it = iter(data)
    for _ in range(150):
        steps, _batch = next(it)
    t0 = time.perf_counter()
    del it
    assert time.perf_counter() - t0 < 5
    assert [int(s) for s in steps] == [298, 299]
