"""The relativistic average GAN loss (RaGAN, Jolicoeur-Martineau 2018): a loss whose
generator term compares with the real images' scores."""

from gankit import Loss


class RelativisticAverageLoss(Loss):
    """The relativistic average loss (RaGAN) on logits: each score against the other side's mean.

    With ``r = real - mean(fake)`` and ``f = fake - mean(real)``, the discriminator minimises
    ``softplus(-r) + softplus(f)`` (real images should look more real than the average
    generated one) and the generator ``softplus(r) + softplus(-f)``, the same game with the
    sides swapped: so the generator needs the real scores too.
    """

    name = "relativistic_average"
    generator_uses_real = True  # the strategy scores a real batch in the generator update

    def discriminator_loss(self, real_scores, fake_scores, ctx):
        import tensorflow as tf

        r = real_scores - tf.reduce_mean(fake_scores)
        f = fake_scores - tf.reduce_mean(real_scores)
        return tf.reduce_mean(tf.nn.softplus(-r)) + tf.reduce_mean(tf.nn.softplus(f))

    def generator_loss(self, fake_scores, ctx, real_scores=None):
        import tensorflow as tf

        r = real_scores - tf.reduce_mean(fake_scores)
        f = fake_scores - tf.reduce_mean(real_scores)
        return tf.reduce_mean(tf.nn.softplus(r)) + tf.reduce_mean(tf.nn.softplus(-f))
