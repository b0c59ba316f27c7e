"""The guide's augmenter with state, and the callback that adapts it."""

from gankit import Augmenter, Callback, Param


class AdaptiveNoise(Augmenter):
    """Instance noise (Sønderby et al. 2016) whose strength is training state."""

    name = "adaptive_noise"
    params = {"stddev": Param(float, 0.1, min=0.0, doc="the noise's standard deviation at step 0")}

    def state(self):
        import tensorflow as tf

        if not hasattr(self, "_stddev"):  # created once, so the checkpoint holds this variable
            self._stddev = tf.Variable(self.config["stddev"], trainable=False, name="stddev")
        return {"stddev": self._stddev}

    def augment(self, images, ctx):
        import tensorflow as tf

        noise = ctx.normal("noise", tf.shape(images))
        return images + tf.cast(self.state()["stddev"] * noise, images.dtype)


class AdaptNoise(Callback):
    """Raise the augmenter's noise while the discriminator is too sure of real images."""

    name = "adapt_noise"
    params = {"target": Param(float, 0.6, doc="the d_on_real above which the noise grows"),
              "step_size": Param(float, 0.005, min=0.0, doc="the change of stddev per step")}

    def on_step_end(self, step, logs):
        stddev = self.run.session.augmenter.state().get("stddev")
        if stddev is not None and "d_on_real" in logs:
            grow = logs["d_on_real"] > self.config["target"]
            change = self.config["step_size"] if grow else -self.config["step_size"]
            stddev.assign(max(0.0, float(stddev.numpy()) + change))
