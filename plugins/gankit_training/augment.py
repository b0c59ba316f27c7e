"""Augmenters: what the discriminator sees of every image, real or generated."""

from __future__ import annotations

from gankit import Param
from gankit.errors import RecipeError, did_you_mean
from gankit.interfaces import Augmenter

POLICY_ITEMS = ("color", "translation", "cutout", "flip")
"""The transformations DiffAugment can chain: the paper's three in its order, then ``flip``."""

DEFAULT_POLICY = ("color", "translation", "cutout")
"""The paper's policy, DiffAugment's default."""


class NoAugment(Augmenter):
    """No augmentation: the discriminator sees the images as they are."""

    name = "none"  # augment() is the interface's own: the identity
    is_identity = True


class DiffAugment(Augmenter):
    """Differentiable augmentation (Zhao et al. 2020) of real and generated images alike.

    Each image gets its own random parameters, drawn from the step's stream:

    - ``color``: add a brightness in [-0.5, 0.5), scale the saturation (the distance from
      the pixel's channel mean) by [0, 2) and the contrast (the distance from the image
      mean) by [0.5, 1.5).
    - ``translation``: shift by a whole number of pixels up to ``translation_ratio`` of the
      height and width in each direction, filling with zeros.
    - ``cutout``: zero a rectangle ``cutout_ratio`` of the height and width at a random
      centre (clipped at the borders).
    - ``flip``: mirror left to right with probability 1/2 (ADA's ``xflip``; not in the
      paper). On data whose mirror images are as likely as the images, such as photographs
      of animals, it shows the discriminator twice the real images it would see, and the
      generator cannot learn to lean one way, as the mirrored and unmirrored images are
      judged alike.

    Every step is made of TensorFlow ops that pass the gradient on to the images, so the
    generator learns through the augmentation.
    """

    name = "diffaugment"
    params = {
        "policy": Param(list, list(DEFAULT_POLICY), item_type=str,
                        doc="the transformations to apply, in order: any of color, "
                            "translation, cutout, flip"),
        "translation_ratio": Param(float, 0.125, min=0.0, max=0.5,
                                   doc="largest shift as a fraction of the image size"),
        "cutout_ratio": Param(float, 0.5, min=0.0, max=1.0,
                              doc="side of the cut-out rectangle as a fraction of the image size"),
    }

    def __init__(self, **config):
        super().__init__(**config)
        seen = set()
        for item in self.config["policy"]:
            if item not in POLICY_ITEMS:
                raise RecipeError(f"unknown policy item {item!r}{did_you_mean(item, POLICY_ITEMS)}"
                                  f"; valid items: {', '.join(POLICY_ITEMS)}",
                                  path="augmenter.policy")
            if item in seen:
                raise RecipeError(f"policy item {item!r} is listed twice; list each of "
                                  f"{', '.join(POLICY_ITEMS)} at most once",
                                  path="augmenter.policy")
            seen.add(item)

    @property
    def is_identity(self) -> bool:
        return not self.config["policy"]

    def augment(self, images, ctx):
        import tensorflow as tf

        c = self.config
        images = tf.convert_to_tensor(images)
        for item in c["policy"]:
            if item == "color":
                images = _color(images, ctx)
            elif item == "translation":
                images = _translation(images, ctx, c["translation_ratio"])
            elif item == "cutout":
                images = _cutout(images, ctx, c["cutout_ratio"])
            else:
                images = _flip(images, ctx)
        return images


class CoarseToFine(DiffAugment):
    """A coarse-to-fine curriculum: the discriminator sees a low-resolution version of
    every image first, then the full resolution faded in, as a progressively grown GAN
    trains at 16x16 before 32x32 (Karras et al. 2018) and as StyleGAN3 blurs the
    discriminator's images early in training.

    For the first ``steps`` steps every image, real or generated, is resized down to
    ``size`` x ``size`` (bilinear, antialiased: a low-pass filter) and back up to its own
    size (bilinear), so the discriminator can judge only the coarse layout and the
    generator is pushed to get that right first. Over the next ``fade_steps`` steps the
    full-resolution image is blended in linearly (``(1 - a) * coarse + a * image``, ``a``
    from 0 to 1), and from then on the images pass unchanged. Images no larger than
    ``size`` pass unchanged throughout.

    Unlike progressive growing it does not make the early steps cheaper: the models keep
    their full size from the start. Any DiffAugment ``policy`` is applied after it
    (``policy: [color, translation]``: the curriculum, then DiffAugment); with no policy the
    transformation depends only on the step, not on random draws.
    """

    name = "coarse_to_fine"
    params = {
        "size": Param(int, 16, min=1, max=4096,
                      doc="the side the images are reduced to at first (16: a 32x32 image "
                          "is seen at 16x16)"),
        "steps": Param(int, 1000, min=0, max=10**9,
                       doc="steps at the coarse resolution only, from step 0"),
        "fade_steps": Param(int, 500, min=0, max=10**9,
                            doc="steps over which the full resolution is then blended in"),
        **DiffAugment.params,
        "policy": Param(list, [], item_type=str,
                        doc="DiffAugment's transformations to apply after the curriculum, in "
                            "order: any of color, translation, cutout, flip (none: only the "
                            "curriculum)"),
    }

    @property
    def is_identity(self) -> bool:
        c = self.config
        return not c["policy"] and c["steps"] + c["fade_steps"] == 0

    def augment(self, images, ctx):
        images = coarse_to_fine(images, ctx.step, size=self.config["size"],
                                steps=self.config["steps"],
                                fade_steps=self.config["fade_steps"])
        return super().augment(images, ctx)  # DiffAugment: nothing when no policy


def coarse_to_fine(images, step, *, size: int, steps: int, fade_steps: int):
    """``images`` as :class:`CoarseToFine` shows them at ``step`` (an integer tensor):
    resized to ``size`` and back for ``steps`` steps, then the full resolution blended in
    over ``fade_steps``."""
    import tensorflow as tf

    images = tf.convert_to_tensor(images)
    height, width = _spatial_size(images)
    if size >= max(height, width) or steps + fade_steps == 0:
        return images
    low = (min(size, height), min(size, width))
    coarse = tf.image.resize(tf.image.resize(images, low, method="bilinear", antialias=True),
                             (height, width), method="bilinear")
    coarse = tf.cast(coarse, images.dtype)
    # The share of the full resolution: 0 for the first `steps` steps, then linear to 1.
    progress = tf.cast(tf.cast(step, tf.int64) - steps, tf.float32) / float(max(fade_steps, 1))
    share = tf.cast(tf.clip_by_value(progress, 0.0, 1.0), images.dtype)
    return share * images + (1.0 - share) * coarse  # exactly one or the other at the ends


def _per_image(images, *trailing):
    """The shape of one random number per image: ``[batch, *trailing]``."""
    import tensorflow as tf

    n = images.shape[0]
    return [n if n is not None else tf.shape(images)[0], *trailing]


def _spatial_size(images):
    height, width = images.shape[1], images.shape[2]
    if height is None or width is None:
        raise ValueError(f"DiffAugment needs images of a known height and width, got shape "
                         f"{images.shape}")
    return height, width


def _color(images, ctx):
    import tensorflow as tf

    shape = _per_image(images, 1, 1, 1)

    def factor(name, low, high):
        return tf.cast(ctx.uniform(name, shape, low, high), images.dtype)

    x = images + factor("brightness", -0.5, 0.5)
    mean = tf.reduce_mean(x, axis=-1, keepdims=True)
    x = (x - mean) * factor("saturation", 0.0, 2.0) + mean
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    return (x - mean) * factor("contrast", 0.5, 1.5) + mean


def _shift(images, axis, shifts, pad):
    """``out[..., i, ...] = images[..., i - shift, ...]`` per image, zero outside."""
    import tensorflow as tf

    paddings = [[0, 0]] * images.shape.rank
    paddings[axis] = [pad, pad]
    padded = tf.pad(images, paddings)
    index = tf.range(images.shape[axis])[None, :] - shifts + pad
    return tf.gather(padded, index, axis=axis, batch_dims=1)


def _translation(images, ctx, ratio):
    height, width = _spatial_size(images)
    for axis, size, name in ((1, height, "translation_y"), (2, width, "translation_x")):
        limit = int(size * ratio + 0.5)
        if limit:
            shifts = ctx.integers(name, _per_image(images, 1), 2 * limit + 1) - limit
            images = _shift(images, axis, shifts, limit)
    return images


def _cutout(images, ctx, ratio):
    import tensorflow as tf

    height, width = _spatial_size(images)
    inside = []
    for size, name in ((height, "cutout_y"), (width, "cutout_x")):
        side = int(size * ratio + 0.5)
        start = ctx.integers(name, _per_image(images, 1), size) - side // 2
        position = tf.range(size)[None, :]
        inside.append((position >= start) & (position < start + side))
    hole = inside[0][:, :, None] & inside[1][:, None, :]
    # A multiplicative mask: the gradient flows to every pixel that stays.
    return images * tf.cast(tf.logical_not(hole), images.dtype)[..., None]


def _flip(images, ctx):
    import tensorflow as tf

    mirrored = ctx.uniform("flip", _per_image(images, 1, 1, 1)) < 0.5
    return tf.where(mirrored, tf.reverse(images, axis=[2]), images)
