"""The tiny frog recipe that the training and reliability tests train (24x24, 8 filters),
and the tiny classifier the evaluation tests extract features with."""

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


def tiny_classifier(path, size: int):
    """Save a seeded, untrained ``size`` x ``size`` RGB classifier to ``path`` (a ``.keras``
    file): a 3x3 convolution, its average as the ``pool`` features (6-d), 4 softmax classes."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(6, 3, activation="tanh")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax", name="probs")(x))
    model.save(path)
    return path
