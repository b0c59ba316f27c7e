"""The adversarial losses against values computed by hand, on fixed scores."""

import numpy as np
import pytest

from gankit.errors import RecipeError
from gankit.interfaces.context import step_context
from gankit_training.losses import (
    BCELoss,
    HingeLoss,
    LeastSquaresLoss,
    NonSaturatingLoss,
    WassersteinLoss,
)

REAL = np.array([[0.2], [0.7]], np.float32)
FAKE = np.array([[0.6], [0.1], [0.9]], np.float32)  # batch sizes may differ


def ctx(step=3, seed=0):
    return step_context(seed, step).child("loss")


def softplus(x):
    return np.log1p(np.exp(x))


def bce(targets, p):
    return np.mean(-(targets * np.log(p) + (1 - targets) * np.log(1 - p)))


def losses(loss, real=REAL, fake=FAKE, context=None):
    import tensorflow as tf

    context = context or ctx()
    d = loss.discriminator_loss(tf.constant(real), tf.constant(fake), context)
    g = loss.generator_loss(tf.constant(fake), context)
    for value in (d, g):
        assert value.shape == () and value.dtype == tf.float32
    return float(d), float(g)


def test_bce_without_noise_is_the_cross_entropy_of_the_labels():
    d, g = losses(BCELoss())
    assert d == pytest.approx(bce(np.r_[0, 0, 0, 1, 1], np.r_[FAKE.ravel(), REAL.ravel()]),
                              rel=1e-5)
    assert g == pytest.approx(bce(np.ones(3), FAKE.ravel()), rel=1e-5)


def test_bce_with_label_noise_adds_the_contexts_uniform_noise_fake_first():
    loss = BCELoss(real_label=0.0, fake_label=1.0, label_noise=0.05)
    context = ctx(step=7)
    noise = context.uniform("label_noise", (5, 1)).numpy().ravel()
    targets = np.r_[1.0 + 0.05 * noise[:3], 0.0 + 0.05 * noise[3:]]
    d, g = losses(loss, context=context)
    assert d == pytest.approx(bce(targets, np.r_[FAKE.ravel(), REAL.ravel()]), rel=1e-5)
    assert g == pytest.approx(bce(np.zeros(3), FAKE.ravel()), rel=1e-5)  # no noise for G
    assert losses(loss, context=ctx(step=8))[0] != d  # each step has its own noise
    assert losses(loss, context=ctx(step=7))[0] == d


def test_bce_matches_keras_binary_crossentropy_on_the_articles_labels():
    """The frog DCGAN's discriminator loss: Keras' BinaryCrossentropy on concat([fake, real])
    with labels fake=1, real=0 plus 0.05 * uniform noise."""
    import keras

    context = ctx(step=11)
    n = 2
    fake, real = FAKE[:n], REAL
    labels = np.r_[np.ones((n, 1)), np.zeros((n, 1))].astype(np.float32)
    labels += 0.05 * context.uniform("label_noise", (2 * n, 1)).numpy()
    expected = float(keras.losses.BinaryCrossentropy()(labels, np.r_[fake, real]))
    loss = BCELoss(real_label=0.0, fake_label=1.0, label_noise=0.05)
    assert losses(loss, real=real, fake=fake, context=context)[0] == pytest.approx(expected,
                                                                                 rel=1e-6)


def test_bce_from_logits_expects_logits_and_applies_the_sigmoid():
    assert BCELoss().expects == "probability"
    loss = BCELoss(from_logits=True)
    assert loss.expects == "logit"
    logits_real, logits_fake = np.array([[1.5], [-0.5]], np.float32), np.array([[0.3]], np.float32)
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    d, g = losses(loss, real=logits_real, fake=logits_fake)
    assert d == pytest.approx(bce(np.r_[0, 1, 1], sigmoid(np.r_[0.3, 1.5, -0.5])), rel=1e-5)
    assert g == pytest.approx(bce(np.ones(1), sigmoid(np.r_[0.3])), rel=1e-5)


def test_bce_stays_finite_on_saturated_probabilities():
    d, g = losses(BCELoss(), real=np.array([[0.0], [1.0]], np.float32),
                  fake=np.array([[1.0]], np.float32))
    assert np.isfinite(d) and np.isfinite(g)


def test_non_saturating():
    d, g = losses(NonSaturatingLoss())
    assert d == pytest.approx(softplus(-REAL).mean() + softplus(FAKE).mean(), rel=1e-5)
    assert g == pytest.approx(softplus(-FAKE).mean(), rel=1e-5)
    assert NonSaturatingLoss().expects == "logit"


def test_hinge():
    d, g = losses(HingeLoss())
    assert d == pytest.approx(np.maximum(0, 1 - REAL).mean() + np.maximum(0, 1 + FAKE).mean(),
                              rel=1e-6)
    assert g == pytest.approx(-FAKE.mean(), rel=1e-6)
    # The hinge is flat beyond the margin.
    assert losses(HingeLoss(), real=np.array([[3.0]], np.float32),
                  fake=np.array([[-2.0]], np.float32))[0] == 0.0


def test_wasserstein():
    d, g = losses(WassersteinLoss())
    assert d == pytest.approx(FAKE.mean() - REAL.mean(), rel=1e-5)
    assert g == pytest.approx(-FAKE.mean(), rel=1e-6)


@pytest.mark.parametrize("a, b, c", [(1.0, 0.0, 1.0), (1.0, -1.0, 0.0)])
def test_least_squares(a, b, c):
    loss = LeastSquaresLoss(real_target=a, fake_target=b, generator_target=c)
    d, g = losses(loss)
    assert d == pytest.approx(0.5 * ((REAL - a) ** 2).mean() + 0.5 * ((FAKE - b) ** 2).mean(),
                              rel=1e-5)
    assert g == pytest.approx(0.5 * ((FAKE - c) ** 2).mean(), rel=1e-5)
    assert loss.expects == "logit"


@pytest.mark.parametrize("loss", [BCELoss(), NonSaturatingLoss(), HingeLoss(), WassersteinLoss(),
                                  LeastSquaresLoss()], ids=lambda loss: loss.name)
def test_scores_of_another_dtype_are_taken_in_float32(loss):
    import tensorflow as tf

    real, fake = tf.constant(REAL, tf.float16), tf.constant(FAKE, tf.float16)
    d = loss.discriminator_loss(real, fake, ctx())
    g = loss.generator_loss(fake, ctx())
    assert d.dtype == tf.float32 and g.dtype == tf.float32


def test_the_generator_loss_pushes_generated_scores_up():
    import tensorflow as tf

    for loss in (BCELoss(), NonSaturatingLoss(), HingeLoss(), WassersteinLoss(),
                 LeastSquaresLoss()):
        fake = tf.constant(FAKE)
        with tf.GradientTape() as tape:
            tape.watch(fake)
            g = loss.generator_loss(fake, ctx())
        assert np.all(tape.gradient(g, fake).numpy() < 0), loss.name


def test_bce_params_are_checked():
    with pytest.raises(RecipeError, match="label_noise"):
        BCELoss(label_noise=-0.1)
    with pytest.raises(RecipeError, match="true or false"):
        BCELoss(from_logits="yes")


def test_bce_with_noise_works_under_tf_function_with_an_unknown_batch_size():
    import tensorflow as tf

    loss = BCELoss(label_noise=0.1)
    context = ctx(step=2)
    compiled = tf.function(lambda r, f: loss.discriminator_loss(r, f, context),
                           input_signature=[tf.TensorSpec((None, 1))] * 2)
    eager = loss.discriminator_loss(tf.constant(REAL), tf.constant(FAKE), context)
    assert float(compiled(REAL, FAKE)) == pytest.approx(float(eager), rel=1e-6)


BUILTINS = [BCELoss(), BCELoss(from_logits=True, label_smoothing=0.1), NonSaturatingLoss(),
            HingeLoss(), WassersteinLoss(), LeastSquaresLoss()]


@pytest.mark.parametrize("loss", BUILTINS, ids=lambda loss: loss.name)
def test_a_loop_that_follows_the_interface_may_pass_real_scores_to_every_builtin(loss):
    """generator_loss(fake_scores, ctx, real_scores=None), as Loss declares it."""
    import tensorflow as tf

    fake, real = tf.constant(FAKE), tf.constant(REAL)
    given = loss.generator_loss(fake, ctx(), real_scores=real)
    assert float(given) == float(loss.generator_loss(fake, ctx(), real_scores=None))
    assert float(given) == float(loss.generator_loss(fake, ctx()))
    assert not loss.generator_uses_real


def test_bce_label_smoothing_moves_only_the_real_targets_towards_one_half():
    # TF-GAN's and Keras' label_smoothing: real targets 1 * (1 - 0.2) + 0.2 / 2 = 0.9.
    d, g = losses(BCELoss(label_smoothing=0.2))
    targets = np.r_[0.0, 0.0, 0.0, 0.9, 0.9]
    assert d == pytest.approx(bce(targets, np.r_[FAKE.ravel(), REAL.ravel()]), rel=1e-5)
    assert g == pytest.approx(bce(np.ones(3), FAKE.ravel()), rel=1e-5)  # the generator: none
    # With the frog's labels the real target 0 moves up, to 0.1.
    d, _ = losses(BCELoss(real_label=0.0, fake_label=1.0, label_smoothing=0.2))
    assert d == pytest.approx(bce(np.r_[1.0, 1.0, 1.0, 0.1, 0.1],
                                  np.r_[FAKE.ravel(), REAL.ravel()]), rel=1e-5)


def test_non_saturating_label_smoothing_is_tf_gans():
    # TF-GAN's modified_discriminator_loss with label_smoothing=0.25: real targets 0.875.
    d, g = losses(NonSaturatingLoss(label_smoothing=0.25))
    on_real = 0.875 * softplus(-REAL) + 0.125 * softplus(REAL)
    assert d == pytest.approx(on_real.mean() + softplus(FAKE).mean(), rel=1e-5)
    assert g == pytest.approx(softplus(-FAKE).mean(), rel=1e-5)
    # A hand-computed value: real logit 0.2 with target 0.875, generated logit 0.6.
    one, _ = losses(NonSaturatingLoss(label_smoothing=0.25), real=REAL[:1], fake=FAKE[:1])
    assert one == pytest.approx(0.875 * 0.598139 + 0.125 * 0.798139 + 1.037488, abs=1e-5)


def test_label_smoothing_is_checked():
    for loss in (BCELoss, NonSaturatingLoss):
        with pytest.raises(RecipeError, match="label_smoothing: expected a number in "
                                              r"\[0.0, 1.0\], got 1.5"):
            loss(label_smoothing=1.5)


def test_bce_on_logits_refuses_targets_above_one_where_its_loss_has_no_lower_bound():
    with pytest.raises(RecipeError) as caught:
        BCELoss(from_logits=True, label_noise=0.1)
    assert caught.value.path == "BCELoss.label_noise"
    assert str(caught.value) == (
        "BCELoss.label_noise: with from_logits: true the targets must stay inside [0, 1], but "
        "real_label 1 plus label_noise 0.1 reaches 1.1, where the loss on logits has no lower "
        "bound; lower label_noise or real_label (label_smoothing lowers it too)")
    with pytest.raises(RecipeError, match="fake_label 1 plus label_noise 0.05 reaches 1.05"):
        BCELoss(real_label=0.0, fake_label=1.0, label_noise=0.05, from_logits=True)
    with pytest.raises(RecipeError, match=r"real_label: expected a number in \[0.0, 1.0\]"):
        BCELoss(real_label=1.2)
    # Inside [0, 1] it is accepted, and its loss is bounded below: with real targets up to
    # 0.9 + 0.1 it grows again for very confident real logits, where a target above 1 made it
    # fall without end.
    loss = BCELoss(from_logits=True, label_smoothing=0.2, label_noise=0.1)
    far = [losses(loss, real=np.array([[x]], np.float32), fake=np.array([[-5.0]], np.float32))[0]
           for x in (10.0, 100.0, 1000.0)]
    assert min(far) > 0 and far[0] < far[1] < far[2]


def test_bce_on_probabilities_keeps_the_frogs_targets_above_one():
    """The frog article labels generated images 1 + 0.05 u: allowed on probabilities, where
    Keras clips them to [1e-7, 1 - 1e-7], which bounds the loss."""
    loss = BCELoss(real_label=0.0, fake_label=1.0, label_noise=0.05)
    d, _ = losses(loss, real=np.array([[0.0]], np.float32), fake=np.array([[1.0]], np.float32))
    assert np.isfinite(d) and d >= 0.05 * np.log(1e-7)  # the bound: -0.806


def test_bce_takes_one_mean_over_both_batches_half_of_non_saturating():
    """docs/losses.md: at equal batch sizes, bce on logits is half of non_saturating's D."""
    real, fake = REAL, FAKE[:2]
    d_bce, _ = losses(BCELoss(from_logits=True), real=real, fake=fake)
    d_ns, _ = losses(NonSaturatingLoss(), real=real, fake=fake)
    assert 2 * d_bce == pytest.approx(d_ns, rel=1e-5)
