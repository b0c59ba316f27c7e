"""The tiny frog recipe that the training and reliability tests train (24x24, 8 filters)."""

import json

MODELS = {
    "generator": {"type": "frog_dcgan", "latent_dim": 8, "height": 24, "width": 24,
                  "base_filters": 8, "filters": 8},
    "discriminator": {"type": "frog_dcgan", "height": 24, "width": 24, "filters": 8},
    "dataset": {"type": "image_folder", "path": None, "height": 24, "width": 24},
    "loss": {"type": "bce", "real_label": 0.0, "fake_label": 1.0, "label_noise": 0.05},
}
"""The article's models and loss, small: what every tiny recipe shares."""


def tiny_recipe(name: str, train: dict, **sections) -> dict:
    """A new raw recipe: the tiny models, ``train`` and any other ``sections``."""
    return json.loads(json.dumps({"name": name, **MODELS, **sections, "train": train}))
