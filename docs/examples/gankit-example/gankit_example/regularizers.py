"""Balanced consistency regularization: score an image and its mirror image alike."""

from gankit import Param, Regularizer


class ConsistencyRegularizer(Regularizer):
    """Balanced consistency regularization (Zhao et al. 2021) with horizontal flips.

    Every real and every generated image is mirrored with probability 1/2; the penalty is
    ``weight * (mean((D(x) - D(mirror(x)))^2) on real + the same on generated images)``.
    """

    name = "consistency"
    params = {
        "weight": Param(float, 10.0, min=0.0, doc="the penalty's weight (lambda)"),
        "every": Param(int, 1, min=1, doc="apply every this many steps, scaled up by as much"),
    }

    def penalty(self, inputs, ctx):
        import tensorflow as tf

        total = 0.0
        for name, images, scores in (("real", inputs.real_images, inputs.real_scores),
                                     ("fake", inputs.fake_images, inputs.fake_scores)):
            # A coin per image from this part's own stream, never tf.random: steps replay.
            coin = ctx.uniform(f"mirror/{name}", [tf.shape(images)[0], 1, 1, 1])
            mirrored = tf.where(coin < 0.5, tf.reverse(images, axis=[2]), images)
            total += tf.reduce_mean(tf.square(inputs.discriminate(mirrored) - scores))
        return self.config["weight"] * total
