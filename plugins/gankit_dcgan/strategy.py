"""The article's alternating training step, made correct for Keras 3."""

from __future__ import annotations

from gankit import Param, StepOutputs, Strategy


class AlternatingStrategy(Strategy):
    """One discriminator update, then one generator update through the unchanged discriminator.

    Discriminator: generated and real images together, labelled fake=1 / real=0 plus uniform
    noise in [0, label_noise), binary cross-entropy, RMSprop. Generator: new latents, every
    target "real", the same loss through the discriminator, RMSprop on the generator's
    weights only. The article freezes the discriminator with ``trainable = False`` before
    compiling the combined model; Keras 3 reads ``trainable`` when a model is called, so that
    trick would also freeze the discriminator's own updates. Here the gradient of each loss
    is taken with respect to exactly one model's variables instead.
    """

    name = "alternating"
    params = {
        "d_learning_rate": Param(float, 8e-4, min=0.0, min_exclusive=True,
                                 doc="discriminator RMSprop learning rate"),
        "g_learning_rate": Param(float, 4e-4, min=0.0, min_exclusive=True,
                                 doc="generator RMSprop learning rate (the article's gan model)"),
        "clipvalue": Param(float, 1.0, min=0.0, min_exclusive=True, nullable=True,
                           doc="clip each gradient element to [-clipvalue, clipvalue]; null: off"),
        "inverse_time_decay": Param(float, 1e-8, min=0.0,
                                    doc="Keras 2 `decay`: lr_t = lr / (1 + decay * t)"),
        "rho": Param(float, 0.9, min=0.0, max=1.0, doc="RMSprop discounting factor"),
        "epsilon": Param(float, 1e-7, min=0.0, min_exclusive=True, doc="RMSprop epsilon"),
        "fake_label": Param(float, 1.0, doc="discriminator target for generated images"),
        "real_label": Param(float, 0.0, doc="discriminator target for real images"),
        "label_noise": Param(float, 0.05, min=0.0,
                             doc="add uniform noise in [0, label_noise) to discriminator labels"),
    }
    removed_params = {
        "lr": "Keras 3 optimizers have no `lr`; set d_learning_rate and g_learning_rate",
        "learning_rate": "each model has its own rate; set d_learning_rate and g_learning_rate",
        "decay": "Keras 3 optimizers have no `decay`; set inverse_time_decay "
                 "(the same lr / (1 + decay * step) schedule)",
    }

    def __init__(self, **config):
        super().__init__(**config)
        self._generator = self._discriminator = None
        self._optimizers: dict = {}
        self._compiled_updates: dict = {}
        self._latent_dim = None

    def _optimizer(self, learning_rate: float):
        import keras

        c = self.config
        if c["inverse_time_decay"]:
            learning_rate = keras.optimizers.schedules.InverseTimeDecay(
                learning_rate, decay_steps=1, decay_rate=c["inverse_time_decay"])
        return keras.optimizers.RMSprop(learning_rate=learning_rate, rho=c["rho"],
                                        epsilon=c["epsilon"], clipvalue=c["clipvalue"])

    def setup(self, generator, discriminator, latent_dim: int) -> None:
        import keras

        self._generator, self._discriminator = generator, discriminator
        self._latent_dim = latent_dim
        self._loss = keras.losses.BinaryCrossentropy()
        self._optimizers = {"discriminator": self._optimizer(self.config["d_learning_rate"]),
                            "generator": self._optimizer(self.config["g_learning_rate"])}
        # Build the slots now, so checkpoints can be restored before the first step.
        self._optimizers["discriminator"].build(discriminator.trainable_variables)
        self._optimizers["generator"].build(generator.trainable_variables)
        self._compiled_updates = {
            "discriminator": _compiled_update(self._optimizers["discriminator"],
                                              discriminator.trainable_variables),
            "generator": _compiled_update(self._optimizers["generator"],
                                          generator.trainable_variables)}

    def _apply(self, role: str, grads, variables) -> None:
        if self.compile_updates:
            self._compiled_updates[role](grads)
        else:
            self._optimizers[role].apply(grads, variables)

    @property
    def optimizers(self):
        return self._optimizers

    def draw_inputs(self, seed, batch_size: int):
        import tensorflow as tf

        seeds = tf.random.experimental.stateless_split(seed, 3)
        return {
            "d_latents": tf.random.stateless_normal((batch_size, self._latent_dim), seeds[0]),
            "label_noise": tf.random.stateless_uniform((2 * batch_size, 1), seeds[1]),
            "g_latents": tf.random.stateless_normal((batch_size, self._latent_dim), seeds[2]),
        }

    def train_step(self, real_images, inputs) -> StepOutputs:
        import tensorflow as tf

        c = self.config
        gen, disc = self._generator, self._discriminator
        n = tf.shape(real_images)[0]

        # Discriminator: the article's generator.predict + discriminator.train_on_batch.
        fake = gen(inputs["d_latents"], training=False)
        images = tf.concat([fake, tf.cast(real_images, fake.dtype)], axis=0)
        labels = tf.concat([tf.fill([n, 1], c["fake_label"]), tf.fill([n, 1], c["real_label"])], 0)
        labels += c["label_noise"] * inputs["label_noise"]
        with tf.GradientTape() as tape:
            scores = disc(images, training=True)
            d_loss = self._loss(labels, scores)
        d_grads = tape.gradient(d_loss, disc.trainable_variables)
        self._apply("discriminator", d_grads, disc.trainable_variables)

        # Generator: the article's gan.train_on_batch with the discriminator frozen. Only the
        # generator's variables are differentiated and updated.
        targets = tf.fill([n, 1], c["real_label"])
        with tf.GradientTape() as tape:
            g_loss = self._loss(targets, disc(gen(inputs["g_latents"], training=True),
                                              training=True))
        g_grads = tape.gradient(g_loss, gen.trainable_variables)
        self._apply("generator", g_grads, gen.trainable_variables)

        metrics = {
            "d_loss": d_loss,
            "g_loss": g_loss,
            "d_on_fake": tf.reduce_mean(scores[:n]),
            "d_on_real": tf.reduce_mean(scores[n:]),
            "d_grad_norm": tf.linalg.global_norm(d_grads),
            "g_grad_norm": tf.linalg.global_norm(g_grads),
        }
        return StepOutputs(metrics, fake)


def _compiled_update(optimizer, variables):
    """``optimizer.apply(grads, variables)`` compiled with XLA, as a function of ``grads``."""
    import tensorflow as tf

    # Keras variables cannot be arguments of a tf.function, so it closes over them.
    return tf.function(lambda grads: optimizer.apply(grads, variables), jit_compile=True)
