"""Adversarial losses: pure functions of the discriminator's scores.

Each loss takes float32 scores ``(batch, 1)`` and returns a float32 scalar, the mean over
the batch. ``expects`` tells recipe validation which output the discriminator must have.
"""

from __future__ import annotations

from gankit import Param
from gankit.interfaces import Loss


def _float32(scores):
    import tensorflow as tf

    return tf.cast(scores, tf.float32)


def _batch_size(scores):
    """The static batch size if it is known, else the dynamic one."""
    import tensorflow as tf

    n = scores.shape[0]
    return n if n is not None else tf.shape(scores)[0]


class BCELoss(Loss):
    """Binary cross-entropy on probabilities (or logits), with label values and label noise.

    With ``real_label: 0``, ``fake_label: 1`` and ``label_noise: 0.05`` it is the loss of
    Chollet's frog DCGAN: the discriminator sees generated and real images together (in that
    order), labelled with uniform noise in ``[0, label_noise)`` added, and the generator's
    images are labelled "real". The cross-entropy is Keras' own, so its epsilon clipping is
    that of ``keras.losses.BinaryCrossentropy``.
    """

    name = "bce"
    params = {
        "real_label": Param(float, 1.0, doc="target for real images (and the generator's)"),
        "fake_label": Param(float, 0.0, doc="discriminator target for generated images"),
        "label_noise": Param(float, 0.0, min=0.0,
                             doc="add uniform noise in [0, label_noise) to discriminator targets"),
        "from_logits": Param(bool, False,
                             doc="scores are logits (linear output) instead of probabilities"),
    }

    @property
    def expects(self) -> str:
        return "logit" if self.config["from_logits"] else "probability"

    def _bce(self, targets, scores):
        import keras
        import tensorflow as tf

        return tf.reduce_mean(keras.losses.binary_crossentropy(
            targets, scores, from_logits=self.config["from_logits"]))

    def discriminator_loss(self, real_scores, fake_scores, ctx):
        import tensorflow as tf

        c = self.config
        real, fake = _float32(real_scores), _float32(fake_scores)
        fake_targets = tf.fill(tf.shape(fake), c["fake_label"])
        real_targets = tf.fill(tf.shape(real), c["real_label"])
        if c["label_noise"] > 0:
            n_fake = _batch_size(fake)
            noise = ctx.uniform("label_noise", (n_fake + _batch_size(real), 1))
            fake_targets += c["label_noise"] * noise[:n_fake]
            real_targets += c["label_noise"] * noise[n_fake:]
        return self._bce(tf.concat([fake_targets, real_targets], 0), tf.concat([fake, real], 0))

    def generator_loss(self, fake_scores, ctx):
        import tensorflow as tf

        fake = _float32(fake_scores)
        return self._bce(tf.fill(tf.shape(fake), self.config["real_label"]), fake)


class NonSaturatingLoss(Loss):
    """The non-saturating GAN loss on logits (Goodfellow et al. 2014), as in StyleGAN."""

    name = "non_saturating"

    def discriminator_loss(self, real_scores, fake_scores, ctx):
        import tensorflow as tf

        # softplus(-x) = -log(sigmoid(x)): the cross-entropy of "real", stable for any logit.
        return (tf.reduce_mean(tf.nn.softplus(-_float32(real_scores)))
                + tf.reduce_mean(tf.nn.softplus(_float32(fake_scores))))

    def generator_loss(self, fake_scores, ctx):
        import tensorflow as tf

        return tf.reduce_mean(tf.nn.softplus(-_float32(fake_scores)))


class HingeLoss(Loss):
    """The hinge loss of SNGAN and BigGAN on a linear critic."""

    name = "hinge"

    def discriminator_loss(self, real_scores, fake_scores, ctx):
        import tensorflow as tf

        return (tf.reduce_mean(tf.nn.relu(1.0 - _float32(real_scores)))
                + tf.reduce_mean(tf.nn.relu(1.0 + _float32(fake_scores))))

    def generator_loss(self, fake_scores, ctx):
        import tensorflow as tf

        return -tf.reduce_mean(_float32(fake_scores))


class WassersteinLoss(Loss):
    """The Wasserstein critic loss (WGAN); pair it with a gradient penalty or clipping."""

    name = "wasserstein"

    def discriminator_loss(self, real_scores, fake_scores, ctx):
        import tensorflow as tf

        return tf.reduce_mean(_float32(fake_scores)) - tf.reduce_mean(_float32(real_scores))

    def generator_loss(self, fake_scores, ctx):
        import tensorflow as tf

        return -tf.reduce_mean(_float32(fake_scores))


class LeastSquaresLoss(Loss):
    """The least-squares loss of LSGAN (Mao et al. 2017) on a linear output."""

    name = "least_squares"
    params = {
        "real_target": Param(float, 1.0, doc="discriminator target for real images (a)"),
        "fake_target": Param(float, 0.0, doc="discriminator target for generated images (b)"),
        "generator_target": Param(float, 1.0,
                                  doc="the value the generator wants its images scored (c)"),
    }

    def discriminator_loss(self, real_scores, fake_scores, ctx):
        import tensorflow as tf

        c = self.config
        return (0.5 * tf.reduce_mean(tf.square(_float32(real_scores) - c["real_target"]))
                + 0.5 * tf.reduce_mean(tf.square(_float32(fake_scores) - c["fake_target"])))

    def generator_loss(self, fake_scores, ctx):
        import tensorflow as tf

        return 0.5 * tf.reduce_mean(
            tf.square(_float32(fake_scores) - self.config["generator_target"]))
