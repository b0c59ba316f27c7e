"""Gradient application, in one place for every strategy.

A strategy hands :meth:`CoreModelUpdate.minimize` a tape and a loss; the core takes the
gradient with respect to exactly one model's trainable variables and applies it with that
model's optimizer. Clipping is the optimizer's (``clipnorm``/``clipvalue``/
``global_clipnorm`` in the recipe); the optional XLA-compiled update, loss scaling
(``mixed_float16``) and the cross-replica reduction of ``train.distribute``
(:func:`gankit.training.distribute.reduce_gradients`: the optimizer clips and applies the
global gradient) live here, so they reach every strategy at once.
"""

from __future__ import annotations

from gankit.interfaces import ModelUpdate
from gankit.training.distribute import reduce_gradients
from gankit.util.graph import plain_python


class CoreModelUpdate(ModelUpdate):
    """The optimizer and variables of one model.

    Args:
        model: the Keras model whose trainable variables are updated.
        optimizer: a new Keras optimizer; it is built here, so every slot exists before a
            checkpoint is restored into it.
        compile_update: compile each ``optimizer.apply`` with XLA on its own (same
            arithmetic as uncompiled; one fused pass over the weights instead of several).
        loss_scale: scale the loss dynamically (for ``mixed_float16``) with a
            ``keras.optimizers.LossScaleOptimizer`` around ``optimizer``.
    """

    def __init__(self, model, optimizer, compile_update: bool = False,
                 loss_scale: bool = False) -> None:
        import keras
        import tensorflow as tf

        self.model = model
        self.optimizer = optimizer
        self.variables = list(model.trainable_variables)
        # The scaler applies the gradient through the optimizer it wraps, which stays
        # ``self.optimizer`` (and keeps its place in a checkpoint).
        self.loss_scaler = (keras.optimizers.LossScaleOptimizer(optimizer) if loss_scale
                            else None)
        applier = self.loss_scaler or optimizer
        applier.build(self.variables)
        apply = lambda grads: applier.apply(grads, self.variables)  # noqa: E731
        # Keras variables cannot be arguments of a tf.function, so it closes over them.
        self._apply = tf.function(apply, jit_compile=True) if compile_update else apply

    def state(self) -> dict:
        """Variables of this update besides the model's and the optimizer's, by name: the
        loss scale and its count of finite steps under ``mixed_float16``, else nothing."""
        if self.loss_scaler is None:
            return {}
        return {"loss_scale": self.loss_scaler.dynamic_scale,
                "loss_scale_steps": self.loss_scaler.step_counter}

    @plain_python
    def minimize(self, tape, loss):
        import tensorflow as tf

        if self.loss_scaler is not None:
            return self._minimize_scaled(tape, loss)
        grads = self._fill_missing(tape.gradient(loss, self.variables))
        grads, share = reduce_gradients(grads)  # across replicas (tf.distribute)
        self._apply(share)
        return tf.linalg.global_norm(grads)

    @plain_python
    def _fill_missing(self, grads):
        import tensorflow as tf

        return [tf.zeros_like(v) if g is None else g for v, g in zip(self.variables, grads)]

    # -- loss scaling (mixed_float16) --------------------------------------------------

    @plain_python
    def _minimize_scaled(self, tape, loss):
        """The gradient of ``scale * loss``; the scaler divides it by the scale, applies it
        if it is finite, and otherwise skips the update and halves the scale (it doubles it
        after 2000 finite steps in a row). Returns the unscaled gradient's norm, 0 on a
        skipped step (so that a skipped step does not read as a diverged run)."""
        import tensorflow as tf

        scale = tf.cast(self.loss_scaler.dynamic_scale, loss.dtype)
        # The strategy's tape has stopped recording, so the scale cannot multiply the loss
        # on it; starting the backward pass from ``scale`` instead of 1 is the same thing.
        grads = self._fill_missing(tape.gradient(loss, self.variables,
                                                 output_gradients=tf.fill(tf.shape(loss), scale)))
        grads, share = reduce_gradients(grads)  # across replicas (tf.distribute)
        finite = self.loss_scaler.check_finite(grads)
        self._apply(share)
        norm = tf.linalg.global_norm(grads) / tf.cast(scale, tf.float32)
        return tf.where(finite, norm, tf.zeros_like(norm))
