"""Conformance checks for the parts a strategy receives: losses, regularizers and augmenters.

Each check runs the part on tiny fixed tensors the way a compiled training step does, and
draws its randomness from :func:`gankit.interfaces.context.step_context`. TensorFlow is
imported when a check runs, not before.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

from gankit.interfaces import SCORE_KINDS, Augmenter, Loss, Regularizer, RegularizerInputs
from gankit.testing.conformance import (
    CheckRun,
    ConformanceReport,
    check_config_round_trip,
    positive_int,
    require_kind,
)

LOSS_CHECKS = ("interface", "config", "values", "gradients")
"""The checks of :func:`check_loss`, in the order run."""

REGULARIZER_CHECKS = ("interface", "config", "value", "differentiable", "finite_difference")
"""The checks of :func:`check_regularizer`, in the order run."""

AUGMENTER_CHECKS = ("interface", "config", "shapes", "seeding", "gradients", "state")
"""The checks of :func:`check_augmenter`, in the order run."""

# Scores away from every built-in target, so each loss has a clear direction at them.
_REAL_SCORES = [[0.8], [0.35], [0.6]]
_FAKE_SCORES = [[0.3], [0.65], [0.2]]
# What a saturated sigmoid (exactly 0 and 1) or a confident critic can output.
_EXTREME_SCORES = {"probability": [[0.0], [1.0], [1e-30]], "logit": [[-60.0], [60.0], [0.0]]}


def _context(seed: int, step: int, name: str):
    from gankit.interfaces.context import step_context

    return step_context(seed, step).child(name)


def _scalar(run: CheckRun, value: Any, what: str) -> float:
    """Fail unless ``value`` is a finite float32 scalar tensor; return it as a float."""
    dtype = getattr(value, "dtype", None)
    if np.shape(value) != () or getattr(dtype, "name", str(dtype)) != "float32":
        run.fail(f"{what} returned {type(value).__name__} of shape {np.shape(value)} and dtype "
                 f"{dtype}, expected a float32 scalar tensor")
    number = float(value)
    if not np.isfinite(number):
        run.fail(f"{what} is {number}")
    return number


def _run_compiled(fn):
    """``fn()`` traced and run by ``tf.function``, as the trainer runs a step."""
    import tensorflow as tf

    # Every check compiles afresh, which TensorFlow would report as "frequent retracing".
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        return tf.function(fn)()
    finally:
        logger.setLevel(level)


def _close(a: float, b: float, rtol: float = 1e-5, atol: float = 1e-6) -> bool:
    return abs(a - b) <= atol + rtol * max(abs(a), abs(b))


def check_loss(loss: Loss, *, seed: int = 0, skip: Iterable[str] = ()) -> ConformanceReport:
    """Check that a loss is a deterministic, well-oriented function of the scores.

    Checks, in order (names for ``skip``):

    - ``interface``: ``expects`` is ``"probability"`` or ``"logit"``.
    - ``config``: ``get_config()``/``from_config()`` round trip.
    - ``values``: on fixed scores (in (0, 1), 3 real and 3 generated) both losses are finite
      float32 scalars, the same twice for the same context and the same under
      ``tf.function``; they stay finite on extreme scores (probabilities 0 and 1, logits
      of +-60).
    - ``gradients``: the mean gradients have the signs of an adversarial game: the
      discriminator's loss falls as real scores rise and as generated scores fall, and the
      generator's falls as generated scores rise (at least one of the three strictly). A
      loss that scores generated images high instead (e.g. ``bce`` with ``real_label: 0``
      and ``fake_label: 1``) passes when all three are reversed.

    Args:
        loss: the component.
        seed: the seed of the context the loss draws from.
        skip: names of checks not to run.

    Raises:
        ConformanceError: naming the failed check and the problem.
        TypeError: if ``loss`` is not a :class:`gankit.Loss` instance.
    """
    require_kind(loss, Loss, "check_loss")
    run = CheckRun(loss, LOSS_CHECKS, skip)

    def both(real, fake, ctx):
        return (loss.discriminator_loss(real, fake, ctx), loss.generator_loss(fake, ctx))

    def interface():
        if loss.expects not in SCORE_KINDS:
            run.fail(f"expects must be one of {', '.join(map(repr, SCORE_KINDS))}, got "
                     f"{loss.expects!r}")

    def values():
        import tensorflow as tf

        real, fake = tf.constant(_REAL_SCORES), tf.constant(_FAKE_SCORES)
        ctx = _context(seed, 3, "loss")
        names = ("discriminator_loss", "generator_loss")
        first = [_scalar(run, v, n) for v, n in zip(both(real, fake, ctx), names)]
        again = [float(v) for v in both(real, fake, ctx)]
        compiled = [float(v) for v in _run_compiled(lambda: both(real, fake, ctx))]
        for name, a, b, c in zip(names, first, again, compiled):
            if a != b:
                run.fail(f"{name} gave {a} and then {b} for the same scores and context; draw "
                         "randomness only from the context (ctx.uniform(...))")
            if not _close(a, c):
                run.fail(f"{name} gives {a} eagerly but {c} under tf.function")
        kind = loss.expects if loss.expects in _EXTREME_SCORES else "logit"
        extreme = tf.constant(_EXTREME_SCORES[kind])
        for value, name in zip(both(extreme, extreme, ctx), names):
            _scalar(run, value, f"{name} on extreme {kind} scores "
                                f"{np.ravel(_EXTREME_SCORES[kind]).tolist()}")

    def gradients():
        import tensorflow as tf

        real, fake = tf.constant(_REAL_SCORES), tf.constant(_FAKE_SCORES)
        ctx = _context(seed, 3, "loss")
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([real, fake])
            d_loss, g_loss = both(real, fake, ctx)
        means = {}
        for label, target, source in (("discriminator_loss / real_scores", d_loss, real),
                                      ("discriminator_loss / fake_scores", d_loss, fake),
                                      ("generator_loss / fake_scores", g_loss, fake)):
            grad = tape.gradient(target, source)
            grad = np.zeros(source.shape) if grad is None else np.asarray(grad)
            if not np.all(np.isfinite(grad)):
                run.fail(f"the gradient d {label} is not finite: {grad.ravel().tolist()}")
            means[label] = float(grad.mean())
        signs = [int(np.sign(m)) if abs(m) > 1e-12 else 0 for m in means.values()]
        shown = ", ".join(f"d {k}: {v:.4g}" for k, v in means.items())
        if not any(signs):
            run.fail(f"neither loss changes with the scores ({shown})")
        usual = (-1, 1, -1)
        if not any(all(s in (0, o * u) for s, u in zip(signs, usual)) for o in (1, -1)):
            run.fail(f"the mean gradients ({shown}) do not describe a game: expected the signs "
                     "(-, +, -) (high scores mean real), or (+, -, +) if high scores mean "
                     "generated; check the sign of each loss")

    return run.run({"interface": interface,
                    "config": lambda: check_config_round_trip(loss, run.fail),
                    "values": values, "gradients": gradients})


class _TinyCritic:
    """D(x) = tanh(flatten(x) W) v + b on 4x4x1 images: smooth, with an input gradient that
    depends on the image, in float32 like the scores a regularizer sees."""

    def __init__(self, seed: int) -> None:
        import tensorflow as tf

        rng = np.random.default_rng([seed, 7])
        self.variables = [tf.Variable(rng.normal(0.0, 0.5, (16, 3)).astype("float32"), name="w"),
                          tf.Variable(rng.normal(0.0, 1.0, (3, 1)).astype("float32"), name="v"),
                          tf.Variable([0.1], dtype=tf.float32, name="b")]
        self.real = tf.constant(rng.uniform(-1, 1, (2, 4, 4, 1)).astype("float32"))
        self.fake = tf.constant(rng.uniform(-1, 1, (2, 4, 4, 1)).astype("float32"))

    def discriminate(self, images):
        import tensorflow as tf

        w, v, b = self.variables
        flat = tf.reshape(tf.cast(images, tf.float32), (-1, 16))
        return tf.matmul(tf.tanh(tf.matmul(flat, w)), v) + b

    def inputs(self) -> RegularizerInputs:
        return RegularizerInputs(self.discriminate, self.real, self.fake,
                                 self.discriminate(self.real), self.discriminate(self.fake))


def check_regularizer(regularizer: Regularizer, *, seed: int = 0,
                      skip: Iterable[str] = ()) -> ConformanceReport:
    """Check that a regularizer gives a penalty the discriminator's optimizer can follow.

    The critic is tiny and smooth: ``D(x) = tanh(flatten(x) W) v + b`` on two real and two
    generated 4x4x1 images, in float32 (the precision of the scores a regularizer sees).
    Checks, in order (names for ``skip``):

    - ``interface``: ``every`` is a positive int.
    - ``config``: ``get_config()``/``from_config()`` round trip.
    - ``value``: ``penalty`` is a finite float32 scalar >= 0, the same twice for the same
      context and the same under ``tf.function``.
    - ``differentiable``: its gradient with respect to the critic's weights, taken by an
      outer tape as the strategy does (second order for gradient penalties), is finite, and
      not zero everywhere when the penalty is not zero.
    - ``finite_difference``: that gradient along a random direction agrees with a central
      finite difference of the penalty (relative tolerance 2%).

    Raises:
        ConformanceError: naming the failed check and the problem.
        TypeError: if ``regularizer`` is not a :class:`gankit.Regularizer` instance.
    """
    require_kind(regularizer, Regularizer, "check_regularizer")
    run = CheckRun(regularizer, REGULARIZER_CHECKS, skip)
    state: dict[str, Any] = {}

    def setup():
        if not state:
            state["critic"] = _TinyCritic(seed)
            state["ctx"] = _context(seed, 4, "regularizers/0")
        return state["critic"], state["ctx"]

    def penalty_and_gradients():
        import tensorflow as tf

        critic, ctx = setup()
        with tf.GradientTape() as tape:
            value = regularizer.penalty(critic.inputs(), ctx)
        return value, tape.gradient(value, critic.variables)

    def interface():
        if not positive_int(regularizer.every):
            run.fail(f"every must be a positive int, got {regularizer.every!r}")

    def value():
        critic, ctx = setup()
        first = _scalar(run, regularizer.penalty(critic.inputs(), ctx), "penalty")
        if first < 0:
            run.fail(f"penalty is {first}, expected >= 0 (it is added to the discriminator's "
                     "loss and weighted by a non-negative weight)")
        again = float(regularizer.penalty(critic.inputs(), ctx))
        if again != first:
            run.fail(f"penalty gave {first} and then {again} for the same inputs and context; "
                     "draw randomness only from the context (ctx.uniform(...))")
        compiled = float(_run_compiled(lambda: regularizer.penalty(critic.inputs(), ctx)))
        if not _close(first, compiled, rtol=1e-4):
            run.fail(f"penalty is {first} eagerly but {compiled} under tf.function")

    def differentiable():
        critic, _ = setup()
        value, grads = penalty_and_gradients()
        arrays = [None if g is None else np.asarray(g) for g in grads]
        for variable, grad in zip(critic.variables, arrays):
            if grad is not None and not np.all(np.isfinite(grad)):
                run.fail(f"the gradient of the penalty with respect to the critic's weight "
                         f"'{variable.name}' is not finite")
        if float(value) > 0 and all(g is None or not np.any(g) for g in arrays):
            run.fail(f"the penalty is {float(value):.4g} but its gradient with respect to the "
                     "critic's weights is zero: compute it from inputs.discriminate inside the "
                     "caller's tape (a nested tf.GradientTape for input gradients), without "
                     "numpy or stop_gradient on the scores")

    def finite_difference():
        critic, ctx = setup()
        value, grads = penalty_and_gradients()
        rng = np.random.default_rng([seed, 11])
        directions = [rng.standard_normal(v.shape).astype("float32") for v in critic.variables]
        scale = np.sqrt(sum(float(np.sum(d * d)) for d in directions))
        directions = [d / scale for d in directions]
        analytic = sum(float(np.sum(np.asarray(g) * d))
                       for g, d in zip(grads, directions) if g is not None)
        originals = [v.numpy() for v in critic.variables]
        step = 1e-2
        try:
            sides = []
            for sign in (1.0, -1.0):
                for v, start, d in zip(critic.variables, originals, directions):
                    v.assign(start + sign * step * d)
                sides.append(float(regularizer.penalty(critic.inputs(), ctx)))
        finally:
            for v, start in zip(critic.variables, originals):
                v.assign(start)
        numeric = (sides[0] - sides[1]) / (2 * step)
        if not _close(analytic, numeric, rtol=2e-2, atol=1e-3 * (1.0 + abs(float(value)))):
            run.fail(f"along a random direction of the critic's weights the gradient is "
                     f"{analytic:.6g} but a central finite difference gives {numeric:.6g}")

    return run.run({"interface": interface,
                    "config": lambda: check_config_round_trip(regularizer, run.fail),
                    "value": value, "differentiable": differentiable,
                    "finite_difference": finite_difference})


_AUGMENT_SHAPES = [(h, w, c) for h in (8, 16) for w in (8, 16) for c in (1, 3)]


def check_augmenter(augmenter: Augmenter, *, seed: int = 0,
                    skip: Iterable[str] = ()) -> ConformanceReport:
    """Check that an augmenter is a seeded, differentiable, shape-preserving transformation.

    Images are seeded noise in [-1, 1], two per batch. Checks, in order (names for ``skip``):

    - ``interface``: ``is_identity`` is a bool.
    - ``config``: ``get_config()``/``from_config()`` round trip.
    - ``shapes``: float32 images ``(2, H, W, C)`` for H, W in {8, 16} and C in {1, 3} keep
      their shape and dtype and stay finite.
    - ``seeding``: the same context gives identical images, also under ``tf.function``; the
      next step's context gives different ones (unless ``is_identity``, which must return
      the images unchanged).
    - ``gradients``: the gradient of the output with respect to the input is finite and not
      zero everywhere.
    - ``state``: ``state()`` is a mapping of names to variables, the same ones each call.

    Raises:
        ConformanceError: naming the failed check and the problem.
        TypeError: if ``augmenter`` is not a :class:`gankit.Augmenter` instance.
    """
    require_kind(augmenter, Augmenter, "check_augmenter")
    run = CheckRun(augmenter, AUGMENTER_CHECKS, skip)

    def images(shape=(8, 8, 3)):
        import tensorflow as tf

        rng = np.random.default_rng([seed, *shape])
        return tf.constant(rng.uniform(-1.0, 1.0, (2, *shape)).astype("float32"))

    def interface():
        if not isinstance(augmenter.is_identity, bool):
            run.fail(f"is_identity must be a bool, got {augmenter.is_identity!r}")

    def shapes():
        import tensorflow as tf

        ctx = _context(seed, 5, "augmenter")
        for shape in _AUGMENT_SHAPES:
            x = images(shape)
            out = augmenter.augment(x, ctx)
            dtype = getattr(out, "dtype", None)
            if tuple(np.shape(out)) != tuple(x.shape) or dtype != tf.float32:
                run.fail(f"augmenting float32 images of shape {tuple(x.shape)} gave "
                         f"{type(out).__name__} of shape {tuple(np.shape(out))} and dtype "
                         f"{dtype}; keep the shape and dtype")
            if not np.all(np.isfinite(np.asarray(out))):
                run.fail(f"augmenting images of shape {tuple(x.shape)} gave non-finite values")

    def seeding():
        x = images()
        ctx = _context(seed, 5, "augmenter")
        a = np.asarray(augmenter.augment(x, ctx))
        b = np.asarray(augmenter.augment(x, ctx))
        if not np.array_equal(a, b):
            run.fail("the same context gave different images; draw randomness only from the "
                     "context (ctx.uniform(...)), never tf.random.uniform")
        compiled = np.asarray(_run_compiled(lambda: augmenter.augment(x, ctx)))
        if not np.allclose(a, compiled, rtol=1e-5, atol=1e-5):
            run.fail("the images augmented under tf.function differ from the eager ones "
                     "for the same context; use TensorFlow ops and ctx draws only")
        if augmenter.is_identity:
            if not np.array_equal(a, np.asarray(x)):
                run.fail("is_identity is true but augment() changed the images")
            return
        other = np.asarray(augmenter.augment(x, _context(seed, 6, "augmenter")))
        if np.array_equal(a, other):
            run.fail("two different steps gave identical images; draw the parameters from "
                     "the context so every step augments differently")

    def gradients():
        import tensorflow as tf

        x = images()
        weights = tf.constant(np.random.default_rng([seed, 3]).standard_normal(x.shape),
                              tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(augmenter.augment(x, _context(seed, 5, "augmenter")) * weights)
        grad = tape.gradient(total, x)
        if grad is None:
            run.fail("no gradient reaches the input images; build the augmentation from "
                     "differentiable TensorFlow ops so the generator learns through it")
        grad = np.asarray(grad)
        if not np.all(np.isfinite(grad)):
            run.fail("the gradient with respect to the input images is not finite")
        if not np.any(grad):
            run.fail("the gradient with respect to the input images is zero everywhere")

    def state():
        import keras
        import tensorflow as tf

        first, second = augmenter.state(), augmenter.state()
        if not isinstance(first, Mapping):
            run.fail(f"state() returned {type(first).__name__}, expected a mapping of name -> "
                     "variable")
        for name, variable in first.items():
            if not isinstance(name, str) or not isinstance(variable, (tf.Variable,
                                                                      keras.Variable)):
                run.fail(f"state()[{name!r}] is {type(variable).__name__}; state() maps names "
                         "(str) to tf.Variable or keras.Variable")
        if set(first) != set(second) or any(first[k] is not second[k] for k in first):
            run.fail("state() returned other variables on its second call; create them once "
                     "so the checkpointed ones are the ones augment() uses")

    return run.run({"interface": interface,
                    "config": lambda: check_config_round_trip(augmenter, run.fail),
                    "shapes": shapes, "seeding": seeding, "gradients": gradients,
                    "state": state})


__all__ = ["AUGMENTER_CHECKS", "LOSS_CHECKS", "REGULARIZER_CHECKS", "check_augmenter",
           "check_loss", "check_regularizer"]
