"""Conformance checks for the components that build Keras models: generators and
discriminators. Keras and TensorFlow are imported when a check runs, not before.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np

from gankit.interfaces import Discriminator, Generator
from gankit.testing.conformance import (CheckRun, ConformanceReport, check_config_round_trip,
                                        check_image_shape, positive_int, require_kind)

MODEL_CHECKS = ("interface", "config", "build", "shapes", "determinism", "gradients", "training")
"""The checks of :func:`check_generator` and :func:`check_discriminator`, in the order run."""

OUTPUT_ACTIVATIONS = ("sigmoid", "linear")


def check_generator(generator: Generator, *, batch_size: int = 2, seed: int = 0,
                    skip: Iterable[str] = ()) -> ConformanceReport:
    """Check that a generator does what the trainer relies on.

    Checks, in order (names for ``skip``):

    - ``interface``: ``latent_dim`` is a positive int, ``image_shape`` three positive ints.
    - ``config``: ``get_config()``/``from_config()`` round trip (see :func:`check_config`).
    - ``build``: ``build()`` returns a new ``keras.Model`` each call, with trainable weights,
      taking ``(None, latent_dim)``.
    - ``shapes``: latents ``(n, latent_dim)`` give finite float32 images
      ``(n, *image_shape)``, for ``n`` = 1 and ``batch_size``, in training and inference mode.
    - ``determinism``: two builds after ``keras.utils.set_random_seed(seed)`` have identical
      weights and outputs, and inference on the same latents gives the same images twice.
    - ``gradients``: a loss of the output gives every trainable weight a finite, non-zero
      gradient.
    - ``training``: one compiled (``tf.function``) Adam step changes every trainable weight
      and the output stays finite.

    Args:
        generator: the component, configured small (it is built several times).
        batch_size: the batch of latents to use.
        seed: the seed for weights and latents.
        skip: names of checks not to run, for a component that cannot meet one by design.

    Returns:
        A :class:`ConformanceReport` of what ran.

    Raises:
        ConformanceError: (an ``AssertionError``) naming the failed check and the problem.
        TypeError: if ``generator`` is not a :class:`gankit.Generator` instance.
    """
    require_kind(generator, Generator, "check_generator")
    run = CheckRun(generator, MODEL_CHECKS, skip)

    def interface():
        latent, shape = generator.latent_dim, generator.image_shape
        if not positive_int(latent):
            run.fail(f"latent_dim must be a positive int, got {latent!r}")
        check_image_shape(shape, run.fail)

    def inputs(n: int):
        rng = np.random.default_rng([seed, n])
        return rng.standard_normal((n, generator.latent_dim)).astype("float32")

    checks = _model_checks(generator, run, inputs, output_shape=tuple(generator.image_shape),
                           input_shape=(generator.latent_dim,), batch_size=batch_size, seed=seed)
    return run.run({"interface": interface, **checks})


def check_discriminator(discriminator: Discriminator, *, images: Any = None,
                        batch_size: int = 2, seed: int = 0,
                        skip: Iterable[str] = ()) -> ConformanceReport:
    """Check that a discriminator does what the trainer relies on.

    The same checks as :func:`check_generator` (``interface``, ``config``, ``build``,
    ``shapes``, ``determinism``, ``gradients``, ``training``), where the input is a batch of
    images ``(n, *image_shape)`` and the output must be ``(n, 1)``; with
    ``output_activation = "sigmoid"`` every score must lie in [0, 1].

    Args:
        discriminator: the component, configured small.
        images: tiny real data ``(n, *image_shape)`` to use; default: seeded noise in [0, 1].
        batch_size: the batch size when ``images`` is not given.
        seed: the seed for weights and the noise images.
        skip: names of checks not to run.

    Raises:
        ConformanceError: naming the failed check and the problem.
        TypeError: if ``discriminator`` is not a :class:`gankit.Discriminator` instance.
    """
    require_kind(discriminator, Discriminator, "check_discriminator")
    run = CheckRun(discriminator, MODEL_CHECKS, skip)

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

    if images is not None:
        batch_size = max(1, min(batch_size, len(images)))
    checks = _model_checks(discriminator, run, inputs, output_shape=(1,),
                           input_shape=tuple(discriminator.image_shape), batch_size=batch_size,
                           seed=seed, check_output=scores_in_range)
    return run.run({"interface": interface, **checks})


def _model_checks(component, run: CheckRun, inputs: Callable[[int], np.ndarray], *,
                  output_shape: tuple, input_shape: tuple, batch_size: int, seed: int,
                  check_output: Callable[[np.ndarray], None] = lambda _: None):
    """The checks both model kinds share, as name -> function."""
    built: dict[str, Any] = {}

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
        if not model.trainable_weights:
            run.fail("the model has no trainable weights, so training cannot change it")
        declared = [tuple(t.shape) for t in getattr(model, "inputs", None) or []]
        if declared and declared != [(None, *input_shape)]:
            run.fail(f"the model takes inputs of shape {declared}, expected "
                     f"[{(None, *input_shape)}]")
        built["model"] = model

    def shapes():
        import keras

        model = built.get("model") or build_seeded()
        for n in sorted({1, batch_size}):
            x = inputs(n)
            for training in (False, True):
                out = model(x, training=training)
                expected = (n, *output_shape)
                if tuple(out.shape) != expected:
                    run.fail(f"input of shape {tuple(x.shape)} gave output of shape "
                             f"{tuple(out.shape)} (training={training}), expected {expected}")
                dtype = keras.backend.standardize_dtype(out.dtype)
                if dtype != "float32":
                    run.fail(f"the output dtype is {dtype}, expected float32")
                values = np.asarray(out)
                if not np.isfinite(values).all():
                    run.fail(f"the output has non-finite values (training={training})")
                check_output(values)

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
        x = tf.constant(inputs(batch_size))
        with tf.GradientTape() as tape:
            loss = _probe_loss(model(x, training=True), seed)
        weights = model.trainable_weights
        grads = tape.gradient(loss, weights)
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
        optimizer = keras.optimizers.Adam(1e-3)
        optimizer.build(weights)
        x = tf.constant(inputs(batch_size))

        @tf.function
        def step(x):
            with tf.GradientTape() as tape:
                loss = _probe_loss(model(x, training=True), seed)
            optimizer.apply(tape.gradient(loss, weights), weights)
            return loss

        before = [_value(w) for w in weights]
        loss = float(step(x))
        if not np.isfinite(loss):
            run.fail(f"the loss of one training step is {loss}")
        unchanged = [w.path for w, old in zip(weights, before) if np.array_equal(_value(w), old)]
        if unchanged:
            run.fail(f"one compiled Adam step left {_listing(unchanged)} unchanged")
        after = np.asarray(model(x, training=False))
        if not np.isfinite(after).all():
            run.fail("after one training step the output has non-finite values")

    return {"config": lambda: check_config_round_trip(component, run.fail), "build": build,
            "shapes": shapes, "determinism": determinism, "gradients": gradients,
            "training": training}


def _value(variable) -> np.ndarray:
    """A copy of a Keras variable's value."""
    return np.array(variable.numpy())


def _probe_loss(output, seed: int):
    """A scalar that depends on every output value, through fixed random weights."""
    import tensorflow as tf

    probe = tf.random.stateless_normal(tf.shape(output), [seed, 7], dtype=output.dtype)
    return tf.reduce_mean(output * probe)


def _listing(paths: list[str]) -> str:
    shown = ", ".join(f"'{p}'" for p in paths[:5])
    more = f" and {len(paths) - 5} more" if len(paths) > 5 else ""
    return f"weight{'s' if len(paths) > 1 else ''} {shown}{more}"
