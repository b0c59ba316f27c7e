"""Conformance checks for optimizers and learning-rate schedules."""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

from gankit.interfaces import Optimizer, Schedule
from gankit.testing.conformance import (
    CheckRun,
    ConformanceReport,
    check_config_round_trip,
    require_kind,
)

OPTIMIZER_CHECKS = ("interface", "config", "create", "update", "checkpoint")
"""The checks of :func:`check_optimizer`, in the order run."""

SCHEDULE_CHECKS = ("interface", "config", "create", "values", "serialize")
"""The checks of :func:`check_schedule`, in the order run."""


def check_optimizer(optimizer: Optimizer, *, skip: Iterable[str] = ()) -> ConformanceReport:
    """Check that an optimizer component makes what the core applies and checkpoints.

    Checks, in order (names for ``skip``):

    - ``interface``, ``config``: an :class:`gankit.Optimizer`; the config round trip.
    - ``create``: ``create()`` returns a new ``keras.optimizers.Optimizer`` on every call,
      not yet built (the core builds it on the model's weights).
    - ``update``: two ``apply_gradients`` steps of a gradient of ones on a small variable
      move it, and its values stay finite (a rate of 0 or a schedule at 0 fails).
    - ``checkpoint``: a ``tf.train.Checkpoint`` of the optimizer after those steps, read into
      a new one (built on a new variable), gives the same next step exactly: its slots and
      iteration count are variables the run's checkpoint holds.

    Raises:
        ConformanceError: naming the failed check and the problem.
        TypeError: if ``optimizer`` is not a :class:`gankit.Optimizer` instance.
    """
    require_kind(optimizer, Optimizer, "check_optimizer")
    run = CheckRun(optimizer, OPTIMIZER_CHECKS, skip)
    state: dict = {}

    def create():
        import keras

        first, second = optimizer.create(), optimizer.create()
        for made in (first, second):
            if not isinstance(made, keras.optimizers.Optimizer):
                run.fail(f"create() returned {type(made).__name__}, expected a "
                         f"keras.optimizers.Optimizer")
        if first is second:
            run.fail("create() returned the same optimizer twice; make a new one on every call "
                     "(the generator and the discriminator each get their own)")
        if getattr(first, "built", False):
            run.fail("create() returned an optimizer that is already built; leave building to "
                     "the core (it builds it on the model's trainable weights)")

    def _steps(made, variable, n):
        import tensorflow as tf

        for _ in range(n):
            made.apply_gradients([(tf.ones_like(variable), variable)])

    def update():
        import tensorflow as tf

        made = optimizer.create()
        variable = tf.Variable(np.linspace(-1.0, 1.0, 6, dtype=np.float32), name="weight")
        before = variable.numpy().copy()
        _steps(made, variable, 2)
        after = variable.numpy()
        if not np.isfinite(after).all():
            run.fail("two steps made the variable non-finite")
        if np.array_equal(before, after):
            run.fail("two steps with a gradient of ones left the variable unchanged (a "
                     "learning rate of 0, or a schedule that is 0 at the first steps?)")
        state["made"], state["variable"] = made, variable

    def checkpoint():
        import tensorflow as tf

        if "made" not in state:
            run.fail("needs the 'update' check, which was skipped")
        import tempfile

        made, variable = state["made"], state["variable"]
        with tempfile.TemporaryDirectory(prefix="gankit-check-optimizer-") as folder:
            path = tf.train.Checkpoint(optimizer=made, weight=variable).write(
                f"{folder}/ckpt")
            fresh_variable = tf.Variable(np.zeros(6, np.float32), name="weight")
            fresh = optimizer.create()
            fresh.build([fresh_variable])
            tf.train.Checkpoint(optimizer=fresh, weight=fresh_variable).read(
                path).assert_existing_objects_matched()
        _steps(made, variable, 1)
        _steps(fresh, fresh_variable, 1)
        if not np.array_equal(variable.numpy(), fresh_variable.numpy()):
            run.fail("after a checkpoint read into a new optimizer, the next step differs from "
                     "the uninterrupted one: some of its state is not in its variables, so a "
                     "resumed run continues differently")

    return run.run({"interface": lambda: None,
                    "config": lambda: check_config_round_trip(optimizer, run.fail),
                    "create": create, "update": update, "checkpoint": checkpoint})


def check_schedule(schedule: Schedule, *, steps: Sequence[int] = (0, 1, 10, 100, 10_000),
                   skip: Iterable[str] = ()) -> ConformanceReport:
    """Check that a schedule makes a learning rate Keras can use and a run can store.

    Checks, in order (names for ``skip``):

    - ``interface``, ``config``: a :class:`gankit.Schedule`; the config round trip.
    - ``create``: ``create()`` returns a new ``keras.optimizers.schedules.LearningRateSchedule``
      on every call.
    - ``values``: the rate at each of ``steps`` (as an int64 tensor, as an optimizer's
      iteration count is) is a finite float, >= 0, the same twice and the same under
      ``tf.function``, and not 0 at every step.
    - ``serialize``: ``keras.optimizers.schedules.serialize`` and ``deserialize`` give a
      schedule with the same rates (an optimizer saved with a model stores its schedule so).

    Raises:
        ConformanceError: naming the failed check and the problem.
        TypeError: if ``schedule`` is not a :class:`gankit.Schedule` instance.
    """
    require_kind(schedule, Schedule, "check_schedule")
    run = CheckRun(schedule, SCHEDULE_CHECKS, skip)
    state: dict = {}

    def rates(made, compiled=False) -> list[float]:
        import tensorflow as tf

        fn = tf.function(lambda s: made(s)) if compiled else made
        return [float(fn(tf.constant(s, tf.int64))) for s in steps]

    def create():
        import keras

        first, second = schedule.create(), schedule.create()
        for made in (first, second):
            if not isinstance(made, keras.optimizers.schedules.LearningRateSchedule):
                run.fail(f"create() returned {type(made).__name__}, expected a "
                         f"keras.optimizers.schedules.LearningRateSchedule")
        if first is second:
            run.fail("create() returned the same schedule twice; make a new one on every call")
        state["made"] = first

    def values():
        made = state.get("made") or schedule.create()
        got = rates(made)
        for step, rate in zip(steps, got):
            if not math.isfinite(rate) or rate < 0:
                run.fail(f"the rate at step {step} is {rate}: expected a finite rate >= 0")
        if all(rate == 0 for rate in got):
            run.fail(f"the rate is 0 at every step of {list(steps)}")
        if rates(made) != got:
            run.fail("the same steps gave other rates the second time")
        compiled = rates(made, compiled=True)
        if not np.allclose(compiled, got, rtol=1e-6, atol=0):
            run.fail(f"under tf.function the rates are {compiled}, eagerly {got}")
        state["rates"] = got

    def serialize():
        import keras

        made = state.get("made") or schedule.create()
        again = keras.optimizers.schedules.deserialize(
            keras.optimizers.schedules.serialize(made))
        if not np.allclose(rates(again), state.get("rates") or rates(made), rtol=1e-6, atol=0):
            run.fail("keras.optimizers.schedules.deserialize(serialize(schedule)) gives other "
                     "rates: a saved optimizer would come back with another schedule")

    return run.run({"interface": lambda: None,
                    "config": lambda: check_config_round_trip(schedule, run.fail),
                    "create": create, "values": values, "serialize": serialize})
