"""Mixed precision: the Keras dtype policy a session builds its models under.

``train.precision`` names a Keras dtype policy. Under ``mixed_bfloat16`` and
``mixed_float16`` every layer built by the session computes in 16 bits while its variables
stay float32 (Keras casts them on use). The discriminator's scores are cast to float32
before any loss (``GANModels.discriminate``), images and penalties are float32, and the
built-in models end with a float32 activation, as Keras recommends for a model's output.
``mixed_float16`` also scales each model's loss (``updates.py``).

The policy is set only while the models are built and restored afterwards, so it never
reaches other sessions, or anything else, in the same process.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
"""The values of ``train.precision`` (Keras dtype policy names)."""


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Make ``name`` Keras' global dtype policy inside the block, then restore the previous one.

    Layers take the global policy when they are created, so models built inside the block
    keep it for good (and store it in a saved ``.keras`` file).

    Raises:
        ValueError: for a name outside :data:`PRECISIONS`.
    """
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def uses_loss_scaling(name: str) -> bool:
    """Whether a precision needs loss scaling (float16's range is too narrow for small
    gradients; bfloat16 has float32's range and needs none)."""
    return name == "mixed_float16"
