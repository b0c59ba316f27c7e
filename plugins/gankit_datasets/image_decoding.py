"""Reading an image folder's files inside the ``tf.data`` pipeline (TensorFlow ops only).

The decoding gives the pixels Pillow gives (the listing checked every header with it):
PNG is lossless; JPEG uses libjpeg's accurate integer DCT, as Pillow does; 16-bit greyscale
becomes ``round(v / 257)`` and 16-bit colour its high byte, as in ``gankit.util.images``; RGB to
grey is Pillow's ITU-R 601-2 ``L`` formula in integers. Resizing (``on_size_mismatch:
resize``) is TensorFlow's antialiased bicubic, within one level of Pillow's.
"""

from __future__ import annotations

import numpy as np

from gankit import fail_unless, scale_uint8
from gankit.interfaces import DataSource
from gankit.util.graph import plain_python

JPEG, PNG, PNG_GREY16 = 0, 1, 2
"""How a file is decoded (from its header): JPEG; PNG of 8 bits, or of 16 bits keeping the
high byte (colour); 16-bit greyscale PNG, rounded to 8 bits."""


class ImageFileSource(DataSource):
    """The images of a list of checked PNG and JPEG files, decoded as they are read.

    Args:
        files: the file paths, in the dataset's order.
        kinds: one of :data:`JPEG`, :data:`PNG`, :data:`PNG_GREY16` per file.
        labels: int32 class indices per file, or None.
        image_shape: ``(height, width, channels)`` of the images read.
        value_range: what pixel values are scaled into.
        resize: resize images of another size (the listing refused them otherwise).
    """

    def __init__(self, files: list[str], kinds: np.ndarray, labels: np.ndarray | None,
                 image_shape: tuple[int, int, int], value_range: tuple[float, float],
                 resize: bool) -> None:
        self.files, self.kinds, self._labels = files, kinds, labels
        self.image_shape, self.value_range, self.resize = tuple(image_shape), value_range, resize
        self._tensors = None

    @property
    def size(self) -> int:
        return len(self.files)

    @property
    def labels(self) -> np.ndarray | None:
        return self._labels

    @plain_python
    def read(self, indices):
        return scale_uint8(self.read_pixels(indices), self.value_range)

    @plain_python
    def read_pixels(self, indices):
        """The uint8 pixels ``(k, height, width, channels)`` of the files at ``indices``.

        A file that cannot be decoded stops the pipeline with a one-line error naming it
        (each file is decoded in a small nested pipeline that drops failures, so the
        missing one can be named).
        """
        import tensorflow as tf

        if self._tensors is None:
            with tf.init_scope():  # eager constants, captured by every trace
                self._tensors = (tf.constant(self.files), tf.constant(self.kinds, tf.int32))
        files, kinds = (tf.gather(t, indices) for t in self._tensors)
        k = tf.shape(indices, out_type=tf.int64)[0]
        empty = tf.zeros(self.image_shape, tf.uint8)
        decoded = (tf.data.Dataset.from_tensor_slices((tf.range(k), files, kinds))
                   .map(self._decode)
                   .ignore_errors()
                   .concatenate(tf.data.Dataset.from_tensors((tf.constant(-1, tf.int64), empty)))
                   .batch(k + 1)
                   .get_single_element())
        positions, pixels = decoded
        read = tf.size(positions, out_type=tf.int64) - 1
        # Decoding keeps the order, so the first failure is where positions stop matching.
        first_bad = tf.reduce_sum(tf.cast(tf.equal(positions[:-1], tf.range(read)), tf.int64))
        bad_file = tf.gather(files, tf.minimum(first_bad, k - 1))
        check = fail_unless(
            tf.equal(read, k), bad_file,
            " is not a readable PNG or JPEG image (its data is damaged or truncated, or it "
            "changed after the folder was listed); remove or replace it")
        with tf.control_dependencies([check]):
            return tf.identity(pixels[:-1])

    @plain_python
    def _decode(self, position, file, kind):
        import tensorflow as tf

        data = tf.io.read_file(file)

        def png():
            wide = tf.io.decode_png(data, channels=0, dtype=tf.uint16)
            grey16 = (tf.cast(wide[..., :1], tf.int32) + 128) // 257
            return tf.cond(tf.equal(kind, PNG_GREY16),
                           lambda: tf.cast(grey16, tf.uint8),
                           lambda: tf.cast(tf.bitwise.right_shift(wide, 8), tf.uint8))

        def jpeg():
            return tf.io.decode_jpeg(data, channels=0, dct_method="INTEGER_ACCURATE")

        image = tf.cond(tf.equal(kind, JPEG), jpeg, png)
        image = _to_channels(image, self.image_shape[2])
        height, width, _ = self.image_shape
        if self.resize:
            image = tf.cond(tf.reduce_all(tf.equal(tf.shape(image)[:2], [height, width])),
                            lambda: image, lambda: _resize(image, height, width))
        return position, tf.ensure_shape(image, self.image_shape)


@plain_python
def _to_channels(image, channels: int):
    """Decoded pixels with 1-4 channels (grey, grey+alpha, RGB, RGBA) as ``channels``
    (1 or 3); alpha is dropped, as Pillow's ``convert`` does."""
    import tensorflow as tf

    colour = tf.shape(image)[2] >= 3
    if channels == 3:
        return tf.cond(colour, lambda: image[..., :3],
                       lambda: tf.tile(image[..., :1], [1, 1, 3]))

    def grey():  # Pillow's L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16
        rgb = tf.cast(image[..., :3], tf.int32)
        weighted = tf.reduce_sum(rgb * tf.constant([19595, 38470, 7471], tf.int32), axis=-1,
                                 keepdims=True)
        return tf.cast(tf.bitwise.right_shift(weighted + 0x8000, 16), tf.uint8)

    return tf.cond(colour, grey, lambda: image[..., :1])


@plain_python
def _resize(image, height: int, width: int):
    """Bicubic resizing as Pillow does it: across, then down, rounding to 8 bits in between
    (one pass over both axes can differ from Pillow by over 10 levels on noisy images)."""
    import tensorflow as tf

    def levels(values):
        return tf.clip_by_value(tf.round(values), 0.0, 255.0)

    across = levels(tf.image.resize(tf.cast(image, tf.float32), (tf.shape(image)[0], width),
                                    method="bicubic", antialias=True))
    down = levels(tf.image.resize(across, (height, width), method="bicubic", antialias=True))
    return tf.cast(down, tf.uint8)
