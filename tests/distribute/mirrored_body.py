"""Run in a fresh process by test_mirrored.py: TensorFlow must split the CPU into two
logical devices before it initialises them, which a pytest process that already used
TensorFlow can no longer do.

Trains the same tiny recipe through the real trainer on one device (``none``) and on two
logical CPU devices (``mirrored``, stopped after 2 steps and resumed to 4), then prints one
JSON line comparing them. The recipe exercises every random draw and the gradient path:
label noise, DiffAugment, a gradient penalty, clipped RMSprop, EMA and shuffled data. The
models have no batch normalization and the discriminator no dropout (both compute per
replica, see docs/scaling.md).
"""

import json
import sys
from pathlib import Path

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from gankit.plugin.manager import default_plugins  # noqa: E402
from gankit.recipe.validation import validate  # noqa: E402
from gankit.rundir.run_dir import RunDir  # noqa: E402
from gankit.training.loop import Trainer  # noqa: E402

root = Path(sys.argv[1])
images = root / "images"
images.mkdir()
rng = np.random.default_rng(0)
for i in range(12):
    Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(images / f"{i}.png")

OPTIMIZER = {"type": "RMSprop", "learning_rate": 1e-3, "clipvalue": 0.01}
RAW = {
    "generator": {"type": "frog_dcgan", "latent_dim": 8, "height": 24, "width": 24,
                  "base_filters": 4, "filters": 4},
    "discriminator": {"type": "frog_dcgan", "height": 24, "width": 24, "filters": 4,
                      "dropout": 0.0},
    "dataset": {"type": "image_folder", "path": str(images), "height": 24, "width": 24},
    "loss": {"type": "bce", "real_label": 0.0, "fake_label": 1.0, "label_noise": 0.05},
    "regularizers": [{"type": "gradient_penalty", "weight": 1.0}],
    "augmenter": {"type": "diffaugment"},
    "optimizers": {"generator": OPTIMIZER, "discriminator": OPTIMIZER},
    "ema": {"decay": 0.9},
    "train": {"steps": 4, "batch_size": 4, "seed": 3, "shuffle": True, "sample_every": 2,
              "grid_every": 2, "grid_size": 2, "checkpoint_every": 2, "xla": "off",
              "precision": "float32"},  # equal to 1e-5 in float32 (bfloat16 rounds more)
}
registry = default_plugins().registry


def train(name, steps, distribute, resume=False):
    raw = json.loads(json.dumps(RAW))
    raw["train"].update(steps=steps, distribute=distribute)
    recipe = validate(raw, registry, source=name)
    run_dir = RunDir(root / name)
    if not resume:
        run_dir.create()
    trainer = Trainer(recipe, run_dir, resume=resume, progress=False)
    trainer.run()
    return trainer.session


one = train("one", 4, "none")
train("two", 2, {"type": "mirrored", "devices": ["/cpu:0", "/cpu:1"]})
two = train("two", 4, {"type": "mirrored", "devices": ["/cpu:0", "/cpu:1"]}, resume=True)

worst, compared = 0.0, 0
for name, variables in one.variables().items():
    for a, b in zip(variables, two.variables()[name]):
        a, b = np.asarray(a.numpy(), np.float64), np.asarray(b.numpy(), np.float64)
        if a.size:
            worst = max(worst, float(np.max(np.abs(a - b))))
            compared += 1
losses = [np.loadtxt(root / run / "losses.csv", delimiter=",", skiprows=1)
          for run in ("one", "two")]
print(json.dumps({
    "replicas": two.distribution.num_replicas,
    "steps": [int(one.step_counter.numpy()), int(two.step_counter.numpy())],
    "compared": compared,
    "max_weight_difference": worst,
    "loss_rows": [len(x) for x in losses],
    "max_loss_difference": float(np.max(np.abs(losses[0] - losses[1]))),
    "grids": sorted(p.name for p in (root / "two" / "samples").glob("grid_*")),
}))
