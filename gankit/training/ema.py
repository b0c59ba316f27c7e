"""An exponential moving average of the generator's weights.

``ema = decay * ema + (1 - decay) * weights`` after every generator update from step
``start`` on; before it, the average is a plain copy. With ``rampup`` (StyleGAN2-ADA's
``ema_rampup``), the average's half-life is at most ``rampup`` times the steps averaged so
far, so that a short run's average does not still carry its first weights; it grows to
``decay``'s half-life and stays there. Only trainable weights are averaged;
the rest (batch-norm statistics, spectral-norm vectors, dropout seeds) is copied, as in
StyleGAN and BigGAN, or (``statistics="average"``) its float part is averaged like the
weights, as timm's ModelEma does, so that the batch-norm statistics belong to the averaged
weights rather than to the newest ones. The averaged model is a second instance of the generator, so it is
checkpointed, sampled and saved like the generator itself.
"""

from __future__ import annotations

import math


class GeneratorEMA:
    """The averaged copy of a generator model.

    Args:
        model: the generator being trained.
        shadow: a second model of the same architecture (its weights are overwritten).
        decay: the weight of the old average.
        start: the first step (counted from 0) that averages; earlier steps copy.
        statistics: ``"copy"`` or ``"average"``: what to do with the non-trainable float
            variables (integer ones, such as seeds, are always copied).
        rampup: None, or the largest half-life as a share of the steps averaged so far.
    """

    def __init__(self, model, shadow, decay: float, start: int = 0,
                 statistics: str = "copy", rampup: float | None = None) -> None:
        if statistics not in ("copy", "average"):
            raise ValueError(f"statistics must be 'copy' or 'average', got {statistics!r}")
        self.statistics = statistics
        self.model = model
        self.shadow = shadow
        self.decay = float(decay)
        self.start = int(start)
        self.rampup = None if rampup is None else float(rampup)
        if len(shadow.variables) != len(model.variables):
            raise ValueError("the EMA model has other variables than the generator")
        for target, source in zip(shadow.variables, model.variables):
            target.assign(source)

    def update(self, step) -> None:
        """Average after the generator update of ``step`` (a graph-friendly int64 tensor)."""
        import tensorflow as tf

        step = tf.cast(step, tf.int64)
        decay = tf.constant(self.decay, tf.float32)
        if self.rampup is not None:
            decay = _ramped(self.decay, self.rampup, step - self.start + 1)
        decay = tf.where(step < self.start, 0.0, decay)
        for target, source in zip(self.shadow.trainable_variables, self.model.trainable_variables):
            d = tf.cast(decay, target.dtype)
            target.assign(d * target + (1.0 - d) * source)
        for target, source in zip(self.shadow.non_trainable_variables,
                                  self.model.non_trainable_variables):
            if self.statistics == "average" and "float" in str(target.dtype):
                d = tf.cast(decay, target.dtype)
                target.assign(d * target + (1.0 - d) * source)
            else:
                target.assign(source)


def half_life(decay: float) -> float:
    """The steps after which ``decay`` has halved a weight's share of the average."""
    return math.log(0.5) / math.log(decay)


def ramped_decay(decay: float, rampup: float, averaged: int) -> float:
    """The decay of the ``averaged``-th averaging step (1 for the first) under ``rampup``:
    a half-life of ``min(half_life(decay), rampup * averaged)`` steps."""
    return 0.5 ** (1.0 / min(half_life(decay), rampup * averaged))


def _ramped(decay: float, rampup: float, averaged):
    import tensorflow as tf

    half = tf.minimum(tf.constant(half_life(decay), tf.float64),
                      rampup * tf.cast(averaged, tf.float64))
    return tf.cast(tf.pow(tf.constant(0.5, tf.float64), 1.0 / half), tf.float32)
