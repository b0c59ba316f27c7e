"""Adversarial losses: pure functions of the discriminator's scores.

Each loss takes float32 scores ``(batch, 1)`` and returns a float32 scalar. ``expects`` tells
recipe validation which output the discriminator must have. Every formula, sign convention
and reduction, and how they compare with TF-GAN, StudioGAN and Mimicry, is in docs/losses.md.
"""

from __future__ import annotations

from gankit import Param
from gankit.errors import RecipeError
from gankit.interfaces import Loss
from gankit.util.graph import plain_python


def _label_smoothing(target: str) -> Param:
    return Param(float, 0.0, min=0.0, max=1.0,
                 doc=f"one-sided label smoothing s: the discriminator's target for real images "
                     f"moves towards 1/2, to {target} (TF-GAN's and Keras' label_smoothing)")


@plain_python
def _float32(scores):
    import tensorflow as tf

    return tf.cast(scores, tf.float32)


@plain_python
def _batch_size(scores):
    """The static batch size if it is known, else the dynamic one."""
    import tensorflow as tf

    n = scores.shape[0]
    return n if n is not None else tf.shape(scores)[0]


def _smoothed(label: float, smoothing: float) -> float:
    """``label`` moved towards 1/2 by ``smoothing`` (exactly ``label`` when it is 0)."""
    return label * (1.0 - smoothing) + 0.5 * smoothing if smoothing else label


class BCELoss(Loss):
    """Binary cross-entropy of label targets, one mean over generated and real scores together.

    ``D = mean over the n_f + n_r scores of BCE(target, score)``, with targets ``fake_label``
    for generated and ``real_label`` for real images (plus ``label_noise * u``, ``u ~ U[0, 1)``
    per image and step, and one-sided ``label_smoothing`` of the real ones);
    ``G = mean over generated scores of BCE(real_label, score)``. With the default labels high
    scores mean real; with ``real_label: 0`` and ``fake_label: 1`` (Chollet's frog DCGAN:
    generated and real images together, in that order, label noise 0.05) high scores mean
    generated. The cross-entropy is Keras' own: on probabilities it clips them to
    ``[1e-7, 1 - 1e-7]`` as ``keras.losses.BinaryCrossentropy`` does. At equal batch sizes
    ``D`` is half of ``non_saturating``'s (and TF-GAN's) sum of two means.

    A target above 1 (a label of 1 plus label noise, as in the frog recipe) makes the
    cross-entropy fall without end as the score grows: on probabilities only the clipping
    bounds it, on logits nothing does, so with ``from_logits: true`` every target must stay
    inside [0, 1] and recipe validation refuses one that does not.
    """

    name = "bce"
    params = {
        "real_label": Param(float, 1.0, min=0.0, max=1.0,
                            doc="target for real images (and the generator's)"),
        "fake_label": Param(float, 0.0, min=0.0, max=1.0,
                            doc="discriminator target for generated images"),
        "label_noise": Param(float, 0.0, min=0.0,
                             doc="add uniform noise in [0, label_noise) to discriminator "
                                 "targets (on logits the targets must stay <= 1)"),
        "label_smoothing": _label_smoothing("real_label * (1 - s) + s / 2"),
        "from_logits": Param(bool, False,
                             doc="scores are logits (linear output) instead of probabilities"),
    }

    def __init__(self, **config) -> None:
        super().__init__(**config)
        c = self.config
        if c["from_logits"]:
            for key, target in (("real_label", _smoothed(c["real_label"], c["label_smoothing"])),
                                ("fake_label", c["fake_label"])):
                if target + c["label_noise"] > 1.0:
                    raise RecipeError(
                        f"with from_logits: true the targets must stay inside [0, 1], but "
                        f"{key} {target:g} plus label_noise {c['label_noise']:g} reaches "
                        f"{target + c['label_noise']:g}, where the loss on logits has no lower "
                        f"bound; lower label_noise or {key}"
                        + (" (label_smoothing lowers it too)" if key == "real_label" else ""),
                        path=f"{type(self).__name__}.label_noise")

    @property
    def expects(self) -> str:
        return "logit" if self.config["from_logits"] else "probability"

    @plain_python
    def _bce(self, targets, scores):
        import keras
        import tensorflow as tf

        return tf.reduce_mean(keras.losses.binary_crossentropy(
            targets, scores, from_logits=self.config["from_logits"]))

    @plain_python
    def discriminator_loss(self, real_scores, fake_scores, ctx):
        import tensorflow as tf

        c = self.config
        real, fake = _float32(real_scores), _float32(fake_scores)
        fake_targets = tf.fill(tf.shape(fake), c["fake_label"])
        real_targets = tf.fill(tf.shape(real), _smoothed(c["real_label"], c["label_smoothing"]))
        if c["label_noise"] > 0:
            n_fake = _batch_size(fake)
            noise = ctx.uniform("label_noise", (n_fake + _batch_size(real), 1))
            fake_targets += c["label_noise"] * noise[:n_fake]
            real_targets += c["label_noise"] * noise[n_fake:]
        return self._bce(tf.concat([fake_targets, real_targets], 0), tf.concat([fake, real], 0))

    @plain_python
    def generator_loss(self, fake_scores, ctx, real_scores=None):
        import tensorflow as tf

        fake = _float32(fake_scores)
        return self._bce(tf.fill(tf.shape(fake), self.config["real_label"]), fake)


class NonSaturatingLoss(Loss):
    """The non-saturating GAN loss on logits (Goodfellow et al. 2014), as in StyleGAN.

    ``D = mean(softplus(-r)) + mean(softplus(f))`` (the cross-entropy of real images labelled
    1 plus that of generated ones labelled 0, each averaged over its own batch) and
    ``G = mean(softplus(-f))``, for logits ``r`` of real and ``f`` of generated images: high
    scores mean real. ``label_smoothing: s`` gives the real images the target ``1 - s / 2``:
    ``(1 - s/2) softplus(-r) + (s/2) softplus(r)``, as TF-GAN's ``label_smoothing``.
    """

    name = "non_saturating"
    params = {"label_smoothing": _label_smoothing("1 - s / 2")}

    @plain_python
    def discriminator_loss(self, real_scores, fake_scores, ctx):
        import tensorflow as tf

        real = _float32(real_scores)
        # softplus(-x) = -log(sigmoid(x)): the cross-entropy of "real", stable for any logit.
        on_real = tf.nn.softplus(-real)
        s = self.config["label_smoothing"]
        if s:
            on_real = (1.0 - 0.5 * s) * on_real + 0.5 * s * tf.nn.softplus(real)
        return tf.reduce_mean(on_real) + tf.reduce_mean(tf.nn.softplus(_float32(fake_scores)))

    @plain_python
    def generator_loss(self, fake_scores, ctx, real_scores=None):
        import tensorflow as tf

        return tf.reduce_mean(tf.nn.softplus(-_float32(fake_scores)))


class HingeLoss(Loss):
    """The hinge loss of SNGAN and BigGAN on a linear critic, with margins at +1 and -1.

    ``D = mean(relu(1 - r)) + mean(relu(1 + f))`` and ``G = -mean(f)``, for critic values
    ``r`` of real and ``f`` of generated images: high scores mean real. Inside the margins
    (``r < 1``, ``f > -1``) ``D`` is ``2 + mean(f) - mean(r)``, so a constant shift of every
    score leaves it unchanged there.
    """

    name = "hinge"

    @plain_python
    def discriminator_loss(self, real_scores, fake_scores, ctx):
        import tensorflow as tf

        return (tf.reduce_mean(tf.nn.relu(1.0 - _float32(real_scores)))
                + tf.reduce_mean(tf.nn.relu(1.0 + _float32(fake_scores))))

    @plain_python
    def generator_loss(self, fake_scores, ctx, real_scores=None):
        import tensorflow as tf

        return -tf.reduce_mean(_float32(fake_scores))


class WassersteinLoss(Loss):
    """The Wasserstein critic loss (WGAN); pair it with a gradient penalty or clipping.

    ``D = mean(f) - mean(r)`` and ``G = -mean(f)``, for critic values ``r`` of real and ``f``
    of generated images: high scores mean real. ``D`` has no lower bound by itself (the
    penalty or clipping bounds the critic) and is invariant to a constant shift of every
    score, so the bias of a critic's last layer gets no gradient.
    """

    name = "wasserstein"

    @plain_python
    def discriminator_loss(self, real_scores, fake_scores, ctx):
        import tensorflow as tf

        return tf.reduce_mean(_float32(fake_scores)) - tf.reduce_mean(_float32(real_scores))

    @plain_python
    def generator_loss(self, fake_scores, ctx, real_scores=None):
        import tensorflow as tf

        return -tf.reduce_mean(_float32(fake_scores))


class LeastSquaresLoss(Loss):
    """The least-squares loss of LSGAN (Mao et al. 2017) on a linear output.

    ``D = 0.5 mean((r - a)^2) + 0.5 mean((f - b)^2)`` and ``G = 0.5 mean((f - c)^2)``, for
    outputs ``r`` of real and ``f`` of generated images, ``a = real_target``,
    ``b = fake_target``, ``c = generator_target``; the defaults (1, 0, 1) are TF-GAN's and
    StudioGAN's, the paper's other choice is (1, -1, 0).
    """

    name = "least_squares"
    params = {
        "real_target": Param(float, 1.0, doc="discriminator target for real images (a)"),
        "fake_target": Param(float, 0.0, doc="discriminator target for generated images (b)"),
        "generator_target": Param(float, 1.0,
                                  doc="the value the generator wants its images scored (c)"),
    }

    @plain_python
    def discriminator_loss(self, real_scores, fake_scores, ctx):
        import tensorflow as tf

        c = self.config
        return (0.5 * tf.reduce_mean(tf.square(_float32(real_scores) - c["real_target"]))
                + 0.5 * tf.reduce_mean(tf.square(_float32(fake_scores) - c["fake_target"])))

    @plain_python
    def generator_loss(self, fake_scores, ctx, real_scores=None):
        import tensorflow as tf

        return 0.5 * tf.reduce_mean(
            tf.square(_float32(fake_scores) - self.config["generator_target"]))
