"""Conformance checks for training strategies, run the way the trainer runs them."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

from gankit.interfaces import Discriminator, Generator, StepOutputs, Strategy
from gankit.testing.conformance import (CheckRun, ConformanceReport, check_config_round_trip,
                                        require_kind)
from gankit.testing.data import make_images

STRATEGY_CHECKS = ("interface", "config", "setup", "inputs", "step", "training", "determinism",
                   "resume")
"""The checks of :func:`check_strategy`, in the order run."""


class _Session:
    """A strategy set up on freshly built models, stepping like the trainer does."""

    def __init__(self, strategy: Strategy, generator: Generator, discriminator: Discriminator,
                 seed: int, batch_size: int) -> None:
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(seed)
        self.strategy = strategy
        self.generator = generator.build()
        self.discriminator = discriminator.build()
        strategy.setup(self.generator, self.discriminator, generator.latent_dim)
        seed_tensor = tf.constant(seed, tf.int64)

        def step_fn(step, real):  # as in gankit.trainer.Trainer.step_function
            inputs = strategy.draw_inputs(tf.stack([seed_tensor, step]), batch_size)
            return strategy.train_step(real, inputs)

        self.step_fn = tf.function(step_fn, reduce_retracing=True)
        self.outputs: list[StepOutputs] = []

    def variables(self) -> dict[str, list]:
        groups = {"generator": self.generator.variables,
                  "discriminator": self.discriminator.variables}
        for role, optimizer in self.strategy.optimizers.items():
            groups[f"optimizer/{role}"] = optimizer.variables
        return groups

    def state(self) -> dict[str, list[tuple[str, np.ndarray]]]:
        """(path, value) of every variable, by group, as a checkpoint holds them."""
        return {g: [(v.path, np.array(v.numpy())) for v in vs] for g, vs in self.variables().items()}

    def restore(self, state: dict[str, list[tuple[str, np.ndarray]]]) -> bool:
        """Assign ``state`` like the trainer restores a checkpoint; False if it does not fit."""
        groups = self.variables()
        if {g: len(vs) for g, vs in groups.items()} != {g: len(vs) for g, vs in state.items()}:
            return False
        for group, variables in groups.items():
            for variable, (_, value) in zip(variables, state[group]):
                variable.assign(value)
        return True

    def step(self, images: np.ndarray, batch_size: int, k: int | None = None) -> StepOutputs:
        """Run step ``k`` (default: the next one) on the batch the trainer would feed."""
        import tensorflow as tf

        k = len(self.outputs) if k is None else k
        index = [(k * batch_size + i) % len(images) for i in range(batch_size)]
        out = self.step_fn(tf.constant(k, tf.int64), tf.constant(images[index]))
        self.outputs.append(out)
        return out


def check_strategy(strategy: Strategy, generator: Generator, discriminator: Discriminator, *,
                   images: Any = None, batch_size: int = 2, seed: int = 0,
                   deterministic: bool = True, skip: Iterable[str] = ()) -> ConformanceReport:
    """Check that a strategy trains a generator and a discriminator the way the trainer needs.

    The step is compiled with ``tf.function`` and fed exactly as the trainer does. Checks, in
    order (names for ``skip``):

    - ``interface``: the generator's and the discriminator's image shapes agree.
    - ``config``: ``get_config()``/``from_config()`` round trip (see :func:`check_config`).
    - ``setup``: ``setup()`` accepts freshly built models; ``optimizers`` is a non-empty
      mapping of Keras optimizers.
    - ``inputs``: ``draw_inputs`` returns tensors, the same for the same seed and different
      for another seed.
    - ``step``: ``train_step`` returns :class:`gankit.StepOutputs` whose metrics are finite
      scalars (at least one named ``*loss``) and whose ``fake_images`` have the image shape;
      the optimizers create no variables during the step (a checkpoint is restored into
      them before the first step).
    - ``training``: the step changes every trainable weight of both models.
    - ``determinism``: two fresh runs of two steps with the same seed end with identical
      metrics, weights and optimizer state.
    - ``resume``: restoring the state after step 1 into a fresh setup and running step 2
      gives exactly the uninterrupted run's state (no state kept outside variables).

    Args:
        strategy: the component; it is set up once and rebuilt from its config for the
            other runs.
        generator, discriminator: small components whose models the strategy trains.
        images: tiny real data ``(n, *image_shape)``; default: seeded noise in [0, 1].
        batch_size: real images per step.
        seed: the seed for weights and every step's random inputs.
        deterministic: turn on TensorFlow op determinism first, as the trainer does by
            default (a process-wide setting).
        skip: names of checks not to run.

    Raises:
        ConformanceError: naming the failed check and the problem.
        TypeError: if the arguments are not a Strategy, a Generator and a Discriminator.
    """
    require_kind(strategy, Strategy, "check_strategy")
    require_kind(generator, Generator, "check_strategy")
    require_kind(discriminator, Discriminator, "check_strategy")
    run = CheckRun(strategy, STRATEGY_CHECKS, skip)
    shape = tuple(generator.image_shape)
    data = (np.asarray(images, dtype=np.float32) if images is not None
            else make_images(2 * batch_size, shape, seed=seed))
    sessions: dict[str, Any] = {}

    def fresh(name: str) -> _Session:
        if name not in sessions:
            if deterministic:
                import tensorflow as tf
                tf.config.experimental.enable_op_determinism()
            instance = strategy if not sessions else type(strategy).from_config(
                strategy.get_config())
            sessions[name] = _Session(instance, generator, discriminator, seed, batch_size)
        return sessions[name]

    def first_step() -> tuple[_Session, dict, StepOutputs]:
        """The main session after its first step, its state before it, and the step's output."""
        main = fresh("main")
        if not main.outputs:
            sessions["before"] = main.state()
            out = main.step(data, batch_size)
            if not isinstance(out, StepOutputs):
                run.fail(f"train_step returned {type(out).__name__}, expected "
                         "gankit.StepOutputs(metrics, fake_images)")
            sessions["after1"] = main.state()
        return main, sessions["before"], main.outputs[0]

    def two_steps(session: _Session) -> dict:
        while len(session.outputs) < 2:
            session.step(data, batch_size)
        return session.state()

    def interface():
        if tuple(discriminator.image_shape) != shape:
            run.fail(f"the generator makes images of shape {shape} but the discriminator "
                     f"takes {tuple(discriminator.image_shape)}; configure them alike")
        if data.ndim != 4 or tuple(data.shape[1:]) != shape or len(data) < batch_size:
            run.fail(f"the images given have shape {data.shape}, expected at least "
                     f"{batch_size} images of shape {shape}")

    def setup():
        import keras

        optimizers = fresh("main").strategy.optimizers
        if not isinstance(optimizers, Mapping) or not optimizers:
            run.fail(f"optimizers must be a non-empty mapping of role -> keras optimizer, got "
                     f"{optimizers!r}")
        for role, optimizer in optimizers.items():
            if not isinstance(optimizer, keras.optimizers.Optimizer):
                run.fail(f"optimizers['{role}'] is {type(optimizer).__name__}, expected a "
                         "keras.optimizers.Optimizer")

    def inputs():
        import tensorflow as tf

        main = fresh("main")
        draw = main.strategy.draw_inputs
        a = draw(tf.constant([seed, 0], tf.int64), batch_size)
        b = draw(tf.constant([seed, 0], tf.int64), batch_size)
        c = draw(tf.constant([seed, 1], tf.int64), batch_size)
        if not isinstance(a, Mapping):
            run.fail(f"draw_inputs returned {type(a).__name__}, expected a mapping of tensors")
        for name in a:
            if not np.array_equal(np.asarray(a[name]), np.asarray(b[name])):
                run.fail(f"draw_inputs gave different '{name}' for the same seed; draw with "
                         "tf.random.stateless_* from the seed it is given")
        if a and all(np.array_equal(np.asarray(a[k]), np.asarray(c[k])) for k in a):
            run.fail("draw_inputs gave the same inputs for two different seeds")

    def step():
        main, _, out = first_step()
        metrics = out.metrics
        if not isinstance(metrics, Mapping) or not metrics:
            run.fail(f"StepOutputs.metrics must be a non-empty dict of scalars, got {metrics!r}")
        if not any(str(name).endswith("loss") for name in metrics):
            run.fail(f"no metric is named '...loss' (got {', '.join(metrics)}); the trainer "
                     "reports and watches the losses by that suffix")
        for name, value in metrics.items():
            if np.shape(value) != ():
                run.fail(f"metric '{name}' has shape {np.shape(value)}, expected a scalar")
            if not np.isfinite(float(value)):
                run.fail(f"metric '{name}' is {float(value)} after one step on tiny data")
        fakes = np.shape(out.fake_images)
        if len(fakes) != 4 or fakes[0] < 1 or tuple(fakes[1:]) != shape:
            run.fail(f"fake_images has shape {fakes}, expected (n, {', '.join(map(str, shape))})")
        grew = [g for g, vs in main.variables().items()
                if len(vs) != len(sessions["before"][g])]
        if grew:
            run.fail(f"{grew[0]} gained variables during the first step; create every variable "
                     "in setup() (e.g. optimizer.build(model.trainable_variables)) so a "
                     "checkpoint can be restored before the first step")

    def training():
        main, before, _ = first_step()
        for model_name, model in (("generator", main.generator),
                                  ("discriminator", main.discriminator)):
            old = {id(v): value for v, (_, value) in zip(model.variables, before[model_name])}
            unchanged = [v.path for v in model.trainable_variables
                         if np.array_equal(v.numpy(), old[id(v)])]
            if unchanged:
                shown = ", ".join(f"'{p}'" for p in unchanged[:5])
                run.fail(f"one step left the {model_name}'s weight(s) {shown} unchanged: "
                         f"their gradient does not reach the optimizer")

    def determinism():
        main, _, _ = first_step()
        a, b = two_steps(main), two_steps(fresh("again"))
        for label in _differences(a, b):
            run.fail(f"two runs with the same seed differ after two steps in {label}; "
                     "something draws unseeded randomness or depends on global state")
        for name, value in main.outputs[1].metrics.items():
            if float(value) != float(fresh("again").outputs[1].metrics[name]):
                run.fail(f"two runs with the same seed report different '{name}'")

    def resume():
        main, _, _ = first_step()
        uninterrupted = two_steps(main)
        resumed = fresh("resumed")
        if not resumed.restore(sessions["after1"]):
            run.fail("a fresh setup has other variables than a trained one, so a checkpoint "
                     "cannot be restored into it")
        resumed.step(data, batch_size, k=1)
        for label in _differences(uninterrupted, resumed.state()):
            run.fail(f"restoring the state after step 1 and running step 2 differs from the "
                     f"uninterrupted run in {label}; keep all training state in variables")

    return run.run({"interface": interface,
                    "config": lambda: check_config_round_trip(strategy, run.fail),
                    "setup": setup, "inputs": inputs, "step": step, "training": training,
                    "determinism": determinism, "resume": resume})


def _differences(a: dict, b: dict):
    """A label for every variable that differs between two states."""
    for group in a:
        if len(a[group]) != len(b.get(group, [])):
            yield f"the number of {group} variables"
        for (path, x), (_, y) in zip(a[group], b.get(group, [])):
            if x.shape != y.shape or not np.array_equal(x, y):
                yield f"{group} variable '{path}'"
