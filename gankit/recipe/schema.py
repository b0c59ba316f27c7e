"""The sections of a recipe that are not components: ``train``, ``ema``, ``metrics`` and the
top-level ``name`` / ``description``, as declared parameters and the validated config objects
(docs/recipes.md is generated from these tables). ``train.distribute`` is
:mod:`gankit.recipe.distribute`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gankit.params import REQUIRED, IntOrWord, Param  # noqa: F401

MAX_STEPS = 2 ** 31 - 1


TRAIN_PARAMS: dict[str, Param] = {
    "steps": Param(int, min=1, max=MAX_STEPS,
                   doc="number of training steps (a step is one generator update, with the "
                       "strategy's discriminator updates before it)"),
    "batch_size": Param(int, 2, min=1, max=65536,
                        doc="real images per discriminator update (the generator makes as many)"),
    "seed": Param(int, 0, min=0, max=2 ** 32 - 1,
                  doc="seed for weights, latents, label noise, augmentation, dropout and shuffling"),
    "shuffle": Param(bool, False, doc="visit the data in a seeded random order each epoch "
                                      "instead of in order"),
    "sample_every": Param(int, 2, min=1, max=MAX_STEPS,
                          doc="steps between saving one generated and one real image and logging "
                              "to TensorBoard"),
    "grid_every": Param(int, 100, min=1, max=MAX_STEPS,
                        doc="steps between grids of a fixed batch of latents (also at the last step)"),
    "grid_size": Param(int, 8, min=1, max=32, doc="the grid is grid_size x grid_size images"),
    "checkpoint_every": Param(int, 100, min=1, max=MAX_STEPS,
                              doc="steps between checkpoints (also at the last step)"),
    "keep_checkpoints": Param(int, 3, min=1, max=1000, doc="how many of the newest checkpoints to keep"),
    "xla": Param(str, "auto", choices=("auto", "on", "off"),
                 doc="XLA compilation: on compiles the whole step, off nothing, auto only the "
                     "optimizer updates (measured fastest on CPU). With on, TensorFlow draws "
                     "other random numbers for the same seed, so runs differ from off/auto"),
    "deterministic": Param(bool, True, doc="turn on TensorFlow op determinism (bit-identical reruns)"),
    "precision": Param(str, "auto", choices=("auto", "float32", "mixed_bfloat16", "mixed_float16"),
                       doc="the Keras dtype policy the models compute in: mixed_bfloat16 and "
                           "mixed_float16 compute in 16 bits with float32 weights, scores and "
                           "losses (mixed_float16 with dynamic loss scaling). auto picks the "
                           "fastest on the devices the run trains on: mixed_bfloat16 on a CPU "
                           "with AMX or AVX-512 BF16 (2-6x faster there) and on a GPU of "
                           "compute capability 8.0+, mixed_float16 on 7.x, else float32 "
                           "(docs/performance.md); run.json records the choice"),
    "steps_per_call": IntOrWord(int, "auto", min=1, max=1000, word="auto",
                                 doc="training steps run in one compiled call (the metrics are "
                                     "read back once per call); a call still ends at every step "
                                     "that writes a checkpoint, a grid or metrics. auto fuses up "
                                     "to 64 steps while a call stays under about a second "
                                     "(docs/performance.md). Results do not depend on it"),
    "max_minutes": Param(float, None, nullable=True, min=0.0, min_exclusive=True, max=1.0e7,
                         doc="time budget of this session in minutes of wall-clock, compilation "
                             "included (null: none); the run stops at the next call after it, "
                             "saves a checkpoint, the generator and the report, and can be "
                             "resumed (with a fresh budget)"),
    "distribute": Param((str, dict), "none",
                        doc="the devices or machines of the run: none, mirrored (the devices "
                            "of this machine; {type: mirrored, devices: [...]}) or multi_worker "
                            "(one process per machine, cluster in TF_CONFIG); batch_size is the "
                            "global batch (docs/scaling.md)"),
}
"""The keys of the ``train`` section."""

UNTRACKED_TRAIN_KEYS = ("steps", "steps_per_call", "max_minutes", "distribute")
"""``train`` keys a resume may change: how long a run trains and in how many steps per call,
not what it computes (left out of :meth:`Recipe.digest`); and on which devices or machines
(the same global batch gives the same training, to float rounding)."""

EMA_PARAMS: dict[str, Param] = {
    "decay": Param(float, 0.999, min=0.0, max=0.999999, min_exclusive=True,
                   doc="weight of the old average: ema = decay * ema + (1 - decay) * weights"),
    "start": Param(int, 0, min=0, max=MAX_STEPS,
                   doc="before this step the average is a plain copy of the generator"),
    "statistics": Param(str, "copy", choices=("copy", "average"),
                        doc="the generator's other float state (batch-norm statistics): copy "
                            "it (StyleGAN, BigGAN) or average it like the weights (timm)"),
    "rampup": Param(float, None, nullable=True, min=0.0, min_exclusive=True, max=1.0,
                    doc="cap the average's half-life at this share of the steps averaged so "
                        "far (StyleGAN2-ADA's ema_rampup, e.g. 0.05), so that a short run's "
                        "average does not carry its first weights; null: decay's half-life "
                        "from the start"),
}
"""The keys of the ``ema`` section (an exponential moving average of the generator's
weights; leave the section out, or write ``ema: null``, for none)."""

METRICS_PARAMS: dict[str, Param] = {
    "use": Param(list, component="metric",
                 doc="the metrics, each a name or {type: NAME, ...} (fid, kid, "
                     "inception_score, precision_recall; per class: intra_fid, "
                     "class_accuracy)"),
    "extractor": Param((), {"type": "inception_v3"}, component="feature_extractor",
                       doc="the network whose features the metrics compare"),
    "every": Param(int, 1000, min=1, max=MAX_STEPS,
                   doc="steps between evaluations (also at the last step)"),
    "samples": Param(int, 2000, min=2, max=100_000,
                     doc="generated images per evaluation"),
    "reference_samples": Param(int, None, nullable=True, min=2, max=1_000_000,
                               doc="real images of the training data to compare with (null: "
                                   "all); their features are cached"),
    "batch_size": Param(int, 100, min=1, max=10_000,
                        doc="images per generator and extractor call"),
    "best": Param(str, None, nullable=True,
                  doc="the value that picks the best checkpoint (best/): a metric's value "
                      "name such as fid or kid; null: the first metric's first value"),
    "seed": Param(int, 1, min=0, max=2 ** 32 - 1,
                  doc="seed of the latents of every evaluation (the same latents each time)"),
}
"""The keys of the ``metrics`` section (quality measured during training; leave it out, or
write ``metrics: null``, for none)."""

TOP_LEVEL = {"name": Param(str, None, nullable=True,
                           doc="a name for runs of this recipe (letters, digits, '.', '_', '-'; "
                               "it names the run directory)"),
             "description": Param(str, None, nullable=True, doc="free text")}

_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class TrainConfig:
    """The validated ``train`` section."""

    steps: int
    batch_size: int
    seed: int
    shuffle: bool
    sample_every: int
    grid_every: int
    grid_size: int
    checkpoint_every: int
    keep_checkpoints: int
    xla: str
    deterministic: bool
    precision: str
    steps_per_call: int | str
    max_minutes: float | None
    distribute: dict
    """Normalised by :func:`gankit.recipe.distribute.check_distribute`."""



@dataclass(frozen=True)
class EMAConfig:
    """The validated ``ema`` section."""

    decay: float
    start: int
    statistics: str = "copy"
    rampup: float | None = None


@dataclass(frozen=True)
class MetricsConfig:
    """The validated ``metrics`` section."""

    use: list
    extractor: dict
    every: int
    samples: int
    reference_samples: int | None
    batch_size: int
    best: str | None
    seed: int
