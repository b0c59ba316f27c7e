"""Least-squares GAN training: one critic update, then one generator update, with Adam."""

from gankit import Param, StepOutputs, Strategy
from gankit_example.losses import critic_loss, generator_loss


class LeastSquaresStrategy(Strategy):
    """Least-squares GAN (Mao et al., 2017): alternating critic and generator updates, Adam.

    The critic regresses real images to ``real_target`` and generated ones to
    ``fake_target``; the generator pulls the critic's score of its images towards
    ``real_target``. Suits a linear critic such as conv_critic.
    """

    name = "least_squares"
    params = {
        "learning_rate": Param(float, 2e-4, min=0.0, min_exclusive=True,
                               doc="Adam learning rate of both models"),
        "beta_1": Param(float, 0.5, min=0.0, max=1.0, doc="Adam's first-moment decay"),
        "real_target": Param(float, 1.0, doc="critic target for real images"),
        "fake_target": Param(float, 0.0, doc="critic target for generated images"),
    }

    def setup(self, generator, discriminator, latent_dim):
        import keras

        self._generator, self._critic, self._latent_dim = generator, discriminator, latent_dim
        c = self.config
        self._optimizers = {
            role: keras.optimizers.Adam(c["learning_rate"], beta_1=c["beta_1"])
            for role in ("discriminator", "generator")}
        # Create the optimizers' slots now: a checkpoint is restored before the first step.
        self._optimizers["discriminator"].build(discriminator.trainable_variables)
        self._optimizers["generator"].build(generator.trainable_variables)

    @property
    def optimizers(self):
        return self._optimizers

    def draw_inputs(self, seed, batch_size):
        import tensorflow as tf

        # All randomness of a step comes from `seed`, so a step can be replayed exactly.
        seeds = tf.random.experimental.stateless_split(seed, 2)
        shape = (batch_size, self._latent_dim)
        return {"d_latents": tf.random.stateless_normal(shape, seeds[0]),
                "g_latents": tf.random.stateless_normal(shape, seeds[1])}

    def train_step(self, real_images, inputs):
        import tensorflow as tf

        c = self.config
        gen, critic = self._generator, self._critic

        fake = gen(inputs["d_latents"], training=False)
        with tf.GradientTape() as tape:
            real_scores = critic(tf.cast(real_images, fake.dtype), training=True)
            fake_scores = critic(fake, training=True)
            d_loss = critic_loss(real_scores, fake_scores, c["real_target"], c["fake_target"])
        d_grads = tape.gradient(d_loss, critic.trainable_variables)
        self._optimizers["discriminator"].apply(d_grads, critic.trainable_variables)

        # Only the generator's variables are differentiated and updated here.
        with tf.GradientTape() as tape:
            scores = critic(gen(inputs["g_latents"], training=True), training=True)
            g_loss = generator_loss(scores, c["real_target"])
        g_grads = tape.gradient(g_loss, gen.trainable_variables)
        self._optimizers["generator"].apply(g_grads, gen.trainable_variables)

        metrics = {"d_loss": d_loss, "g_loss": g_loss,
                   "d_on_real": tf.reduce_mean(real_scores),
                   "d_on_fake": tf.reduce_mean(fake_scores)}
        return StepOutputs(metrics, fake)
