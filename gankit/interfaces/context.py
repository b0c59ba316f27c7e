"""Randomness per part: every random draw of a step comes from the step's stateless key
folded with the name of the part that draws it.

Adding a regularizer or an augmenter therefore changes no latent, label noise or crop that
another part sees: each part's stream depends only on ``(train.seed, step, its name)``.
"""

from __future__ import annotations

import zlib
from typing import Any

from gankit.util.graph import plain_python


@plain_python
def name_key(name: str) -> int:
    """A stable 31-bit number for a part's name (the same in every process and version)."""
    return zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF


class StepContext:
    """The step number and a random stream, for one part of one training step.

    Args:
        seed: the run's seed and the step as an int64 tensor ``[seed, step]`` (the step's
            key), or an already derived key.
        step: the step being run (counted from 0), an int64 scalar tensor.
        name: the path of the part this stream belongs to (``""`` for the step itself).

    Draws are stateless (``tf.random.stateless_*``): the same context gives the same numbers
    every time it is asked for the same name, so a part asks once per distinct draw with a
    distinct name (``ctx.normal("d_latents/0", ...)``).
    """

    def __init__(self, seed: Any, step: Any, name: str = "") -> None:
        self.seed = seed
        self.step = step
        self.name = name

    @plain_python
    def key(self, name: str) -> Any:
        """The key of the sub-stream ``name``: an int64 tensor ``(2,)``."""
        import tensorflow as tf

        return tf.random.experimental.stateless_fold_in(self.seed, name_key(name))

    @plain_python
    def child(self, name: str) -> StepContext:
        """The stream of the part ``name`` of this one (independent of every other name)."""
        path = f"{self.name}/{name}" if self.name else name
        return StepContext(self.key(name), self.step, path)

    @plain_python
    def normal(self, name: str, shape, dtype: str = "float32") -> Any:
        """Standard normal numbers from the sub-stream ``name``."""
        import tensorflow as tf

        return tf.random.stateless_normal(shape, self.key(name), dtype=dtype)

    @plain_python
    def uniform(self, name: str, shape, minval=0.0, maxval=1.0, dtype: str = "float32") -> Any:
        """Uniform numbers in ``[minval, maxval)`` from the sub-stream ``name``."""
        import tensorflow as tf

        return tf.random.stateless_uniform(shape, self.key(name), minval=minval, maxval=maxval,
                                           dtype=dtype)

    @plain_python
    def integers(self, name: str, shape, maxval: int) -> Any:
        """Uniform int32 numbers in ``[0, maxval)`` from the sub-stream ``name``."""
        import tensorflow as tf

        return tf.random.stateless_uniform(shape, self.key(name), minval=0, maxval=maxval,
                                           dtype=tf.int32)

    def __repr__(self) -> str:
        return f"StepContext(name={self.name!r})"


@plain_python
def step_context(seed: int, step: Any) -> StepContext:
    """The root context of ``step`` in a run seeded with ``seed``."""
    import tensorflow as tf

    step = tf.cast(step, tf.int64)
    return StepContext(tf.stack([tf.constant(seed, tf.int64), step]), step)
