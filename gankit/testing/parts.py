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

LOSS_CHECKS = ("interface", "config", "values", "gradients", "differentiable", "sign",
               "real_scores")
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
# Where random scores for the "differentiable" check are drawn: inside every built-in margin.
_RANDOM_RANGE = {"probability": (0.05, 0.95), "logit": (-1.0, 1.0)}
# The "sign" check's paths: real scores rise and generated ones fall by these steps around
# 0.5 (inside every built-in target), and generated scores rise from the generated side.
_SEPARATIONS = (0.0, 0.1, 0.2, 0.3)
_JITTER = np.array([[-0.04], [0.0], [0.04]])
_GENERATOR_START = {"probability": 0.35, "logit": -0.8}


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


def _takes_real_scores(function) -> bool | None:
    """Whether ``function`` accepts a ``real_scores`` keyword (None if it cannot be told)."""
    import inspect

    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    return any(p.name == "real_scores" and p.kind != p.POSITIONAL_ONLY
               or p.kind == p.VAR_KEYWORD for p in parameters)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else "")[:200]


def _shown(values) -> str:
    return "[" + ", ".join(f"{v:.3g}" for v in np.ravel(values)) + "]"


def _mirror(kind: str, scores):
    """Scores reflected to the other side: 1 - p for probabilities, -x for logits."""
    return 1.0 - scores if kind == "probability" else -scores


def _beyond_start(values: list[float], direction: int) -> bool:
    """Whether every value after the first lies beyond it in ``direction`` (-1: below),
    by more than float32 rounding."""
    return all(direction * (v - values[0]) > 1e-6 * (1.0 + abs(v) + abs(values[0]))
               for v in values[1:])


def _sign(value: float) -> int:
    return int(np.sign(value)) if abs(value) > 1e-12 else 0


def check_loss(loss: Loss, *, seed: int = 0, skip: Iterable[str] = ()) -> ConformanceReport:
    """Check that a loss is a deterministic, differentiable, well-oriented function of the scores.

    ``generator_loss`` is called as the ``gan`` strategy calls it: with ``real_scores=`` (the
    scores of a real batch) when the loss declares ``generator_uses_real = True``, else
    without. A loss in which high scores mean "generated" (``bce`` with ``real_label: 0`` and
    ``fake_label: 1``) passes the orientation checks reversed, if both losses agree.
    Checks, in order (names for ``skip``):

    - ``interface``: ``expects`` is ``"probability"`` or ``"logit"``, ``generator_uses_real``
      is a bool, and ``generator_loss`` can be called as the strategy calls it (a loss that
      needs ``real_scores`` must declare ``generator_uses_real``). A ``generator_loss``
      without a ``real_scores`` argument gets a note: the interface declares
      ``generator_loss(fake_scores, ctx, real_scores=None)``.
    - ``config``: ``get_config()``/``from_config()`` round trip.
    - ``values``: on fixed scores (in (0, 1), 3 real and 3 generated) both losses are finite
      float32 scalars, the same twice for the same context and the same under
      ``tf.function``; they stay finite on extreme scores (probabilities 0 and 1, logits
      of +-60).
    - ``gradients``: the mean gradients have the signs of an adversarial game: the
      discriminator's loss falls as real scores rise and as generated scores fall, and the
      generator's falls as its images' scores rise (taken on the generated side: below 0.5
      for probabilities, negative logits), or all three reversed.
    - ``differentiable``: at three draws of random scores (probabilities in (0.05, 0.95),
      logits in (-1, 1)) the gradient of each loss with respect to the scores it takes is
      neither None nor zero everywhere: a rounded or step-wise loss, whose gradient is zero
      almost everywhere, fails.
    - ``sign``: by value, at several pairs of scores: the discriminator's loss is lower when
      real scores are 0.1, 0.2 or 0.3 above 0.5 and generated ones as much below than when
      both are 0.5 (both moved at once, and each alone); the generator's loss is lower when
      generated scores are 0.1, 0.2 or 0.3 above where they start on the generated side
      (0.35 for probabilities, -0.8 for logits) than there; or all reversed.
    - ``real_scores``: a loss with ``generator_uses_real`` gives another generator loss for
      other real scores; one without it, whose ``generator_loss`` takes ``real_scores``,
      gives the same value with them as without (the strategy never passes them to it).

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
    takes_real = _takes_real_scores(loss.generator_loss)

    def kind() -> str:
        return loss.expects if loss.expects in SCORE_KINDS else "logit"

    def generator(fake, ctx, real):
        """``generator_loss`` called exactly as the gan strategy calls it."""
        if loss.generator_uses_real:
            return loss.generator_loss(fake, ctx, real_scores=real)
        return loss.generator_loss(fake, ctx)

    def both(real, fake, ctx):
        return (loss.discriminator_loss(real, fake, ctx), generator(fake, ctx, real))

    def constant(values):
        import tensorflow as tf

        return tf.constant(np.asarray(values, dtype=np.float32))

    def interface():
        if loss.expects not in SCORE_KINDS:
            run.fail(f"expects must be one of {', '.join(map(repr, SCORE_KINDS))}, got "
                     f"{loss.expects!r}")
        uses_real = loss.generator_uses_real
        if not isinstance(uses_real, bool):
            run.fail(f"generator_uses_real must be True or False (a class attribute), got "
                     f"{uses_real!r}")
        if uses_real and takes_real is False:
            run.fail("generator_uses_real is True but generator_loss takes no real_scores: the "
                     "strategy calls generator_loss(fake_scores, ctx, real_scores=...); add "
                     "the argument")
        real, fake = constant(_REAL_SCORES), constant(_FAKE_SCORES)
        ctx = _context(seed, 3, "loss")
        if not uses_real:
            try:
                loss.generator_loss(fake, ctx)
            except Exception as exc:
                if takes_real is not False and _works(
                        lambda: loss.generator_loss(fake, ctx, real_scores=real)):
                    run.fail(f"generator_loss needs real_scores, but generator_uses_real is "
                             f"False, so the strategy calls generator_loss(fake_scores, ctx) "
                             f"without them (it raised {type(exc).__name__}: "
                             f"{_first_line(exc)}); set generator_uses_real = True on the class")
                raise
        if takes_real is False:
            run.note("generator_loss(fake_scores, ctx) takes no real_scores; the interface is "
                     "generator_loss(fake_scores, ctx, real_scores=None): add real_scores=None "
                     "so that any training loop that follows it can call this loss")

    def values():
        real, fake = constant(_REAL_SCORES), constant(_FAKE_SCORES)
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
        extreme = constant(_EXTREME_SCORES[kind()])
        for value, name in zip(both(extreme, extreme, ctx), names):
            _scalar(run, value, f"{name} on extreme {kind()} scores "
                                f"{np.ravel(_EXTREME_SCORES[kind()]).tolist()}")

    def mean_gradient(tape, target, source, label):
        grad = tape.gradient(target, source)
        grad = np.zeros(source.shape) if grad is None else np.asarray(grad)
        if not np.all(np.isfinite(grad)):
            run.fail(f"the gradient d {label} is not finite: {grad.ravel().tolist()}")
        return float(grad.mean())

    def gradients():
        import tensorflow as tf

        real, fake = constant(_REAL_SCORES), constant(_FAKE_SCORES)
        ctx = _context(seed, 3, "loss")
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([real, fake])
            d_loss = loss.discriminator_loss(real, fake, ctx)
        d_real = mean_gradient(tape, d_loss, real, "discriminator_loss / real_scores")
        d_fake = mean_gradient(tape, d_loss, fake, "discriminator_loss / fake_scores")
        del tape
        signs = (_sign(d_real), _sign(d_fake))
        orientation = (1 if signs in ((-1, 1), (-1, 0), (0, 1))
                       else -1 if signs in ((1, -1), (1, 0), (0, -1)) else 0)
        # The generator's gradient on the generated side of the score range.
        side = np.asarray(_FAKE_SCORES) - (1.0 if kind() == "logit" else 0.0)
        g_fake = constant(side if orientation >= 0 else _mirror(kind(), side))
        with tf.GradientTape() as tape:
            tape.watch(g_fake)
            g_loss = generator(g_fake, ctx, real)
        g = mean_gradient(tape, g_loss, g_fake, "generator_loss / fake_scores")
        shown = (f"d discriminator_loss / real_scores: {d_real:.4g}, d discriminator_loss / "
                 f"fake_scores: {d_fake:.4g}, d generator_loss / fake_scores: {g:.4g} at "
                 f"generated scores {_shown(g_fake)}")
        if signs == (0, 0) and _sign(g) == 0:
            run.fail(f"neither loss changes with the scores ({shown})")
        expected = ("expected the signs (-, +, -) (high scores mean real) or (+, -, +) (high "
                    "scores mean generated)")
        if signs != (0, 0) and orientation == 0:
            run.fail(f"the mean gradients ({shown}) do not describe a game: discriminator_loss "
                     f"{'falls' if signs[0] < 0 else 'rises'} as real scores rise and "
                     f"{'falls' if signs[1] < 0 else 'rises'} as generated scores rise, so it "
                     f"does not set real against generated images; {expected}; check the sign "
                     f"of each term")
        if orientation and _sign(g) == orientation:
            meaning = "real" if orientation > 0 else "generated"
            run.fail(f"the mean gradients ({shown}) do not describe a game: discriminator_loss "
                     f"treats high scores as {meaning} but generator_loss "
                     f"{'rises' if g > 0 else 'falls'} as generated scores rise, so the "
                     f"generator would learn to look generated; {expected}; check the sign of "
                     f"generator_loss")

    def differentiable():
        import tensorflow as tf

        rng = np.random.default_rng([seed, 13])
        low, high = _RANDOM_RANGE[kind()]
        ctx = _context(seed, 3, "loss")
        for _ in range(3):
            real = constant(rng.uniform(low, high, (4, 1)))
            fake = constant(rng.uniform(low, high, (4, 1)))
            with tf.GradientTape(persistent=True) as tape:
                tape.watch([real, fake])
                d_loss, g_loss = both(real, fake, ctx)
            at = f"random scores (real {_shown(real)}, generated {_shown(fake)})"
            for label, target, source, learner in (
                    ("discriminator_loss with respect to real_scores", d_loss, real,
                     "discriminator"),
                    ("discriminator_loss with respect to fake_scores", d_loss, fake,
                     "discriminator"),
                    ("generator_loss with respect to fake_scores", g_loss, fake, "generator")):
                grad = tape.gradient(target, source)
                if grad is None:
                    run.fail(f"the gradient of {label} is None at {at}: no gradient flows "
                             f"through the loss (tf.round, tf.floor, tf.sign, a comparison or "
                             f"a cast cuts it); build it from differentiable TensorFlow ops")
                grad = np.asarray(grad)
                if not np.all(np.isfinite(grad)):
                    run.fail(f"the gradient of {label} is not finite at {at}")
                if not np.any(grad):
                    run.fail(f"the gradient of {label} is zero at {at}: the loss is flat "
                             f"there (a step function such as tf.round has a zero gradient "
                             f"almost everywhere), so the {learner} learns nothing from it")
            del tape

    def sign():
        ctx = _context(seed, 3, "loss")
        reals = [0.5 + s + _JITTER for s in _SEPARATIONS]
        fakes = [0.5 - s + _JITTER for s in _SEPARATIONS]

        def d_at(real, fake):
            return float(loss.discriminator_loss(constant(real), constant(fake), ctx))

        paths = {
            "real scores rise and generated scores fall": [d_at(r, f)
                                                           for r, f in zip(reals, fakes)],
            "real scores rise": [d_at(r, fakes[0]) for r in reals],
            "generated scores fall": [d_at(reals[0], f) for f in fakes]}
        together = paths["real scores rise and generated scores fall"]
        around = (f"by {_SEPARATIONS[1]:g} at a time from 0.5 (real scores up to "
                  f"{float(reals[-1].mean()):.2g}, generated down to "
                  f"{float(fakes[-1].mean()):.2g})")
        if _beyond_start(together, -1):
            orientation = 1
        elif _beyond_start(together, 1):
            orientation = -1
        else:
            run.fail(f"discriminator_loss is not lower when the discriminator separates real "
                     f"from generated scores than when it scores them alike: as real scores "
                     f"rise and generated scores fall {around} it goes {_shown(together)}; "
                     f"each value must be below the first (or each above it, if high scores "
                     f"mean generated)")
        meaning = "real" if orientation > 0 else "generated"
        lower = "lower" if orientation > 0 else "higher"
        for what, path in paths.items():
            if not _beyond_start(path, -orientation):
                run.fail(f"discriminator_loss is not {lower} when {what} {around}: it goes "
                         f"{_shown(path)}, each value must be {lower} than the first, as high "
                         f"scores mean {meaning} in it; check the sign of each term")
        start = _GENERATOR_START[kind()]
        steps = [start + 0.1 * k + _JITTER for k in range(len(_SEPARATIONS))]
        if orientation < 0:
            steps = [_mirror(kind(), x) for x in steps]
        g_path = [float(generator(constant(f), ctx, constant(reals[0]))) for f in steps]
        if not _beyond_start(g_path, -1):
            run.fail(f"generator_loss is not lower when the generated images score more like "
                     f"real ones: as generated scores {'rise' if orientation > 0 else 'fall'} "
                     f"from {float(steps[0].mean()):.2g} to {float(steps[-1].mean()):.2g} by "
                     f"0.1 at a time (high scores mean {meaning}, as discriminator_loss says) it "
                     f"goes {_shown(g_path)}, each value must be below the first, or the "
                     f"generator does not learn to fool the discriminator")

    def real_scores():
        real, fake = constant(_REAL_SCORES), constant(_FAKE_SCORES)
        others = (real, constant(_mirror(kind(), np.asarray(_REAL_SCORES))),
                  constant(0.5 * np.asarray(_REAL_SCORES)))
        ctx = _context(seed, 3, "loss")
        if loss.generator_uses_real:
            got = [float(loss.generator_loss(fake, ctx, real_scores=r)) for r in others]
            if max(got) - min(got) <= 1e-6 * (1.0 + abs(got[0])):
                run.fail(f"generator_uses_real is True but generator_loss gives {got[0]:.6g} "
                         f"for real_scores {', '.join(_shown(r) for r in others)} alike: it "
                         f"ignores real_scores; compare the generated scores with them (as a "
                         f"relativistic loss does) or set generator_uses_real = False, which "
                         f"spares the strategy scoring a real batch in every generator update")
        elif takes_real:
            without = float(loss.generator_loss(fake, ctx))
            got = [float(loss.generator_loss(fake, ctx, real_scores=r)) for r in others]
            if any(not _close(without, v) for v in got):
                run.fail(f"generator_loss changes with real_scores ({_shown(got)}) but "
                         f"generator_uses_real is False, so the strategy never passes them and "
                         f"trains with {without:.6g}; set generator_uses_real = True if it "
                         f"needs them")

    return run.run({"interface": interface,
                    "config": lambda: check_config_round_trip(loss, run.fail),
                    "values": values, "gradients": gradients,
                    "differentiable": differentiable, "sign": sign,
                    "real_scores": real_scores})


def _works(call) -> bool:
    try:
        call()
    except Exception:  # noqa: BLE001 - only tells whether the call works
        return False
    return True


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
