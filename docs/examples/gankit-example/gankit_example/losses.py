"""The least-squares GAN losses (Mao et al., 2017, "Least Squares Generative Adversarial
Networks"), as pure functions of the critic's scores."""


def critic_loss(real_scores, fake_scores, real_target=1.0, fake_target=0.0):
    """0.5 * mean((D(x) - real_target)^2) + 0.5 * mean((D(G(z)) - fake_target)^2)."""
    import tensorflow as tf

    return 0.5 * (tf.reduce_mean(tf.square(real_scores - real_target))
                  + tf.reduce_mean(tf.square(fake_scores - fake_target)))


def generator_loss(fake_scores, real_target=1.0):
    """0.5 * mean((D(G(z)) - real_target)^2): the generator wants its images scored real."""
    import tensorflow as tf

    return 0.5 * tf.reduce_mean(tf.square(fake_scores - real_target))
