"""Conformance checks for the components that build Keras models: generators and
discriminators. Keras and TensorFlow are imported when a check runs, not before.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np

from gankit.interfaces import Discriminator, Generator
from gankit.testing.conditional import _INPUT, CONDITIONAL_CHECKS, label_checks
from gankit.testing.conformance import (
    CheckRun,
    ConformanceReport,
    _probe_loss,
    check_config_round_trip,
    check_image_shape,
    check_skip_weights,
    positive_int,
    require_kind,
    skipped_weight,
)

MODEL_CHECKS = ("interface", "config", "build", "shapes", "input_effect", "output_range",
                "determinism", "gradients", "training", "save")
"""The checks of :func:`check_generator` and :func:`check_discriminator`, in the order run."""

OUTPUT_ACTIVATIONS = ("sigmoid", "linear")


def check_generator(generator: Generator, *, batch_size: int = 2, seed: int = 0,
                    skip_weights: Iterable[str] = (),
                    skip: Iterable[str] = ()) -> ConformanceReport:
    """Check that a generator does what the trainer relies on.

    Checks, in order (names for ``skip``):

    - ``interface``: ``latent_dim`` is a positive int, ``image_shape`` three positive ints,
      ``value_range`` two finite numbers ``low < high``.
    - ``config``: ``get_config()``/``from_config()`` round trip (see :func:`check_config`).
    - ``build``: ``build()`` returns a new ``keras.Model`` each call, sharing no weight with
      the previous one, taking ``(None, latent_dim)``.
    - ``shapes``: latents ``(n, latent_dim)`` give finite float32 images
      ``(n, *image_shape)``, for ``n`` = 1 and ``batch_size``, in training and inference mode.
    - ``input_effect``: the output depends on z: three different latents (with the same
      label, for a conditional model) give pairwise different images in inference mode, at
      once or after one Adam step (for a generator whose latents enter through a layer that
      starts at zero).
    - ``output_range``: every output value lies inside ``value_range`` (default
      ``(-1.0, 1.0)``, the range of a final tanh): for the latents, for them times 10 and
      times 100 (in inference mode, where batch norm does not rescale them), and during three
      steps that push half of the output values up and half down (they move every weight by
      0.1, 0.3, then 1.0 against the sign of its gradient, as Adam's first step does by its
      learning rate). A bounded final activation (tanh, sigmoid, a clip) keeps them inside;
      a linear output layer, however small its outputs start, leaves the range.
    - ``determinism``: two builds after ``keras.utils.set_random_seed(seed)`` have identical
      weights and outputs, and inference on the same latents gives the same images twice.
    - ``gradients``: a loss of the output gives every trainable weight a finite, non-zero
      gradient.
    - ``training``: the model has trainable weights, one Adam step on the gradient of a
      compiled (``tf.function``) call changes every one of them and the output stays
      finite. Frozen weights (made trainable, then frozen by ``trainable = False`` on the
      model or a layer, in ``build`` or in ``call``) are listed in the report's notes.
    - ``save``: the model saved as ``.keras`` and loaded as ``gankit sample`` loads a run's
      generator (:func:`gankit.load_keras_model`: ``keras.saving.load_model`` with the Keras
      objects the installed plugins declare in their ``gankit_keras_objects`` hook) has the
      same weights and gives identical outputs in inference mode. If the saved model uses a
      class or function that is not Keras' own (a custom layer), it is also loaded in a
      fresh Python process (``sys.executable``, seeing the same ``sys.path`` and so the same
      installed plugins) and must give the same outputs there: a layer registered with
      ``keras.saving.register_keras_serializable`` but declared by no plugin loads in the
      process that imported it, and in no other. A model of Keras layers only needs no
      second process.

    A class-conditional generator (``num_classes > 0``) gets ``[latents, labels]`` in every
    check (int32 labels ``arange(n) % num_classes``), then the checks of
    :func:`gankit.testing.conditional.label_checks` (:data:`CONDITIONAL_CHECKS`).

    Args:
        generator: the component, configured small (it is built several times).
        batch_size: the batch of latents to use.
        seed: the seed for weights and latents.
        skip_weights: parts of weight paths (``"to_image/bias"``) whose weights the
            ``gradients`` and ``training`` checks leave out, each named in the report's
            notes; an entry that matches no weight fails ``training``.
        skip: names of checks not to run, for a component that cannot meet one by design.

    Returns:
        A :class:`ConformanceReport` of what ran.

    Raises:
        ConformanceError: (an ``AssertionError``) naming the failed check and the problem.
        TypeError: if ``generator`` is not a :class:`gankit.Generator` instance.
    """
    require_kind(generator, Generator, "check_generator")
    run = CheckRun(generator, _model_check_names(generator), skip)

    def interface():
        latent, shape = generator.latent_dim, generator.image_shape
        if not positive_int(latent):
            run.fail(f"latent_dim must be a positive int, got {latent!r}")
        check_image_shape(shape, run.fail)
        declared = generator.value_range
        try:
            low, high = (float(v) for v in declared)
        except (TypeError, ValueError):
            run.fail(f"value_range must be (low, high), two numbers, got {declared!r}")
        if not (np.isfinite(low) and np.isfinite(high) and low < high):
            run.fail(f"value_range must be (low, high) with finite low < high, got {declared!r}")

    def latents(n: int, stream: int = 0):
        rng = np.random.default_rng([seed, n] + ([stream] if stream else []))
        return rng.standard_normal((n, generator.latent_dim)).astype("float32")

    def value_range() -> tuple[float, float]:
        low, high = generator.value_range
        return float(low), float(high)

    def outside(values: np.ndarray, where: str) -> None:
        _outside_range(values, value_range(), run, where, "outputs", "the declared value_range",
                       "end with tanh (or another bounded activation), or declare value_range")

    checks = _model_checks(generator, run, _with_labels(latents, generator),
                           output_shape=tuple(generator.image_shape),
                           input_shape=(generator.latent_dim,), batch_size=batch_size, seed=seed,
                           skip_weights=check_skip_weights(skip_weights),
                           varied=_with_labels(lambda n: latents(n, 1), generator, same=True),
                           check_range=outside, what=("latents", "images"))
    checks.update(label_checks(generator, run, latents, batch_size=batch_size, seed=seed))
    return run.run({"interface": interface, **checks})


def check_discriminator(discriminator: Discriminator, *, images: Any = None,
                        batch_size: int = 2, seed: int = 0, skip_weights: Iterable[str] = (),
                        skip: Iterable[str] = ()) -> ConformanceReport:
    """Check that a discriminator does what the trainer relies on.

    The same checks as :func:`check_generator` (:data:`MODEL_CHECKS`), where the input is a
    batch of images ``(n, *image_shape)`` and the output must be ``(n, 1)``; with
    ``output_activation = "sigmoid"`` every score must lie in [0, 1] (in ``shapes``, and in
    ``output_range`` also for images times 10 and 100 and during three steps that push the
    scores apart; a ``"linear"`` discriminator has no range to check). ``input_effect``:
    three different images of seeded noise (in the range of ``images``, default [0, 1]) get
    pairwise different scores in inference mode, at once or after one Adam step.

    A class-conditional discriminator (``num_classes > 0``) gets ``[images, labels]``, then
    the checks of :func:`gankit.testing.conditional.label_checks` (:data:`CONDITIONAL_CHECKS`).

    Unlike a generator's, a discriminator's frozen weights fail ``training``: freezing the
    discriminator is Keras 2's way to train the generator through a combined model, and in
    gankit it would stop the discriminator from learning at all.

    Args:
        discriminator: the component, configured small.
        images: tiny real data ``(n, *image_shape)`` to use; default: seeded noise in [0, 1].
        batch_size: the batch size when ``images`` is not given.
        seed: the seed for weights and the noise images.
        skip_weights: parts of weight paths whose weights ``gradients`` and ``training``
            leave out (also when frozen, for a discriminator that freezes a pretrained part
            by design), each named in the report's notes.
        skip: names of checks not to run.

    Raises:
        ConformanceError: naming the failed check and the problem.
        TypeError: if ``discriminator`` is not a :class:`gankit.Discriminator` instance.
    """
    require_kind(discriminator, Discriminator, "check_discriminator")
    run = CheckRun(discriminator, _model_check_names(discriminator), skip)

    def interface():
        check_image_shape(discriminator.image_shape, run.fail)
        if discriminator.output_activation not in OUTPUT_ACTIVATIONS:
            run.fail(f"output_activation must be one of {', '.join(OUTPUT_ACTIVATIONS)}, got "
                     f"{discriminator.output_activation!r}")
        if images is not None and tuple(np.shape(images)[1:]) != tuple(discriminator.image_shape):
            run.fail(f"the images given have shape {tuple(np.shape(images))}, expected "
                     f"(n, {', '.join(map(str, discriminator.image_shape))})")

    def inputs(n: int):
        if images is not None:
            return np.asarray(images, dtype="float32")[:n]
        rng = np.random.default_rng([seed, n])
        return rng.uniform(0.0, 1.0, (n, *discriminator.image_shape)).astype("float32")

    def scores_in_range(scores: np.ndarray) -> None:
        if discriminator.output_activation == "sigmoid" and (scores.min() < 0 or scores.max() > 1):
            run.fail(f"output_activation is 'sigmoid' but scores range over [{scores.min():.4g}, "
                     f"{scores.max():.4g}]; end with a sigmoid or declare output_activation = "
                     "'linear'")

    def noise(n: int):
        low, high = ((0.0, 1.0) if images is None or not np.size(images)
                     else (float(np.min(images)), float(np.max(images))))
        if not low < high:
            low, high = low - 1.0, low + 1.0
        rng = np.random.default_rng([seed, n, 1])
        return rng.uniform(low, high, (n, *discriminator.image_shape)).astype("float32")

    def outside(values: np.ndarray, where: str) -> None:
        _outside_range(values, (0.0, 1.0), run, where, "scores",
                       "the range of output_activation 'sigmoid'",
                       "end with a sigmoid or declare output_activation = 'linear'")

    if images is not None:
        batch_size = max(1, min(batch_size, len(images)))
    checks = _model_checks(discriminator, run, _with_labels(inputs, discriminator),
                           output_shape=(1,), input_shape=tuple(discriminator.image_shape),
                           batch_size=batch_size, seed=seed,
                           skip_weights=check_skip_weights(skip_weights),
                           check_output=scores_in_range,
                           varied=_with_labels(noise, discriminator, same=True),
                           check_range=(outside if discriminator.output_activation == "sigmoid"
                                        else None),  # a logit or critic value has no range
                           what=("images", "scores"))
    checks.update(label_checks(discriminator, run, inputs, batch_size=batch_size, seed=seed))
    return run.run({"interface": interface, **checks})


def _model_checks(component, run: CheckRun, inputs: Callable[[int], np.ndarray], *,
                  output_shape: tuple, input_shape: tuple, batch_size: int, seed: int,
                  varied: Callable[[int], Any],
                  check_range: Callable[[np.ndarray, str], None] | None,
                  what: tuple[str, str], skip_weights: tuple[str, ...] = (),
                  check_output: Callable[[np.ndarray], None] = lambda _: None):
    """The checks both model kinds share, as name -> function.

    ``varied(n)``: ``n`` different inputs (with one label for a conditional model) for
    ``input_effect``; ``check_range(values, where)`` fails the running check when output
    values leave the declared range (None: the outputs have no range);
    ``what``: the names of the inputs and the outputs.
    """
    built: dict[str, Any] = {}
    role = component.kind

    def build_seeded():
        import keras

        keras.utils.set_random_seed(seed)
        return component.build()

    def build():
        import keras

        model = build_seeded()
        if not isinstance(model, keras.Model):
            run.fail(f"build() returned {type(model).__name__}, expected a keras.Model")
        other = component.build()
        if other is model:
            run.fail("build() returned the same model twice; it must make a new model each call")
        shared = {id(v) for v in model.weights} & {id(v) for v in other.weights}
        if shared:
            run.fail("build() returned two models that share weights; build a new model "
                     "(new layers) on each call")
        declared = [tuple(t.shape) for t in getattr(model, "inputs", None) or []]
        expected = [(None, *input_shape)] + ([(None,)] if component.num_classes else [])
        if declared and (len(declared) != len(expected) or declared[0] != expected[0]):
            run.fail(f"the model takes inputs of shape {declared}, expected {expected}"
                     + (f": with num_classes {component.num_classes} it takes [{_INPUT[role]}, "
                        f"labels]" if component.num_classes else ""))
        built["model"] = model
        if "save" not in run.skip and _has_own_classes(model):
            # `save` will load it in a fresh process: start that one's TensorFlow import
            # now, on the other core, while the checks in between run here.
            _FreshLoader.for_here()

    def shapes():
        import keras

        model = built.get("model") or build_seeded()
        for n in sorted({1, batch_size}):
            x = inputs(n)
            for training in (False, True):
                out = model(x, training=training)
                expected = (n, *output_shape)
                if tuple(out.shape) != expected:
                    run.fail(f"input of shape {_shapes(x)} gave output of shape "
                             f"{tuple(out.shape)} (training={training}), expected {expected}")
                dtype = keras.backend.standardize_dtype(out.dtype)
                if dtype != "float32":
                    run.fail(f"the output dtype is {dtype}, expected float32")
                values = np.asarray(out)
                if not np.isfinite(values).all():
                    run.fail(f"the output has non-finite values (training={training})")
                check_output(values)

    def input_effect():
        taken, given = what
        model = build_seeded()
        x = varied(3)

        def same_pair():
            out = np.asarray(model(x, training=False))
            return next(((i, j) for i in range(len(out)) for j in range(i + 1, len(out))
                         if np.array_equal(out[i], out[j])), None)

        if same_pair() is None:
            return
        _adam_step(model, _constant(inputs(max(batch_size, 2))), seed, 1e-2)
        pair = same_pair()
        if pair is not None:
            cause = ("the output does not depend on z (are the latents multiplied by 0, or the "
                     "image made from a learned constant alone?)" if role == "generator" else
                     "the score does not depend on the image")
            run.fail(f"different {taken} give identical {given} ({taken} {pair[0]} and "
                     f"{pair[1]} of 3, in inference mode), even after one Adam step: {cause}")

    def output_range():
        import tensorflow as tf

        if check_range is None:
            return
        model = build_seeded()
        x = inputs(batch_size)
        first, *rest = x if isinstance(x, list) else [x]
        scaled = np.concatenate([first * np.float32(s) for s in _RANGE_SCALES])
        probe = ([scaled, *(np.concatenate([r] * len(_RANGE_SCALES)) for r in rest)] if rest
                 else scaled)
        check_range(np.asarray(model(probe, training=False)),
                    f"for {what[0]}, and them x10 and x100, in inference mode")
        weights = model.trainable_weights
        x = _constant(x)
        sign = None
        for step, rate in enumerate(_RANGE_RATES):
            with tf.GradientTape() as tape:
                out = model(x, training=True)
                if sign is None:
                    sign = tf.sign(tf.random.stateless_normal(tf.shape(out), [seed, 11],
                                                              dtype=out.dtype))
                loss = -tf.reduce_mean(out * sign)  # half of the values up, half down
            check_range(np.asarray(out), f"after {step} step(s) that push the {what[1]} apart")
            # As Adam's first step, but larger: every weight moves by `rate` against the sign
            # of its gradient. A bounded activation stays bounded; a linear output grows.
            for weight, grad in zip(weights, tape.gradient(loss, weights)):
                if grad is not None:
                    grad = tf.convert_to_tensor(grad)  # an Embedding's is an IndexedSlices
                    weight.assign_sub(rate * tf.cast(tf.sign(grad), weight.dtype))
        check_range(np.asarray(model(x, training=False)),
                    f"after {len(_RANGE_RATES)} steps that push the {what[1]} apart, inference "
                    f"mode")

    def determinism():
        x = inputs(batch_size)
        first, second = build_seeded(), build_seeded()
        for a, b in zip(first.weights, second.weights):
            if not np.array_equal(_value(a), _value(b)):
                run.fail(f"two builds after keras.utils.set_random_seed({seed}) differ in weight "
                         f"'{a.path}': something draws unseeded randomness (give initializers "
                         "no fixed seed, or derive it from keras.random.SeedGenerator)")
        for training in (False, True):
            a, b = np.asarray(first(x, training=training)), np.asarray(second(x, training=training))
            if not np.array_equal(a, b):
                run.fail(f"two identically seeded models give different outputs "
                         f"(training={training}); a layer draws unseeded randomness")
        if not np.array_equal(np.asarray(first(x, training=False)),
                              np.asarray(first(x, training=False))):
            run.fail("inference (training=False) on the same input gives different outputs")

    def gradients():
        import tensorflow as tf

        model = build_seeded()
        x = _constant(inputs(batch_size))
        with tf.GradientTape() as tape:
            loss = _probe_loss(model(x, training=True), seed)
        weights = model.trainable_weights
        # An Embedding's gradient is a tf.IndexedSlices (its rows); numpy needs it dense.
        grads = [None if g is None else tf.convert_to_tensor(g)
                 for g in tape.gradient(loss, weights)]
        kept = [(w, g) for w, g in zip(weights, grads)
                if not skipped_weight(w.path, skip_weights)]
        weights, grads = [w for w, _ in kept], [g for _, g in kept]
        none = [w.path for w, g in zip(weights, grads) if g is None]
        if none:
            run.fail(f"no gradient reaches {_listing(none)}: the output does not depend on "
                     f"{'it' if len(none) == 1 else 'them'} (an unconnected layer, "
                     "stop_gradient, or a non-differentiable step)")
        bad = [w.path for w, g in zip(weights, grads) if not np.isfinite(np.asarray(g)).all()]
        if bad:
            run.fail(f"the gradient of {_listing(bad)} is not finite")
        zero = [w.path for w, g in zip(weights, grads) if not np.any(np.asarray(g))]
        if zero:
            run.fail(f"the gradient of {_listing(zero)} is exactly zero, so training never "
                     "changes them (skip 'gradients' if that is by design)")

    def training():
        import keras
        import tensorflow as tf

        model = build_seeded()
        weights = model.trainable_weights
        unknown = unmatched_skip_weights([model], skip_weights)
        if unknown:
            run.fail(f"skip_weights entry '{unknown[0]}' matches no weight of the {role}; its "
                     f"weights are {', '.join(repr(w.path) for w in model.weights[:8])}"
                     f"{' ...' if len(model.weights) > 8 else ''}")
        weights_to_train(model, role, run, skip_weights)  # frozen or none at all: fail early
        optimizer = keras.optimizers.Adam(1e-3)
        optimizer.build(weights)
        x = _constant(inputs(batch_size))

        @tf.function
        def gradients(x):
            with tf.GradientTape() as tape:
                loss = _probe_loss(model(x, training=True), seed)
            # A skipped weight may get no gradient; as in gankit's own update, it gets zero.
            return loss, [tf.zeros_like(w) if g is None else g
                          for w, g in zip(weights, tape.gradient(loss, weights))]

        before = {id(w): _value(w) for w in weights}
        logger = tf.get_logger()  # each check compiles afresh: no "frequent retracing" notice
        level = logger.level
        logger.setLevel("ERROR")
        try:
            loss, grads = gradients(x)
        finally:
            logger.setLevel(level)
        # The model's call and its gradient are compiled, as in a run; Keras' own Adam
        # update runs eagerly, which costs a fraction of tracing it anew for every check.
        optimizer.apply(grads, weights)
        loss = float(loss)
        if not np.isfinite(loss):
            run.fail(f"the loss of one training step is {loss}")
        expected = weights_to_train(model, role, run, skip_weights)  # frozen in call()
        unchanged = [w.path for w in expected
                     if id(w) in before and np.array_equal(_value(w), before[id(w)])]
        if unchanged:
            run.fail(f"one Adam step on the compiled gradient left {_listing(unchanged)} unchanged")
        after = np.asarray(model(x, training=False))
        if not np.isfinite(after).all():
            run.fail("after one training step the output has non-finite values")

    def save():
        import os
        import tempfile

        from gankit.plugin.keras_objects import load_keras_model, saved_objects

        model = built.get("model") or build_seeded()
        x = inputs(batch_size)
        expected = np.asarray(model(x, training=False))
        with tempfile.TemporaryDirectory(prefix="gankit-save-") as folder:
            path = os.path.join(folder, f"{role}.keras")
            try:
                model.save(path)
            except Exception as exc:  # noqa: BLE001 - reported as this check's failure
                run.fail(f"saving the model as .keras raised {type(exc).__name__}: {exc}; "
                         f"{_SERIALIZABLE}")
            try:
                loaded = load_keras_model(path)
            except Exception as exc:  # noqa: BLE001
                advice = "" if getattr(exc, "missing", ()) else f"; {_SERIALIZABLE}"
                run.fail(f"the saved .keras file does not load as gankit loads it "
                         f"(gankit.load_keras_model): {_load_reason(exc)}{advice}")
            if len(loaded.weights) != len(model.weights):
                run.fail(f"the saved model has {len(model.weights)} weights but the loaded one "
                         f"{len(loaded.weights)}; {_SERIALIZABLE}")
            for original, restored in zip(model.weights, loaded.weights):
                if (original.shape != restored.shape
                        or not np.array_equal(_value(original), _value(restored))):
                    run.fail(f"weight '{original.path}' differs after saving and loading the "
                             f"model (loaded as '{restored.path}'); {_SERIALIZABLE}")
            again = np.asarray(loaded(x, training=False))
            if again.shape != expected.shape or not np.array_equal(again, expected):
                worst = (float(np.max(np.abs(again - expected))) if again.shape == expected.shape
                         else float("nan"))
                run.fail(f"the loaded model's outputs differ from the saved model's (largest "
                         f"difference {worst:.3g}, shapes {again.shape} and {expected.shape}); "
                         f"a layer's get_config() leaves out a setting its call() uses")
            if saved_objects(path):  # not only Keras' own: it must load where nothing else did
                _load_in_fresh_process(folder, path, x, expected, run)

    return {"config": lambda: check_config_round_trip(component, run.fail), "build": build,
            "shapes": shapes, "input_effect": input_effect, "output_range": output_range,
            "determinism": determinism, "gradients": gradients, "training": training,
            "save": save}


def _model_check_names(component) -> tuple[str, ...]:
    """:data:`MODEL_CHECKS`, and :data:`CONDITIONAL_CHECKS` for a conditional model."""
    return MODEL_CHECKS + (CONDITIONAL_CHECKS if component.num_classes else ())


def _with_labels(inputs: Callable[[int], np.ndarray], component,
                 same: bool = False) -> Callable[[int], Any]:
    """``inputs``, or for a conditional model ``[inputs(n), labels]`` with the int32 labels
    ``arange(n) % num_classes`` (all 0 with ``same``)."""
    if not component.num_classes:
        return inputs
    if same:
        return lambda n: [inputs(n), np.zeros((n,), dtype=np.int32)]
    return lambda n: [inputs(n), np.arange(n, dtype=np.int32) % component.num_classes]


_RANGE_SCALES = (1.0, 10.0, 100.0)
"""``output_range`` scales the inputs by these, in one inference batch."""
_RANGE_RATES = (0.1, 0.3, 1.0)
"""How far each step of ``output_range`` that pushes the outputs apart moves every weight."""


def _keras_adam(learning_rate: float, weights: list):
    """A built Keras Adam optimizer for ``weights``."""
    import keras

    optimizer = keras.optimizers.Adam(learning_rate)
    optimizer.build(weights)
    return optimizer


def _adam_step(model, x, seed: int, learning_rate: float) -> None:
    """One eager Adam step on the probe loss of ``model(x)``."""
    import tensorflow as tf

    weights = model.trainable_weights
    optimizer = _keras_adam(learning_rate, weights)
    with tf.GradientTape() as tape:
        loss = _probe_loss(model(x, training=True), seed)
    grads = tape.gradient(loss, weights)
    optimizer.apply([tf.zeros_like(w) if g is None else g for w, g in zip(weights, grads)],
                    weights)


def _outside_range(values: np.ndarray, value_range: tuple[float, float], run: CheckRun,
                   where: str, outputs: str, declared: str, advice: str) -> None:
    """Fail ``run`` if a value (NaN aside) lies outside ``value_range``, beyond rounding."""
    low, high = value_range
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if not values.size:
        return
    slack = 1e-5 * (high - low)
    worst_high, worst_low = float(values.max()), float(values.min())
    if worst_high > high + slack or worst_low < low - slack:
        worst = worst_high if worst_high - high >= low - worst_low else worst_low
        run.fail(f"{outputs} reach {worst:.4g}, outside {declared} ({low!r}, {high!r}) "
                 f"({where}): {advice}")


def _load_reason(exc: BaseException) -> str:
    """Why loading failed, without the temporary path."""
    reason = getattr(exc, "reason", None)
    if reason is None:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        reason = f"{type(exc).__name__}: {lines[0][:300] if lines else ''}"
    return reason


_FRESH_LOAD = """
import json, sys
import numpy as np

def load(folder, name):
    try:
        from gankit.plugin.keras_objects import load_keras_model
        model = load_keras_model(folder + "/" + name)
        data = np.load(folder + "/inputs.npz")
        x = [data[f"x{i}"] for i in range(len(data.files))]
        out = model(x if len(x) > 1 else x[0], training=False)
        np.save(folder + "/outputs.npy", np.asarray(out))
        result = {"ok": True}
    except Exception as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()] or [""]
        result = {"error": getattr(exc, "reason", None)
                  or f"{type(exc).__name__}: {lines[0][:300]}"}
    with open(folder + "/result.json", "w") as f:
        json.dump(result, f)

# What every load does first (import Keras, ask the plugins for their Keras objects), done
# before the first request, so a worker started early has it behind it when one comes.
try:
    from gankit.plugin.keras_objects import declared_objects
    declared_objects()
except Exception:
    pass  # the first load meets the same problem and reports it

for line in sys.stdin:
    request = json.loads(line)
    load(request["folder"], request["name"])
    print("done", flush=True)
"""

_FRESH_TIMEOUT_S = 300
_VOLATILE_ENV = ("PYTEST_CURRENT_TEST",)


class _FreshLoader:
    """A Python process that has done nothing but load saved models through gankit's loader
    (as ``gankit sample`` does): "fresh" for a model's classes, since every load declares
    the same plugins' objects, and it imports TensorFlow once for all the checks of a test
    session instead of once per check. One per ``sys.path`` and environment, so a check
    after a change of the installed plugins gets a new one."""

    _workers: dict = {}

    @classmethod
    def for_here(cls) -> _FreshLoader:
        import os
        import sys

        # pytest names the running test in the environment: that changes with every test
        # and must not cost a new process (and a TensorFlow import) per test.
        env = {k: v for k, v in os.environ.items() if k not in _VOLATILE_ENV}
        # The same sys.path as here, so the same distributions (and plugins) are installed.
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in sys.path if p)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env["CUDA_VISIBLE_DEVICES"] = "-1"  # this process may hold the GPU's memory
        key = tuple(sorted(env.items()))
        worker = cls._workers.get(key)
        if worker is None or worker.process.poll() is not None:
            worker = cls._workers[key] = cls(env)
        return worker

    def __init__(self, env: dict) -> None:
        import atexit
        import subprocess
        import sys
        import tempfile

        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen([sys.executable, "-c", _FRESH_LOAD], env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.stderr, text=True, bufsize=1)
        atexit.register(self.close)

    def load(self, folder: str, name: str) -> tuple[bool, str]:
        """Ask for one load; ``(finished, why not)``."""
        import json
        import select

        try:
            self.process.stdin.write(json.dumps({"folder": folder, "name": name}) + "\n")
            self.process.stdin.flush()
        except OSError:
            return False, self._why()
        ready, _, _ = select.select([self.process.stdout], [], [], _FRESH_TIMEOUT_S)
        if not ready:
            self.close()
            return False, f"took more than {_FRESH_TIMEOUT_S} s"
        if self.process.stdout.readline().strip() != "done":
            self.process.wait(timeout=30)
            return False, self._why()
        return True, ""

    def _why(self) -> str:
        self.stderr.seek(0)
        lines = [line for line in self.stderr.read().splitlines() if line.strip()]
        code = self.process.poll()
        return (f"stopped the process (exit code {code}): "
                f"{lines[-1][:300] if lines else 'no message'}")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _has_own_classes(model) -> bool:
    """Whether the model or one of its layers is of a class that is not Keras' own, as
    :func:`gankit.plugin.keras_objects.saved_objects` finds in its saved file."""
    layers = [model, *model._flatten_layers(include_self=False, recursive=True)]
    return any(type(layer).__module__.split(".")[0] != "keras" for layer in layers)


def _load_in_fresh_process(folder: str, path: str, x: Any, expected: np.ndarray,
                           run: CheckRun) -> None:
    """Load the saved model in a new Python process as gankit's commands load it, and
    compare its outputs with ``expected``."""
    import json
    import os

    arrays = x if isinstance(x, list) else [x]
    np.savez(os.path.join(folder, "inputs.npz"),
             **{f"x{i}": np.asarray(a) for i, a in enumerate(arrays)})
    where = "in a fresh process, where gankit sample and gankit evaluate load it"
    finished, why = _FreshLoader.for_here().load(folder, os.path.basename(path))
    result_file = os.path.join(folder, "result.json")
    if not finished or not os.path.isfile(result_file):
        run.fail(f"loading the saved model {where}, {why or 'wrote no result'}")
    with open(result_file) as f:
        result = json.load(f)
    if "error" in result:
        run.fail(f"the saved model loads in this process but not {where}: {result['error']}")
    again = np.load(os.path.join(folder, "outputs.npy"))
    # There on the CPU, here perhaps on a GPU (TF32 convolutions): close, not equal.
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    if again.shape != expected.shape or not np.allclose(again, expected, rtol=1e-2,
                                                        atol=1e-3 * scale):
        run.fail(f"the saved model loaded {where}, gives other outputs than the saved model: "
                 f"is a different class of the same name declared there?")


def _constant(x):
    """A model input (an array or a list of them) as TensorFlow constants."""
    import tensorflow as tf

    return [tf.constant(a) for a in x] if isinstance(x, list) else tf.constant(x)


def _shapes(x) -> Any:
    """The shape of a model input, or the list of shapes of ``[inputs, labels]``."""
    return [tuple(np.shape(a)) for a in x] if isinstance(x, list) else tuple(np.shape(x))


_SERIALIZABLE = ("build the model from serialisable layers: give a custom layer a get_config() "
                 "returning its constructor arguments and declare it in the plugin's "
                 "gankit_keras_objects hook (docs/writing-plugins.md, 'Custom Keras layers'); "
                 "Keras' safe mode refuses Lambda layers")

_FROZEN_ADVICE = ("gankit updates each model with the gradient of its own loss with respect to "
                  "its own weights only, so the Keras 2 habit of setting "
                  "discriminator.trainable = False to train the generator through a combined "
                  "model is not needed: remove it. If the freezing is by design (a pretrained "
                  "feature extractor), name those weights in skip_weights")


def frozen_weights(model) -> list:
    """The weights created trainable that are frozen now: ``trainable = False`` was set on
    the model, on a layer (in ``build`` or in ``call``) or on the variable itself.

    Weights created non-trainable (batch-norm statistics, spectral-norm vectors, seeds) are
    not frozen: they were never meant to be trained.
    """
    trainable = {id(w) for w in model.trainable_weights}
    layers = (model._flatten_layers(include_self=True, recursive=True)
              if hasattr(model, "_flatten_layers") else [model, *getattr(model, "layers", [])])
    found, seen = [], set()
    for layer in layers:
        # Keras keeps the weights a layer created trainable in this list, frozen or not.
        for weight in getattr(layer, "_trainable_variables", ()):
            if id(weight) not in trainable and id(weight) not in seen:
                seen.add(id(weight))
                found.append(weight)
    return found


def weights_to_train(model, role: str, run: CheckRun, skip_weights: tuple[str, ...]) -> list:
    """The trainable weights of ``model`` that one training step must change.

    Fails ``run`` if the model has nothing to train, or if it is a discriminator with frozen
    weights that ``skip_weights`` does not name. Frozen generator weights and skipped
    weights are noted in the report. An entry of ``skip_weights`` is a part of a weight's
    path (``"score/bias"``).
    """
    frozen = [w for w in frozen_weights(model) if not skipped_weight(w.path, skip_weights)]
    if frozen and role == "discriminator":
        run.fail(f"the discriminator has frozen (untrainable) weights: "
                 f"{_listing([w.path for w in frozen])} "
                 f"{'was' if len(frozen) == 1 else 'were'} created trainable but "
                 f"trainable = False was set on the model or a layer, so training never "
                 f"updates {'it' if len(frozen) == 1 else 'them'}. {_FROZEN_ADVICE}")
    if frozen:
        run.note(f"the {role}'s {_listing([w.path for w in frozen])} "
                 f"{'is' if len(frozen) == 1 else 'are'} frozen (trainable = False) and "
                 f"{'was' if len(frozen) == 1 else 'were'} not expected to change")
    if not model.trainable_weights:
        run.fail(f"the {role} has no trainable weights, so training cannot change it")
    kept = []
    for weight in model.trainable_weights:
        pattern = skipped_weight(weight.path, skip_weights)
        if pattern is None:
            kept.append(weight)
        else:
            run.note(f"the {role}'s weight '{weight.path}' was not checked (skip_weights "
                     f"entry '{pattern}')")
    return kept


def unmatched_skip_weights(models, skip_weights: tuple[str, ...]) -> list[str]:
    """The entries of ``skip_weights`` that name no weight of any of ``models``."""
    paths = [w.path for model in models for w in model.weights]
    return [p for p in skip_weights if not any(p in path for path in paths)]


def _value(variable) -> np.ndarray:
    """A copy of a Keras variable's value."""
    return np.array(variable.numpy())


def _listing(paths: list[str]) -> str:
    shown = ", ".join(f"'{p}'" for p in paths[:5])
    more = f" and {len(paths) - 5} more" if len(paths) > 5 else ""
    return f"weight{'s' if len(paths) > 1 else ''} {shown}{more}"
