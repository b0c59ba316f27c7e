"""Tiny sessions for the training-core tests (imported as ``session_kit``)."""

from __future__ import annotations

import numpy as np

from gankit import create
from gankit.training.session import Parts, SessionConfig, TrainingSession
from gankit_dcgan.discriminator import FrogDCGANDiscriminator
from gankit_dcgan.generator import FrogDCGANGenerator

LATENT, SIZE = 8, 24
TINY_G = dict(latent_dim=LATENT, height=SIZE, width=SIZE, base_filters=8, filters=8)
TINY_D = dict(height=SIZE, width=SIZE, filters=8, dropout=0.0)
FROG_LOSS = {"type": "bce", "real_label": 0.0, "fake_label": 1.0, "label_noise": 0.05}


def parts(*, loss=FROG_LOSS, regularizers=(), augmenter="none", d_steps=1, ema=None,
          optimizer=None, discriminator=None) -> Parts:
    opt = optimizer or {"type": "Adam", "learning_rate": 1e-3}
    return Parts(generator=FrogDCGANGenerator(**TINY_G),
                 discriminator=FrogDCGANDiscriminator(**{**TINY_D, **(discriminator or {})}),
                 loss=create("loss", loss),
                 strategy=create("strategy", {"type": "gan", "d_steps": d_steps}),
                 optimizers={"generator": create("optimizer", opt),
                             "discriminator": create("optimizer", opt)},
                 regularizers=[create("regularizer", r) for r in regularizers],
                 augmenter=create("augmenter", augmenter),
                 ema_decay=None if ema is None else ema[0], ema_start=0 if ema is None else ema[1])


def session(seed=0, batch_size=4, xla="off", **kwargs) -> TrainingSession:
    return TrainingSession(parts(**kwargs), SessionConfig(seed=seed, batch_size=batch_size,
                                                          xla=xla)).build()


def images(n=16, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (n, SIZE, SIZE, 3)).astype(np.float32)
