"""A least-squares GAN loss whose discriminator targets are jittered with noise."""

from gankit import Loss, Param


class NoisyLeastSquaresLoss(Loss):
    """The LSGAN loss (Mao et al. 2017) with noisy targets for the discriminator.

    Real images are scored towards ``1 - noise * u``, generated ones towards ``noise * u``,
    ``u ~ U[0, 1)`` per image and step; the generator pulls its scores towards 1.
    """

    name = "noisy_least_squares"
    params = {"noise": Param(float, 0.1, min=0.0, max=0.5, doc="the largest jitter of a target")}

    def discriminator_loss(self, real_scores, fake_scores, ctx):
        import tensorflow as tf

        noise = self.config["noise"]
        # Drawn from this part's own stream: the same step always gets the same targets.
        real_targets = 1.0 - noise * ctx.uniform("real", tf.shape(real_scores))
        fake_targets = noise * ctx.uniform("fake", tf.shape(fake_scores))
        return 0.5 * (tf.reduce_mean(tf.square(real_scores - real_targets))
                      + tf.reduce_mean(tf.square(fake_scores - fake_targets)))

    def generator_loss(self, fake_scores, ctx, real_scores=None):
        import tensorflow as tf

        return 0.5 * tf.reduce_mean(tf.square(fake_scores - 1.0))
