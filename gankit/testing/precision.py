"""The mixed-precision check: a component under ``train.precision: mixed_bfloat16`` and
``mixed_float16``.

Under a mixed Keras dtype policy the layers compute in 16 bits and keep float32 variables;
gankit casts the discriminator's scores to float32 and scales float16 losses
(``gankit.training.precision``, ``gankit.training.updates``). :func:`check_mixed_precision`
builds a generator, a discriminator or a strategy's whole session under each policy, as a
run with that ``train.precision`` does, and trains it a step. Keras and TensorFlow are
imported when a check runs.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from gankit.interfaces import (
    Augmenter,
    Discriminator,
    Generator,
    Loss,
    Optimizer,
    Regularizer,
    Strategy,
)
from gankit.testing.conformance import (
    CheckRun,
    ConformanceReport,
    check_skip_weights,
    skipped_weight,
)

PRECISION_CHECKS = ("mixed_bfloat16", "mixed_float16")
"""The checks of :func:`check_mixed_precision`, one per mixed policy, in the order run."""

_COMPUTE_DTYPE = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}
_MAX_SKIPPED_STEPS = 8  # float16 steps whose scaled gradient overflows are skipped; retry


def check_mixed_precision(component: Generator | Discriminator | Strategy, *,
                          generator: Generator | None = None,
                          discriminator: Discriminator | None = None,
                          loss: Loss | None = None, regularizers: Sequence[Regularizer] = (),
                          augmenter: Augmenter | None = None,
                          optimizers: Mapping[str, Optimizer] | Optimizer | None = None,
                          images: Any = None, batch_size: int = 2, seed: int = 0,
                          xla: str = "off", skip_weights: Iterable[str] = (),
                          skip: Iterable[str] = ()) -> ConformanceReport:
    """Check that a component works under each mixed precision policy.

    One check per policy (names for ``skip``): ``mixed_bfloat16``, ``mixed_float16``.

    For a **generator** or **discriminator**, under the policy: the model builds (and
    the global policy is the previous one afterwards); its trainable weights are float32;
    in training and inference mode its outputs have the right shape and are finite; the
    generator's images are float32 (end the model with a float32 layer, as Keras advises),
    and so are the scores of a ``sigmoid`` discriminator (16 bits cannot tell a probability
    of 0.999 from 1), while a ``linear`` one may give its compute dtype (gankit casts scores
    to float32); one step of gankit's own gradient application (Adam, with loss
    scaling under float16) on a loss of the output is finite and changes every trainable
    weight (a zero gradient means it underflowed in 16 bits); a generator saved as
    ``.keras`` loads (with the default policy in force) and gives the same float32 images.
    (The model step runs eagerly; the strategy check runs compiled steps.)
    A report note says when no layer computes in 16 bits.

    For a **strategy** (give ``generator=`` and ``discriminator=``): a
    :class:`~gankit.training.session.TrainingSession` with ``precision`` set to the policy
    trains two steps on the batches the trainer would feed; every metric is a finite
    scalar, every ``*loss`` metric float32, and both models' weights change.

    Args:
        component: the generator, discriminator or strategy under test, configured small.
        generator, discriminator, loss, regularizers, augmenter, optimizers, images, xla:
            for a strategy, as in :func:`~gankit.testing.check_strategy`.
        images: for a discriminator, real data ``(n, *image_shape)`` (default: noise).
        batch_size: images (or latents) per batch.
        seed: the seed for weights, inputs and the session.
        skip_weights: parts of weight paths a model check does not require to change.
        skip: names of checks not to run (a policy the component does not support).

    Returns:
        A :class:`ConformanceReport`.

    Raises:
        ConformanceError: naming the policy and the problem.
        TypeError: for another kind of component, or a strategy without both models.
    """
    skip_weights = check_skip_weights(skip_weights)
    run = CheckRun(component, PRECISION_CHECKS, skip)
    if isinstance(component, (Generator, Discriminator)):
        checks = {policy: (lambda p=policy: _check_model(component, run, p, images=images,
                                                         batch_size=batch_size, seed=seed,
                                                         skip_weights=skip_weights))
                  for policy in PRECISION_CHECKS}
        return run.run(checks)
    if isinstance(component, Strategy):
        if not isinstance(generator, Generator) or not isinstance(discriminator, Discriminator):
            raise TypeError("check_mixed_precision(strategy, ...) needs generator= and "
                            "discriminator= components")
        from gankit.testing.strategy import _StrategyChecks

        if isinstance(optimizers, Optimizer):
            optimizers = {"generator": optimizers, "discriminator": optimizers}
        with tempfile.TemporaryDirectory(prefix="gankit-precision-check-") as folder:
            # The strategy kit's parts, defaults and stepping, for sessions of each policy.
            kit = _StrategyChecks(run, component, generator, discriminator, loss=loss,
                                  regularizers=tuple(regularizers), augmenter=augmenter,
                                  optimizers=optimizers, images=images,
                                  batch_size=batch_size, seed=seed, deterministic=True,
                                  xla=xla, skip_weights=skip_weights, folder=folder)
            checks = {policy: (lambda p=policy: _check_session(kit, run, p))
                      for policy in PRECISION_CHECKS}
            return run.run(checks)
    raise TypeError(f"check_mixed_precision() takes a generator, discriminator or strategy "
                    f"instance, got {type(component).__name__}")


def _model_inputs(component, batch_size: int, seed: int, images: Any):
    """A batch for the model: latents or images, with labels for a conditional model."""
    rng = np.random.default_rng([seed, batch_size])
    if isinstance(component, Generator):
        x = rng.standard_normal((batch_size, component.latent_dim)).astype("float32")
    elif images is not None:
        x = np.asarray(images, dtype="float32")[:batch_size]
    else:
        x = rng.uniform(0.0, 1.0, (batch_size, *component.image_shape)).astype("float32")
    classes = getattr(component, "num_classes", 0)
    if not classes:
        return x
    return [x, (np.arange(len(x)) % classes).astype("int32")]


def _check_model(component, run: CheckRun, policy: str, *, images: Any, batch_size: int,
                 seed: int, skip_weights: tuple[str, ...]) -> None:
    import keras
    import tensorflow as tf

    from gankit.training.precision import dtype_policy, uses_loss_scaling
    from gankit.training.updates import CoreModelUpdate

    fail, std = run.fail, keras.backend.standardize_dtype
    compute = _COMPUTE_DTYPE[policy]
    is_generator = isinstance(component, Generator)
    role = component.kind
    previous = keras.config.dtype_policy().name
    keras.utils.set_random_seed(seed)
    with dtype_policy(policy):
        model = component.build()
    if keras.config.dtype_policy().name != previous:
        fail(f"building the {role} left Keras' global dtype policy at "
             f"{keras.config.dtype_policy().name!r}; build() must not set the global policy")

    wide = [f"'{w.path}' ({std(w.dtype)})" for w in model.trainable_weights
            if std(w.dtype) != "float32"]
    if wide:
        fail(f"under {policy} the trainable weights {', '.join(wide[:5])} are not float32; a "
             f"mixed policy keeps variables float32 (do not give layers a 16-bit dtype)")
    # Layers with weights of their own do the arithmetic that 16 bits speed up.
    weighted = [layer for layer in model._flatten_layers(include_self=False, recursive=True)
                if getattr(layer, "_trainable_variables", None)]
    if not any(getattr(layer, "compute_dtype", None) == compute for layer in weighted):
        run.note(f"no layer with weights of the {role} computes in {compute} under {policy} "
                 f"(each sets its own dtype), so the policy makes it no faster")

    x = _model_inputs(component, batch_size, seed, images)
    n = batch_size if not isinstance(x, list) else len(x[0])
    expected = (n, *component.image_shape) if is_generator else (n, 1)
    for training in (False, True):
        out = model(x, training=training)
        dtype = std(out.dtype)
        if tuple(out.shape) != expected:
            fail(f"under {policy} the {role} gave output of shape {tuple(out.shape)} "
                 f"(training={training}), expected {expected}")
        if not np.isfinite(np.asarray(tf.cast(out, tf.float32))).all():
            fail(f"under {policy} the {role}'s output has non-finite values "
                 f"(training={training}); a value outside {compute}'s range?")
        if is_generator and dtype != "float32":
            fail(f"under {policy} the generator's images are {dtype}, expected float32: end "
                 f"the model with a float32 layer, as Keras advises for a model's output, "
                 f"e.g. layers.Activation('tanh', dtype='float32')")
        if not is_generator and component.output_activation == "sigmoid" and dtype != "float32":
            fail(f"under {policy} the discriminator's probabilities are {dtype}, expected "
                 f"float32 ({compute} rounds a probability of 0.999 to 1): end the model "
                 f"with layers.Activation('sigmoid', dtype='float32') after a Dense without "
                 f"activation")
        if dtype not in ("float32", compute):
            fail(f"under {policy} the {role}'s output is {dtype}, expected float32 or {compute}")

    weights = [w for w in model.trainable_weights if not skipped_weight(w.path, skip_weights)]
    update = CoreModelUpdate(model, keras.optimizers.Adam(1e-3),
                             loss_scale=uses_loss_scaling(policy))

    def step(x):  # eager: tracing a step costs seconds, and the dtypes are the same
        with tf.GradientTape() as tape:
            out = tf.cast(model(x, training=True), tf.float32)
            probe = tf.random.stateless_normal(tf.shape(out), [seed, 7])
            loss = tf.reduce_mean(out * probe)
        return loss, update.minimize(tape, loss)

    before = {id(w): np.array(w.numpy()) for w in weights}
    for _ in range(_MAX_SKIPPED_STEPS):
        loss, norm = step(x)
        if not np.isfinite(float(loss)):
            fail(f"under {policy} the loss of one training step of the {role} is "
                 f"{float(loss)}")
        if float(norm) > 0:  # 0: a float16 step whose scaled gradient overflowed
            break
    if float(norm) == 0:
        fail(f"under {policy} every one of {_MAX_SKIPPED_STEPS} training steps of the {role} "
             f"had a zero or non-finite gradient")
    unchanged = [w.path for w in weights if np.array_equal(w.numpy(), before[id(w)])]
    if unchanged:
        fail(f"under {policy} one training step left the {role}'s weights "
             f"{', '.join(repr(p) for p in unchanged[:5])} unchanged: their gradient is zero "
             f"in {compute} (it underflowed, or a cast cut it off); name them in skip_weights "
             f"if that is by design")
    if not np.isfinite(np.asarray(tf.cast(model(x, training=False), tf.float32))).all():
        fail(f"under {policy} the {role}'s output is not finite after one training step")
    if is_generator:
        _check_saved_generator(model, x, run, policy)


def _check_saved_generator(model, x, run: CheckRun, policy: str) -> None:
    """A generator trained under ``policy`` saves and loads (as ``gankit sample`` loads it,
    with the default policy in force) and gives the same float32 images."""
    import keras

    from gankit.plugin.keras_objects import load_keras_model

    expected = np.asarray(model(x, training=False))
    with tempfile.TemporaryDirectory(prefix="gankit-precision-save-") as folder:
        path = os.path.join(folder, "generator.keras")
        model.save(path)
        loaded = load_keras_model(path)  # as gankit loads it: with the plugins' Keras objects
    out = loaded(x, training=False)
    dtype = keras.backend.standardize_dtype(out.dtype)
    if dtype != "float32" or not np.array_equal(np.asarray(out), expected):
        run.fail(f"the generator built under {policy}, saved as .keras and loaded, gives "
                 f"{dtype} images that differ from the saved model's")


def _check_session(kit, run: CheckRun, policy: str) -> None:
    import keras

    from gankit.testing.strategy import _SessionRun
    from gankit.training.precision import uses_loss_scaling
    from gankit.training.session import SessionConfig

    fail = run.fail
    config = SessionConfig(seed=kit.seed, batch_size=kit.batch_size, xla=kit.xla,
                           deterministic=True, precision=policy)
    previous = keras.config.dtype_policy().name
    try:
        session = _SessionRun(kit.parts(rebuilt=True), config, kit.examples()).build()
    except AssertionError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported as this check's failure
        fail(f"building a TrainingSession with precision {policy} raised "
             f"{type(exc).__name__}: {exc}")
    if keras.config.dtype_policy().name != previous:
        fail(f"building the session left Keras' global dtype policy at "
             f"{keras.config.dtype_policy().name!r}")
    models = [("generator", session.session.generator),
              ("discriminator", session.session.discriminator)]
    before = {role: [np.array(w.numpy()) for w in model.trainable_weights]
              for role, model in models}
    unchanged = lambda: [role for role, model in models  # noqa: E731
                         if all(np.array_equal(w.numpy(), b) for w, b in
                                zip(model.trainable_weights, before[role]))]
    stop = 2
    kit.steps(session, stop)
    # A float16 step whose scaled gradient overflows is skipped while the loss scale falls
    # from its initial 2**15 (the scaler's design): give the scale a few steps to settle.
    while uses_loss_scaling(policy) and unchanged() and stop < 2 + _MAX_SKIPPED_STEPS:
        stop += 1
        kit.steps(session, stop)
    for step, metrics in sorted(session.metrics.items()):
        for name, value in metrics.items():
            if value is None or np.shape(value) != ():
                fail(f"under {policy} metric '{name}' is {value!r}, expected a scalar tensor")
            if not np.isfinite(float(value)):
                fail(f"under {policy} metric '{name}' is {float(value)} at step {step + 1}")
            dtype = keras.backend.standardize_dtype(value.dtype)
            if str(name).endswith("loss") and dtype != "float32":
                fail(f"under {policy} the loss metric '{name}' is {dtype}, expected float32: "
                     f"score with models.discriminate (float32 scores) and compute losses "
                     f"in float32")
    for role in unchanged():
        fail(f"under {policy} {stop} steps left every weight of the {role} unchanged")
