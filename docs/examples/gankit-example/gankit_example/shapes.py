"""A synthetic dataset: discs and squares of random size, place and brightness."""

import numpy as np

from gankit import Dataset, Examples, Param
from gankit.errors import RecipeError


class ShapesDataset(Dataset):
    """Synthetic images of discs and squares, drawn from a seed (no download).

    ``count`` images, each one filled disc or square on a dark background, drawn from
    ``seed``: the same config always gives the same images, in the same order. With
    ``labels: true`` each image is labelled with its shape (classes ``disc`` and ``square``),
    for a conditional GAN.
    """

    name = "shapes"
    params = {
        "count": Param(int, 256, min=1, doc="number of images"),
        "height": Param(int, 16, min=4, doc="image height"),
        "width": Param(int, 16, min=4, doc="image width"),
        "channels": Param(int, 1, choices=(1, 3), doc="1 for grey, 3 for colour"),
        "seed": Param(int, 0, min=0, doc="seed of the shapes' sizes, places and colours"),
        "scale": Param(list, [-1.0, 1.0], item_type=float, length=2,
                       doc="the [low, high] range of pixel values ([-1, 1] suits tanh)"),
        "labels": Param(bool, False, doc="label each image with its shape (disc or square)"),
    }

    def __init__(self, **config):
        super().__init__(**config)
        low, high = self.config["scale"]
        if not low < high:
            raise RecipeError(f"expected [low, high] with low < high, got [{low}, {high}]",
                              path="dataset.scale")

    @property
    def image_shape(self):
        return (self.config["height"], self.config["width"], self.config["channels"])

    @property
    def value_range(self):
        low, high = self.config["scale"]
        return (float(low), float(high))

    @property
    def class_names(self):
        return ("disc", "square") if self.config["labels"] else None

    def check_recipe(self, recipe, path):
        # The count is known without loading the images, so `gankit validate` can refuse a
        # batch larger than the dataset instead of training failing once it has started.
        if self.config["count"] < recipe.train.batch_size:
            raise RecipeError(f"expected at least train.batch_size ({recipe.train.batch_size}) "
                              f"images, got {self.config['count']}", path=f"{path}.count",
                              source=recipe.source)

    def load(self):
        c = self.config
        rng = np.random.default_rng(c["seed"])  # never the global NumPy state
        n, (h, w, channels) = c["count"], self.image_shape
        rows, cols = np.mgrid[0:h, 0:w]
        images = np.zeros((n, h, w, channels), dtype=np.float32)
        labels = np.zeros(n, dtype=np.int32)
        for i in range(n):
            radius = rng.uniform(0.15, 0.35) * min(h, w)
            cy, cx = rng.uniform(radius, h - radius), rng.uniform(radius, w - radius)
            if rng.random() < 0.5:
                mask = (rows - cy) ** 2 + (cols - cx) ** 2 <= radius ** 2
            else:
                mask = (abs(rows - cy) <= radius) & (abs(cols - cx) <= radius)
                labels[i] = 1
            images[i][mask] = rng.uniform(0.5, 1.0, channels)
        low, high = self.value_range
        images = (low + (high - low) * images).astype(np.float32)
        return Examples(images, labels) if self.config["labels"] else images
