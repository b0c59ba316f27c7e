"""Gradient penalties on the discriminator: WGAN-GP, R1 and R2.

Each penalty takes the gradient of the discriminator's scores with respect to its input
images under an inner ``tf.GradientTape``. The strategy's outer tape then differentiates
the penalty with respect to the discriminator's weights (a second-order gradient), so every
step here stays inside TensorFlow.
"""

from __future__ import annotations

from gankit import Param
from gankit.errors import RecipeError
from gankit.interfaces import Regularizer

_EVERY = Param(int, 1, min=1, doc="apply every this many steps, scaled up by as much (lazy "
                                  "regularization, as in StyleGAN2)")


def _float32_constant(images):
    """Images as float32, cut off from the graph: the penalty moves only the discriminator."""
    import tensorflow as tf

    return tf.stop_gradient(tf.cast(images, tf.float32))


def input_gradient_square_norms(discriminate, images):
    """The squared L2 norm of d D(x) / d x, per image: a float32 vector ``(batch,)``."""
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(images)
        total = tf.reduce_sum(discriminate(images))
    grads = tape.gradient(total, images)
    return tf.reduce_sum(tf.square(tf.cast(grads, tf.float32)),
                         axis=list(range(1, images.shape.rank)))


class GradientPenalty(Regularizer):
    """The WGAN-GP gradient penalty (Gulrajani et al. 2017) on interpolated images.

    ``weight * mean((sqrt(|grad_x D(x_hat)|^2 + 1e-12) - target)^2)`` over the batch, at
    ``x_hat = eps * real + (1 - eps) * fake`` with one ``eps ~ U[0, 1)`` per image. The
    target is not normalised: TF-GAN and ProGAN take ``(|g| / t - 1)^2``, which is this
    penalty with ``weight / t^2`` (the same for the default ``target: 1``).
    """

    name = "gradient_penalty"
    params = {
        "weight": Param(float, 10.0, min=0.0, doc="the penalty's weight (lambda)"),
        "target": Param(float, 1.0, min=0.0,
                        doc="the gradient norm the critic is pulled to: the term is (norm - "
                            "target)^2, not TF-GAN's (norm / target - 1)^2, which is weight / "
                            "target^2 here"),
        "every": _EVERY,
    }

    def penalty(self, inputs, ctx):
        import tensorflow as tf

        real = _float32_constant(inputs.real_images)
        fake = _float32_constant(inputs.fake_images)
        shape = [tf.shape(real)[0]] + [1] * (real.shape.rank - 1)
        eps = ctx.uniform("epsilon", shape)
        square_norms = input_gradient_square_norms(inputs.discriminate,
                                                   eps * real + (1.0 - eps) * fake)
        # The tiny epsilon keeps the gradient of the square root finite at a zero norm.
        norms = tf.sqrt(square_norms + 1e-12)
        return self.config["weight"] * tf.reduce_mean(tf.square(norms - self.config["target"]))


class _SquaredGradientNormPenalty(Regularizer):
    """gamma / 2 times the mean squared input-gradient norm on the images ``_images`` picks."""

    params = {
        "gamma": Param(float, 10.0, min=0.0, doc="the penalty's weight; the term is gamma / 2 "
                                                 "times the mean squared gradient norm"),
        "every": _EVERY,
    }

    def _images(self, inputs):
        raise NotImplementedError

    def penalty(self, inputs, ctx):
        import tensorflow as tf

        square_norms = input_gradient_square_norms(inputs.discriminate,
                                                   _float32_constant(self._images(inputs)))
        return 0.5 * self.config["gamma"] * tf.reduce_mean(square_norms)


class R1Penalty(_SquaredGradientNormPenalty):
    """The R1 penalty (Mescheder et al. 2018): the gradient norm on real images, squared.

    ``gamma / 2 * mean(|grad_x D(x)|^2)`` over the real images, as in StyleGAN and
    StudioGAN (whose ``r1_lambda`` is ``gamma``).
    """

    name = "r1"

    def _images(self, inputs):
        return inputs.real_images


class R2Penalty(_SquaredGradientNormPenalty):
    """The R2 penalty (Mescheder et al. 2018): the gradient norm on generated images, squared.

    ``gamma / 2 * mean(|grad_x D(x)|^2)`` over the generated images.
    """

    name = "r2"

    def _images(self, inputs):
        return inputs.fake_images


def _check_every(regularizer: Regularizer, recipe, path: str) -> None:
    """A lazy regularizer must come round at least once in the run."""
    if regularizer.every > recipe.train.steps:
        raise RecipeError(f"{regularizer.every} is more than train.steps "
                          f"({recipe.train.steps}), so the penalty would never be applied",
                          path=f"{path}.every", source=recipe.source)


def _check_gradient_penalty(self: GradientPenalty, recipe, path: str) -> None:
    _check_every(self, recipe, path)
    discriminator = recipe.create("discriminator")
    if discriminator.mixes_batch:
        spec = recipe.spec("discriminator")
        hint = " (set discriminator.norm: layer or none)" if "norm" in spec.config else ""
        raise RecipeError(f"a gradient penalty needs a discriminator that scores each image on "
                          f"its own, but '{spec.type}' uses batch normalization{hint}",
                          path=path, source=recipe.source)


GradientPenalty.check_recipe = _check_gradient_penalty
R1Penalty.check_recipe = _check_every
R2Penalty.check_recipe = _check_every
