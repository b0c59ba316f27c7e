"""Conformance checks for training strategies, run in a real training session.

:func:`check_strategy` builds a :class:`gankit.training.session.TrainingSession` (the object
the trainer steps) from the strategy and its parts, and feeds it the batches
:func:`gankit.training.data.step_batches` gives each step, as the trainer does. Nothing
here re-implements a step: what passes here behaves the same way in a real run.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from gankit.interfaces import (
    Augmenter,
    Discriminator,
    Examples,
    Generator,
    Loss,
    Optimizer,
    Regularizer,
    RegularizerInputs,
    StepOutputs,
    Strategy,
)
from gankit.testing.conformance import (
    CheckRun,
    ConformanceReport,
    check_config_round_trip,
    check_skip_weights,
    positive_int,
    require_kind,
)
from gankit.testing.data import make_images
from gankit.testing.models import unmatched_skip_weights, weights_to_train

STRATEGY_CHECKS = ("interface", "config", "setup", "step", "training", "determinism", "resume")
"""The checks of :func:`check_strategy`, in the order run."""

_XLA_SETTINGS = ("auto", "on", "off")
_ACTIVATION_OF = {"probability": "sigmoid", "logit": "linear"}
_RANDOMNESS_ADVICE = ("draw every random number from the step's context (ctx.normal(name, ...), "
                      "ctx.uniform, ctx.integers), never from tf.random.*, keras.random.* "
                      "without a seed, numpy or Python's random")


def check_strategy(strategy: Strategy, generator: Generator, discriminator: Discriminator, *,
                   loss: Loss | None = None, regularizers: Sequence[Regularizer] = (),
                   augmenter: Augmenter | None = None,
                   optimizers: Mapping[str, Optimizer] | Optimizer | None = None,
                   images: Any = None, batch_size: int = 2, seed: int = 0,
                   deterministic: bool = True, xla: str = "off",
                   skip_weights: Iterable[str] = (),
                   skip: Iterable[str] = ()) -> ConformanceReport:
    """Check that a strategy trains a generator and a discriminator the way the trainer needs.

    The strategy and its parts go into a :class:`~gankit.training.session.TrainingSession`,
    which builds the models, the optimizers and the compiled step exactly as in a run; each
    step gets the batch :func:`~gankit.training.data.step_batches` gives it (shuffled data).
    Checks, in order (names for ``skip``):

    - ``interface``: the models' image shapes and class counts agree, the images given fit
      them, ``batches_per_step`` is a positive int and the loss takes the scores the
      discriminator outputs (probabilities from a sigmoid, logits from a linear output).
    - ``config``: ``get_config()``/``from_config()`` round trip (see :func:`check_config`).
    - ``setup``: the session builds: the models, the optimizers, ``strategy.setup(models)``.
    - ``step``: ``train_step`` returns :class:`gankit.StepOutputs` whose metrics are finite
      scalars (at least one named ``*loss``) and whose ``fake_images`` are
      ``(n, *image_shape)``; no model or optimizer variable appears during the first step
      (a checkpoint is restored before it).
    - ``training``: one step changes every trainable weight of both models. A discriminator
      with frozen weights fails. A discriminator weight that stays unchanged passes, with a
      note in the report, only when the gradient of the discriminator's loss and
      regularizers with respect to it is zero because it shifts every score by the same
      amount and the loss is invariant to such a shift (the bias of the final score under a
      Wasserstein, hinge or relativistic loss): exactly zero, or zero up to float32 rounding
      (at most 1e-4 of the sum of the magnitudes of the terms that cancel), which leaves the
      weight unchanged for some model sizes and moves it a little for others. That gradient
      is taken on the step's real batch and generated images at the weights before the step
      (without augmentation). A failure says whether the strategy (a gradient it did not
      apply) or the loss (no gradient at all) is the likely cause.
    - ``determinism``: a fresh session with the same seed starts from the same state
      (every variable of ``session.variables()``) and, after the process's global random
      state was reseeded, gives identical metrics and state at step 2. It is the session
      ``resume`` reads the checkpoint into, so a passing strategy costs two sessions in all.
      When that session differs, a third one runs both steps from the start, so that the
      failure names the right cause: two fresh sessions that differ fail ``determinism``,
      two that agree leave the difference to ``resume``.
    - ``resume``: the session's ``tf.train.Checkpoint`` written after step 1 and read into a
      fresh session (every object matched), then step 2, gives the uninterrupted run's state
      and metrics exactly: no training state lives outside the checkpointed variables.

    Every session after the first gets the strategy and the parts rebuilt from their
    configs, as a resumed run does from its recipe.

    Args:
        strategy: the component under test.
        generator, discriminator: small components whose models the strategy trains.
        loss: the adversarial loss; default ``bce`` for a sigmoid discriminator, else
            ``non_saturating``.
        regularizers: regularizers of the discriminator, handed to the strategy.
        augmenter: an augmenter, or None for none.
        optimizers: ``{"generator": ..., "discriminator": ...}`` optimizer components, or
            one for both; default Adam with learning rate 2e-4 for each.
        images: tiny real data ``(n, *image_shape)``, or the :class:`gankit.Examples` of a
            labelled dataset; default: seeded noise in [0, 1], two steps' worth (and, for
            conditional models, labels cycling through the classes).
        batch_size: real images per batch.
        seed: the session's seed (weights, every step's random streams, the data order).
        deterministic: turn on TensorFlow op determinism, as the trainer does by default (a
            process-wide setting).
        xla: the session's ``train.xla``. ``"off"`` by default: XLA compiles each session's
            optimizer updates anew, several seconds on a CPU; ``"auto"`` checks what a run
            compiles by default.
        skip_weights: parts of weight paths (``"score/bias"``) that ``training`` leaves out,
            each named in the report's notes; an entry that matches no weight fails.
        skip: names of checks not to run.

    Returns:
        A :class:`ConformanceReport`; its ``notes`` explain weights that passed unchanged.

    Raises:
        ConformanceError: naming the failed check and the problem.
        TypeError: if an argument is not a component of the expected kind.
        ValueError: for an unknown ``xla`` setting or check name in ``skip``.
    """
    require_kind(strategy, Strategy, "check_strategy")
    require_kind(generator, Generator, "check_strategy")
    require_kind(discriminator, Discriminator, "check_strategy")
    for part, interface in ((loss, Loss), (augmenter, Augmenter)):
        if part is not None:
            require_kind(part, interface, "check_strategy")
    for regularizer in regularizers:
        require_kind(regularizer, Regularizer, "check_strategy")
    if isinstance(optimizers, Optimizer):
        optimizers = {"generator": optimizers, "discriminator": optimizers}
    if optimizers is not None:
        missing = [r for r in ("generator", "discriminator") if r not in optimizers]
        if missing:
            raise TypeError(f"check_strategy(optimizers=...) needs a 'generator' and a "
                            f"'discriminator' entry, missing '{missing[0]}'")
        for optimizer in optimizers.values():
            require_kind(optimizer, Optimizer, "check_strategy")
    if xla not in _XLA_SETTINGS:
        raise ValueError(f"xla must be one of {', '.join(_XLA_SETTINGS)}, got {xla!r}")
    skip_weights = check_skip_weights(skip_weights)
    run = CheckRun(strategy, STRATEGY_CHECKS, skip)
    with tempfile.TemporaryDirectory(prefix="gankit-strategy-check-") as folder:
        checks = _StrategyChecks(run, strategy, generator, discriminator, loss=loss,
                                 regularizers=tuple(regularizers), augmenter=augmenter,
                                 optimizers=optimizers, images=images, batch_size=batch_size,
                                 seed=seed, deterministic=deterministic, xla=xla,
                                 skip_weights=skip_weights, folder=folder)
        return run.run({name: getattr(checks, name) for name in STRATEGY_CHECKS})


class _StepOutputsError(TypeError):
    """train_step returned something other than StepOutputs (raised while tracing)."""


class _ObservedStrategy:
    """The strategy under test as the session sees it: every call goes to the strategy; the
    kit only looks at what ``train_step`` returns while the step is traced."""

    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy
        self.fake_shape: tuple | None = None
        self.error = ""

    @property
    def batches_per_step(self) -> int:
        return self.strategy.batches_per_step

    def setup(self, models) -> None:
        self.strategy.setup(models)

    def train_step(self, batch, models, ctx):
        out = self.strategy.train_step(batch, models, ctx)
        if not isinstance(out, StepOutputs):
            # TensorFlow wraps what a traced function raises; the check reads the message here.
            self.error = (f"train_step returned {type(out).__name__}, expected "
                          "gankit.StepOutputs(metrics, fake_images)")
            raise _StepOutputsError(self.error)
        shape = getattr(out.fake_images, "shape", None)
        self.fake_shape = None if shape is None else tuple(shape)
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.strategy, name)


class _SessionRun:
    """One training session of the check, stepped on the batches the trainer feeds it."""

    def __init__(self, parts, config, examples: Examples) -> None:
        from gankit.training.session import TrainingSession

        self.observed: _ObservedStrategy = parts.strategy
        self.session = TrainingSession(parts, config)
        self.examples = examples
        self.next_step = 0
        self.metrics: dict[int, Any] = {}
        self.batches: dict[int, Any] = {}

    def build(self) -> _SessionRun:
        self.session.build()
        self.step_fn = self.session.step_function()
        return self

    def run_until(self, stop: int) -> None:
        """Run the steps from ``next_step`` to ``stop - 1``, as the trainer's loop does."""
        from gankit.training.data import step_batches

        config = self.session.config
        data = step_batches(self.examples, batch_size=config.batch_size,
                            batches_per_step=self.session.batches_per_step, seed=config.seed,
                            shuffle=True, start=self.next_step, stop=stop)
        for step, batch in data:
            metrics, _ = self.step_fn(step, batch)
            k = int(step)
            self.metrics[k] = metrics
            self.batches[k] = (step, batch)
            self.next_step = k + 1

    def values(self) -> dict[str, list[tuple[str, np.ndarray]]]:
        """``(path, value)`` of every variable of the session's state, by piece."""
        return {group: [(_path(v), _numpy(v)) for v in variables]
                for group, variables in self.session.variables().items()}

    def variable_ids(self) -> dict[str, list[int]]:
        return {group: [id(v) for v in variables]
                for group, variables in self.session.variables().items()}

    def hidden_variables(self) -> list[str]:
        """Variables the compiled step uses that are no part of the session's state."""
        if not self.batches:
            return []
        held = {id(_underlying(v)) for vs in self.session.variables().values() for v in vs}
        step, batch = self.batches[min(self.batches)]
        try:
            used = self.step_fn.get_concrete_function(step, batch).variables
        except Exception:  # noqa: BLE001 - only a hint for a message
            return []
        return [v.name.split(":")[0] for v in used if id(v) not in held]


class _StrategyChecks:
    """The checks of one :func:`check_strategy` call, sharing its sessions."""

    def __init__(self, run: CheckRun, strategy: Strategy, generator: Generator,
                 discriminator: Discriminator, *, loss, regularizers, augmenter, optimizers,
                 images, batch_size: int, seed: int, deterministic: bool, xla: str,
                 skip_weights: tuple[str, ...], folder: str) -> None:
        self.run = run
        self.strategy = strategy
        self.generator = generator
        self.discriminator = discriminator
        self.given = {"loss": loss, "regularizers": regularizers, "augmenter": augmenter,
                      "optimizers": optimizers}
        self.images = images
        self.batch_size = batch_size
        self.seed = seed
        self.deterministic = deterministic
        self.xla = xla
        self.skip_weights = skip_weights
        self.folder = folder
        self.sessions: dict[str, _SessionRun] = {}
        self.before: dict[int, np.ndarray] = {}
        self.before_ids: dict[str, list[int]] = {}
        self.checkpoint_path = ""
        self.fresh: dict[str, list[tuple[str, np.ndarray]]] = {}
        self.after_first: dict[str, list[tuple[str, np.ndarray]]] = {}
        self.resume_problems: list[str] | None = None
        self.built_alike = False

    # -- the parts and the data ----------------------------------------------------------

    def loss(self) -> Loss:
        if self.given["loss"] is None:
            from gankit.plugin.manager import create

            sigmoid = self.discriminator.output_activation == "sigmoid"
            self.given["loss"] = create("loss", "bce" if sigmoid else "non_saturating")
        return self.given["loss"]

    def optimizers(self) -> dict[str, Optimizer]:
        if self.given["optimizers"] is None:
            from gankit.plugin.manager import create

            self.given["optimizers"] = {
                role: create("optimizer", {"type": "Adam", "learning_rate": 2e-4})
                for role in ("generator", "discriminator")}
        return dict(self.given["optimizers"])

    def examples(self) -> Examples:
        given, labels = self.images, None
        if isinstance(given, Examples):  # what a labelled dataset's load() returns
            given, labels = given.images, given.labels
        if given is not None:
            images = np.asarray(given, dtype=np.float32)
        else:
            n = 2 * self.strategy.batches_per_step * self.batch_size  # two steps' worth
            images = make_images(n, tuple(self.generator.image_shape), seed=self.seed)
        classes = self.generator.num_classes
        if labels is None and classes:
            labels = np.arange(len(images), dtype=np.int32) % classes
        return Examples(images, None if labels is None or not classes
                        else np.asarray(labels, dtype=np.int32))

    def parts(self, rebuilt: bool):
        """The session's parts: the instances given, or (``rebuilt``) new ones from their
        configs, as a resumed run builds them from its recipe."""
        from gankit.training.session import Parts

        def part(component):
            if not rebuilt or component is None:
                return component
            try:
                return type(component).from_config(component.get_config())
            except Exception as exc:  # noqa: BLE001
                self.run.fail(f"rebuilding {type(component).__name__} from its config (as a "
                              f"resumed run does) raised {type(exc).__name__}: {exc}")

        return Parts(generator=self.generator, discriminator=self.discriminator,
                     loss=part(self.loss()), strategy=_ObservedStrategy(part(self.strategy)),
                     optimizers={r: part(o) for r, o in self.optimizers().items()},
                     regularizers=tuple(part(r) for r in self.given["regularizers"]),
                     augmenter=part(self.given["augmenter"]))

    def session(self, name: str) -> _SessionRun:
        """The built session ``name``; ``"main"`` trains the instances given."""
        if name not in self.sessions:
            from gankit.training.session import SessionConfig

            config = SessionConfig(seed=self.seed, batch_size=self.batch_size, xla=self.xla,
                                   deterministic=self.deterministic)
            built = _SessionRun(self.parts(rebuilt=name != "main"), config, self.examples())
            self.sessions[name] = built.build()
        return self.sessions[name]

    def first_step(self) -> _SessionRun:
        """The main session after its first step (its state before it is kept, and a
        checkpoint after it is written)."""
        main = self.session("main")
        if not main.metrics:
            self.before_ids = main.variable_ids()
            self.before = {id(v): _numpy(v) for vs in main.session.variables().values()
                           for v in vs}
            self.fresh = main.values()
            self.steps(main, 1)
            self.checkpoint_path = main.session.checkpoint().write(
                os.path.join(self.folder, "after-step-1"))
            self.after_first = main.values()
        return main

    def steps(self, session: _SessionRun, stop: int) -> _SessionRun:
        import tensorflow as tf

        # Each fresh session traces its own step, which TensorFlow would report as
        # "frequent retracing".
        logger = tf.get_logger()
        level = logger.level
        logger.setLevel("ERROR")
        try:
            session.run_until(stop)
        except Exception:
            if session.observed.error:
                self.run.fail(session.observed.error)
            raise
        finally:
            logger.setLevel(level)
        return session

    # -- the checks ---------------------------------------------------------------------

    def interface(self) -> None:
        fail, gen, disc = self.run.fail, self.generator, self.discriminator
        shape = tuple(gen.image_shape)
        if tuple(disc.image_shape) != shape:
            fail(f"the generator makes images of shape {shape} but the discriminator takes "
                 f"{tuple(disc.image_shape)}; configure them alike")
        if gen.num_classes != disc.num_classes:
            fail(f"the generator is conditioned on {gen.num_classes} classes but the "
                 f"discriminator on {disc.num_classes}")
        per_step = self.strategy.batches_per_step
        if not positive_int(per_step):
            fail(f"batches_per_step must be a positive int, got {per_step!r}")
        loss = self.loss()
        wants = _ACTIVATION_OF.get(loss.expects)
        if wants != disc.output_activation:
            fail(f"the loss {type(loss).__name__} expects {loss.expects} scores but the "
                 f"discriminator's output_activation is {disc.output_activation!r}; give a "
                 f"loss for that output (recipe validation refuses this pair)")
        images = self.examples().images
        if images.ndim != 4 or tuple(images.shape[1:]) != shape or len(images) < self.batch_size:
            fail(f"the images given have shape {images.shape}, expected at least "
                 f"{self.batch_size} images of shape {shape}")

    def config(self) -> None:
        check_config_round_trip(self.strategy, self.run.fail)

    def setup(self) -> None:
        try:
            self.session("main")
        except AssertionError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported as this check's failure
            self.run.fail(f"building a TrainingSession (the models, the optimizers, then "
                          f"strategy.setup(models)) raised {type(exc).__name__}: {exc}")

    def step(self) -> None:
        fail = self.run.fail
        main = self.first_step()
        metrics = main.metrics[0]
        if not isinstance(metrics, Mapping) or not metrics:
            fail(f"StepOutputs.metrics must be a non-empty dict of scalars, got {metrics!r}")
        if not any(str(name).endswith("loss") for name in metrics):
            fail(f"no metric is named '...loss' (got {', '.join(map(str, metrics))}); the "
                 "trainer logs the losses and watches them for NaN by that suffix")
        for name, value in metrics.items():
            if value is None or np.shape(value) != ():
                fail(f"metric '{name}' is {value!r}, expected a scalar tensor")
            if not np.isfinite(float(value)):
                fail(f"metric '{name}' is {float(value)} after one step on tiny data")
        shape = tuple(self.generator.image_shape)
        fakes = main.observed.fake_shape
        if (fakes is None or len(fakes) != 4 or tuple(fakes[1:]) != shape
                or (fakes[0] is not None and fakes[0] < 1)):
            fail(f"fake_images has shape {fakes}, expected (n, {', '.join(map(str, shape))})")
        after = main.variable_ids()
        for group, ids in after.items():
            if ids != self.before_ids.get(group):
                fail(f"{group} gained variables during the first step: create every variable "
                     "when the models are built or in setup(), so a checkpoint can be restored "
                     "before the first step")

    def training(self) -> None:
        fail = self.run.fail
        main = self.first_step()
        models = main.session
        unknown = unmatched_skip_weights([models.generator, models.discriminator],
                                         self.skip_weights)
        if unknown:
            fail(f"skip_weights entry '{unknown[0]}' matches no weight of the generator or "
                 "the discriminator")
        for role, model in (("generator", models.generator),
                            ("discriminator", models.discriminator)):
            expected = weights_to_train(model, role, self.run, self.skip_weights)
            unchanged = [w for w in expected if id(w) in self.before
                         and np.array_equal(_numpy(w), self.before[id(w)])]
            if not unchanged:
                continue
            if role == "generator":
                fail(f"one step left the generator's {_listing([w.path for w in unchanged])} "
                     "unchanged: hand the generator's loss to "
                     "models.updates['generator'].minimize(tape, loss) under a tape that "
                     "watched the generator's call")
            self.explain_unchanged(main, unchanged)

    def explain_unchanged(self, main: _SessionRun, unchanged: list) -> None:
        """Note the unchanged discriminator weights the loss cannot move; fail on the rest."""
        reasons = _zero_gradient_reasons(main, unchanged, self.before, self.seed)
        loss_name = type(main.session.parts.loss).__name__
        unexplained: dict[str, list[str]] = {"applied": [], "constant": [], "zero": []}
        largest = 0.0
        for weight in unchanged:
            reason, size = reasons[id(weight)]
            if reason in ("shift", "rounding"):
                zero = ("exactly zero" if reason == "shift"
                        else f"{size:.2g}, zero up to float32 rounding")
                self.run.note(f"the discriminator's weight '{weight.path}' stayed unchanged: "
                              f"its gradient is {zero}: the loss is invariant to a "
                              f"constant shift of the score (the weight adds the same amount "
                              f"to every score, and the gradients of {loss_name} with respect "
                              f"to the scores sum to zero)")
            else:
                unexplained[reason].append(weight.path)
                largest = max(largest, size)
        if unexplained["applied"]:
            self.run.fail(
                f"one step left the discriminator's {_listing(unexplained['applied'])} "
                f"unchanged although the gradient of the discriminator's loss with respect to "
                f"them is not zero (largest |gradient| {largest:.3g}), so the strategy is the "
                f"likely cause, not {loss_name}: hand the discriminator's loss to "
                f"models.updates['discriminator'].minimize(tape, loss)")
        if unexplained["constant"]:
            self.run.fail(
                f"one step left the discriminator's {_listing(unexplained['constant'])} "
                f"unchanged: the scores do not depend on them (a layer cut off from the "
                f"output, or a bias that batch normalization cancels); remove them, or name "
                f"them in skip_weights")
        if unexplained["zero"]:
            self.run.fail(
                f"one step left the discriminator's {_listing(unexplained['zero'])} unchanged: "
                f"the gradient of the discriminator's loss and regularizers with respect to "
                f"them is exactly zero although the scores depend on them, so the loss "
                f"({loss_name}: flat at these scores, e.g. a hinge beyond its margins) or a "
                f"regularizer is the likely cause, not the strategy; if that is by design, "
                f"name them in skip_weights")

    def resumed(self) -> list[str]:
        """Run the session ``"resumed"`` once; the problems of the resume, in order.

        It is built fresh (whether its fresh state equals the main session's is kept in
        ``built_alike``), the process's global random state is reseeded, the checkpoint
        written after step 1 is read into it, and it runs step 2, which is compared with the
        main session's.
        """
        if self.resume_problems is not None:
            return self.resume_problems
        import keras

        main = self.steps(self.first_step(), 2)
        resumed = self.session("resumed")
        problems: list[str] = []
        self.resume_problems = problems
        self.built_alike = not any(_value_differences(self.fresh, resumed.values()))
        # A conforming step draws only from its context, so reseeding the process's global
        # random state after the build (weights are drawn in it) must change nothing.
        keras.utils.set_random_seed(self.seed + 7919)
        status = resumed.session.checkpoint().read(self.checkpoint_path)
        try:
            status.assert_existing_objects_matched()
        except AssertionError as exc:
            problems.append(f"the checkpoint written after step 1 does not fit a fresh "
                            f"session: {str(exc).splitlines()[0][:300]}")
            return problems
        finally:
            del status
        restored = resumed.values()
        for group, variables in self.after_first.items():
            for (path, written), (_, read) in zip(variables, restored.get(group, [])):
                if not np.array_equal(written, read, equal_nan=True):
                    problems.append(
                        f"the checkpoint does not hold {group} variable '{path}': after "
                        f"reading it into a fresh session the variable keeps its fresh value, "
                        f"so a resumed run continues differently. tf.train.Checkpoint finds a "
                        f"model's variables through its layers' attributes and misses one "
                        f"kept in another object (such as a Keras SeedGenerator's state)")
        resumed.next_step = 1
        self.steps(resumed, 2)
        for label in _differences(main, resumed, first=1):
            problems.append(f"restoring the checkpoint written after step 1 into a fresh "
                            f"session and running step 2 differs from the uninterrupted run "
                            f"in {label}; keep all training state in the models' variables "
                            f"(or an augmenter's state()): nothing else is checkpointed"
                            f"{_hidden_hint(resumed)}")
        return problems

    def determinism(self) -> None:
        import keras

        if not self.resumed() and self.built_alike:
            return  # built alike, and step 2 the same after reseeding: nothing to tell apart
        # Something differs: two fresh sessions from the start tell non-determinism (this
        # check) from state the checkpoint misses (resume's).
        main = self.steps(self.first_step(), 2)
        again = self.session("again")
        keras.utils.set_random_seed(self.seed + 7919)
        self.steps(again, 2)
        for label in _differences(main, again):
            self.run.fail(f"two fresh sessions with the same seed differ after two steps in "
                          f"{label}; {_RANDOMNESS_ADVICE}{_hidden_hint(again)}")

    def resume(self) -> None:
        problems = self.resumed()
        if problems:
            self.run.fail(problems[0])


def _zero_gradient_reasons(main: _SessionRun, weights: list, before: dict[int, np.ndarray],
                           seed: int) -> dict[int, tuple[str, float]]:
    """Why each of the discriminator's ``weights`` may have stayed unchanged.

    The gradient of the discriminator's loss plus its regularizers' penalties is taken at
    the weights before the first step, on that step's first real batch and as many images
    of the generator. Reasons: ``"applied"`` (the gradient is not zero: the strategy did not
    apply it; with its largest magnitude), ``"shift"`` (exactly zero, and the weight moves
    every score by the same amount: the loss is shift-invariant), ``"rounding"`` (such a
    weight whose gradient is only what float32 rounding leaves of terms that cancel: at most
    1e-4 of the sum of their magnitudes; with its largest magnitude), ``"constant"`` (the
    scores do not depend on the weight) or ``"zero"`` (exactly zero for another reason).
    """
    import tensorflow as tf

    from gankit.interfaces.context import step_context

    session = main.session
    models = session.models
    model = session.discriminator
    current = [(v, _numpy(v)) for v in model.variables]
    _, batch = main.batches[0]
    real = batch.images[0]
    labels = None if batch.labels is None else batch.labels[0]
    n = int(real.shape[0])
    ctx = step_context(seed, 0).child("conformance")
    reasons: dict[int, tuple[str, float]] = {}
    try:
        for variable in model.variables:
            if id(variable) in before:
                variable.assign(before[id(variable)])
        fake = models.generate(ctx.normal("latents", (n, models.latent_dim)), labels,
                               training=False)
        images = tf.concat([fake, tf.cast(real, fake.dtype)], axis=0)
        both = None if labels is None else tf.concat([labels, labels], axis=0)
        with tf.GradientTape(persistent=True) as tape:
            scores = models.discriminate(images, both, training=True)
            fake_scores, real_scores = scores[:n], scores[n:]
            d_loss = models.loss.discriminator_loss(real_scores, fake_scores, ctx.child("loss"))
            total = d_loss
            inputs = RegularizerInputs(
                discriminate=lambda x: models.discriminate(x, labels, training=True),
                real_images=images[n:], fake_images=images[:n], real_scores=real_scores,
                fake_scores=fake_scores)
            for i, regularizer in enumerate(models.regularizers):
                total += regularizer.penalty(inputs, ctx.child(f"regularizers/{i}"))
        grads = tape.gradient(total, weights)
        score_grads = tape.gradient(d_loss, scores)
        score_grads = (np.zeros((2 * n, 1)) if score_grads is None
                       else np.asarray(score_grads).reshape(2 * n, 1))
        jacobians = tape.jacobian(scores, weights, experimental_use_pfor=False)
        for weight, grad, jacobian in zip(weights, grads, jacobians):
            grad = np.zeros(weight.shape) if grad is None else np.asarray(grad)
            rows = (np.zeros((2 * n, 1)) if jacobian is None
                    else np.asarray(jacobian).reshape(2 * n, -1))
            shift = bool(np.any(rows)) and np.allclose(rows, rows[:1], rtol=1e-6, atol=0.0)
            if np.any(grad):
                largest = float(np.max(np.abs(grad)))
                # For a weight that adds the same to every score, the gradient is the sum of
                # the loss's gradients with respect to the scores; a shift-invariant loss
                # (Wasserstein, relativistic) makes them cancel, up to rounding.
                terms = float(np.max(np.sum(np.abs(score_grads * rows), axis=0)))
                rounding = shift and largest <= 1e-4 * terms
                reasons[id(weight)] = ("rounding" if rounding else "applied", largest)
            elif not np.any(rows):
                reasons[id(weight)] = ("constant", 0.0)
            elif shift:
                reasons[id(weight)] = ("shift", 0.0)
            else:
                reasons[id(weight)] = ("zero", 0.0)
        del tape
    finally:
        for variable, value in current:
            variable.assign(value)
    return reasons


def _differences(a: _SessionRun, b: _SessionRun, first: int = 0):
    """A label for every metric and variable that differs between two sessions that ran
    the same steps (metrics compared from step ``first`` on)."""
    for step in sorted(k for k in a.metrics if k >= first):
        ma, mb = a.metrics[step], b.metrics.get(step, {})
        for name in ma:
            x, y = np.asarray(ma[name]), np.asarray(mb.get(name, np.nan))
            if x.shape != y.shape or not np.array_equal(x, y, equal_nan=True):
                yield f"the metric '{name}' of step {step + 1} ({x} and {y})"
    yield from _value_differences(a.values(), b.values())


def _value_differences(va: dict, vb: dict):
    """A label for every variable that differs between two sessions' ``values()``."""
    for group in va:
        if len(va[group]) != len(vb.get(group, [])):
            yield f"the number of {group} variables"
            continue
        for (path, x), (_, y) in zip(va[group], vb[group]):
            if x.shape != y.shape or not np.array_equal(x, y, equal_nan=True):
                yield f"{group} variable '{path}'"


def _hidden_hint(session: _SessionRun) -> str:
    hidden = session.hidden_variables()
    if not hidden:
        return ""
    shown = ", ".join(f"'{name}'" for name in hidden[:3])
    return (f". The step uses variable{'s' if len(hidden) > 1 else ''} {shown} that no "
            f"checkpoint holds")


def _listing(paths: list[str]) -> str:
    shown = ", ".join(f"'{p}'" for p in paths[:5])
    more = f" and {len(paths) - 5} more" if len(paths) > 5 else ""
    return f"weight{'s' if len(paths) > 1 else ''} {shown}{more}"


def _underlying(variable) -> Any:
    """The TensorFlow variable behind a Keras variable (or the variable itself)."""
    import keras

    return variable.value if isinstance(variable, keras.Variable) else variable


def _numpy(variable) -> np.ndarray:
    return np.array(variable.numpy())


def _path(variable) -> str:
    return getattr(variable, "path", None) or variable.name
