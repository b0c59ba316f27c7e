"""Gradient application, in one place for every strategy.

A strategy hands :meth:`CoreModelUpdate.minimize` a tape and a loss; the core takes the
gradient with respect to exactly one model's trainable variables and applies it with that
model's optimizer. Clipping is the optimizer's (``clipnorm``/``clipvalue``/
``global_clipnorm`` in the recipe); the optional XLA-compiled update and, later, loss
scaling and cross-replica reduction live here, so they reach every strategy at once.
"""

from __future__ import annotations

from gankit.interfaces import ModelUpdate


class CoreModelUpdate(ModelUpdate):
    """The optimizer and variables of one model.

    Args:
        model: the Keras model whose trainable variables are updated.
        optimizer: a new Keras optimizer; it is built here, so every slot exists before a
            checkpoint is restored into it.
        compile_update: compile each ``optimizer.apply`` with XLA on its own (same
            arithmetic as uncompiled; one fused pass over the weights instead of several).
    """

    def __init__(self, model, optimizer, compile_update: bool = False) -> None:
        import tensorflow as tf

        self.model = model
        self.optimizer = optimizer
        self.variables = list(model.trainable_variables)
        optimizer.build(self.variables)
        apply = lambda grads: optimizer.apply(grads, self.variables)  # noqa: E731
        # Keras variables cannot be arguments of a tf.function, so it closes over them.
        self._apply = tf.function(apply, jit_compile=True) if compile_update else apply

    def minimize(self, tape, loss):
        import tensorflow as tf

        grads = tape.gradient(loss, self.variables)
        missing = [v.path for v, g in zip(self.variables, grads) if g is None]
        if missing:
            grads = [tf.zeros_like(v) if g is None else g for v, g in zip(self.variables, grads)]
        self._apply(grads)
        return tf.linalg.global_norm(grads)
