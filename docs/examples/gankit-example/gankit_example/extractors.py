"""A feature extractor without a network: grey thumbnails and colour statistics."""

import numpy as np

from gankit import FeatureExtractor, Features, GankitError, Param


class ThumbnailExtractor(FeatureExtractor):
    """Each image shrunk to a grid x grid grey thumbnail (cell means), then the mean and
    spread of each colour channel: ``grid * grid + 6`` numbers. Fast, offline and small;
    for smoke tests and for data where layout and colour are what matter, not for FIDs to
    compare with papers."""

    name = "thumbnail"
    params = {"grid": Param(int, 4, min=1, max=64, doc="cells per side of the thumbnail")}

    def protocol(self):
        return {"type": self.name, "grid": self.config["grid"], "resize": "cell means",
                "channels": "grey repeated to RGB"}

    def extract(self, images):
        images = np.asarray(images, np.float32)
        grid = self.config["grid"]
        if min(images.shape[1:3]) < grid:
            raise GankitError(f"thumbnail: images of {images.shape[1]}x{images.shape[2]} "
                              f"pixels are smaller than its grid of {grid}; lower grid")
        if images.shape[-1] == 1:  # greyscale: the same features as its RGB copy
            images = np.repeat(images, 3, axis=-1)
        grey = images.mean(axis=-1)
        cells = [cell.mean(axis=(1, 2)) for band in np.array_split(grey, grid, axis=1)
                 for cell in np.array_split(band, grid, axis=2)]
        colour = [images.mean(axis=(1, 2)), images.std(axis=(1, 2))]
        return Features(np.concatenate([np.stack(cells, axis=1), *colour], axis=1))
