"""Conformance checks of class-conditional generators and discriminators
(``num_classes > 0``): the label input, that the label changes the output, and that the
gradient reaches a class embedding. :func:`gankit.testing.check_generator` and
:func:`gankit.testing.check_discriminator` run them after their other checks.
Keras and TensorFlow are imported when a check runs, not before.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from gankit.testing.conformance import CheckRun, _probe_loss

CONDITIONAL_CHECKS = ("label_input", "label_effect", "label_gradients")
"""The checks a class-conditional model gets after :data:`~gankit.testing.MODEL_CHECKS`."""

_INPUT = {"generator": "latents", "discriminator": "images"}
_OUTPUT = {"generator": "images", "discriminator": "scores"}


def label_checks(component, run: CheckRun, inputs: Callable[[int], np.ndarray], *,
                 batch_size: int = 2, seed: int = 0) -> dict[str, Callable[[], None]]:
    """The checks of a class-conditional generator or discriminator (``num_classes > 0``),
    by name (:data:`CONDITIONAL_CHECKS`), for :func:`~gankit.testing.check_generator` and
    :func:`~gankit.testing.check_discriminator` to run after their other checks:

    - ``label_input``: the model's second input is the labels, ``(None,)`` of an integer
      dtype; int32 labels ``(n,)`` (classes 0, 1 and the last) give one output per example.
    - ``label_effect``: the label changes the output: in inference mode, the same latents
      (or images) with all labels 0, 1 and ``num_classes - 1`` give pairwise different
      images (or scores). A model whose classes start alike (conditional batch norm with
      every gain 1 and bias 0) must differ after one Adam step on a batch of those classes.
    - ``label_gradients``: the gradient reaches a class embedding: some trainable weight
      has entries that only the examples of one class move (with a batch all of class 0
      their gradient is non-zero and with one all of class 1 exactly zero, and the other way
      round), as the rows of an embedding table or of a Dense on one-hot labels have.

    With one class, ``label_effect`` and ``label_gradients`` have nothing to compare and
    pass with a note.

    Args:
        component: a generator or discriminator with ``num_classes > 0``.
        run: the :class:`~gankit.testing.conformance.CheckRun` to report to.
        inputs: ``n`` -> the model's first input (latents or images), without labels.
        batch_size, seed: as for the other checks.

    Returns:
        Check name -> function; empty for an unconditional model.
    """
    classes = component.num_classes
    if not classes:
        return {}

    role = component.kind
    compared = sorted({0, min(1, classes - 1), classes - 1})

    def build_seeded():
        import keras

        keras.utils.set_random_seed(seed)
        return component.build()

    def same_class(n: int, label: int):
        return [inputs(n), np.full((n,), label, dtype=np.int32)]

    def label_input():
        import keras

        model = build_seeded()
        declared = list(getattr(model, "inputs", None) or [])
        if len(declared) != 2:
            run.fail(f"with num_classes {classes} the model must take [{_INPUT[role]}, labels], "
                     f"but it takes {len(declared)} input(s)")
        label = declared[1]
        dtype = keras.backend.standardize_dtype(label.dtype)
        if tuple(label.shape) != (None,) or "int" not in dtype:
            run.fail(f"the labels input is {tuple(label.shape)} {dtype}, expected (None,) of an "
                     f"integer dtype: one class index per example (keras.Input(shape=(), "
                     f"dtype='int32'))")
        n = max(batch_size, len(compared))
        labels = np.resize(np.asarray(compared, dtype=np.int32), n)
        out = model([inputs(n), labels], training=False)
        if tuple(out.shape)[0] != n:
            run.fail(f"{n} examples with labels {labels.tolist()} gave output of shape "
                     f"{tuple(out.shape)}")

    def outputs_by_class(model) -> list[np.ndarray]:
        return [np.asarray(model(same_class(batch_size, c), training=False), dtype=np.float64)
                for c in compared]

    def label_effect():
        if classes == 1:
            run.note("one class: there is no other label to compare the output with")
            return
        model = build_seeded()
        outputs = outputs_by_class(model)
        if _all_distinct(outputs):
            return
        import keras
        import tensorflow as tf

        weights = model.trainable_weights
        optimizer = keras.optimizers.Adam(1e-2)
        optimizer.build(weights)
        mixed = np.resize(np.asarray(compared, dtype=np.int32), 2 * len(compared))
        with tf.GradientTape() as tape:
            loss = _probe_loss(model([inputs(len(mixed)), mixed], training=True), seed)
        grads = tape.gradient(loss, weights)
        optimizer.apply([tf.zeros_like(w) if g is None else g for w, g in zip(weights, grads)],
                        weights)
        outputs = outputs_by_class(model)
        for i, a in enumerate(compared):
            for j in range(i + 1, len(compared)):
                if np.array_equal(outputs[i], outputs[j]):
                    run.fail(f"labels {a} and {compared[j]} give identical {_OUTPUT[role]} for "
                             f"the same {_INPUT[role]}, even after one Adam step on a batch of "
                             "both: the label does not reach the output")

    def label_gradients():
        if classes == 1:
            run.note("one class: there is no other class whose gradient could differ")
            return
        import tensorflow as tf

        grads, model = {}, build_seeded()
        for label in (0, 1):
            with tf.GradientTape() as tape:
                loss = _probe_loss(model(same_class(batch_size, label), training=True), seed)
            grads[label] = [None if g is None else np.asarray(tf.convert_to_tensor(g))
                            for g in tape.gradient(loss, model.trainable_weights)]
        for g0, g1 in zip(grads[0], grads[1]):
            if g0 is None or g1 is None:
                continue
            if np.any((g0 != 0) & (g1 == 0)) and np.any((g1 != 0) & (g0 == 0)):
                return
        run.fail("no trainable weight has entries that only one class's examples move: the "
                 "gradient reaches no class embedding (is it frozen, behind stop_gradient, or "
                 "a fixed encoding of the label? skip 'label_gradients' if that is by design)")

    return {"label_input": label_input, "label_effect": label_effect,
            "label_gradients": label_gradients}


def _all_distinct(outputs: list[np.ndarray]) -> bool:
    return all(not np.array_equal(a, b)
               for i, a in enumerate(outputs) for b in outputs[i + 1:])
