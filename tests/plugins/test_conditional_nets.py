"""Class-conditional forms of the nets plugin's architectures: a class embedding in the
DCGAN generator, conditional batch norm in the ResNet generator and the projection
discriminator for both (Miyato & Koyama 2018)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from gankit.training.precision import dtype_policy
from gankit_nets.dcgan import DCGANDiscriminator, DCGANGenerator
from gankit_nets.resnet import ResNetDiscriminator, ResNetGenerator

CLASSES = 3


def latents(n, dim=4, seed=0):
    return np.random.default_rng(seed).standard_normal((n, dim)).astype("float32")


def images(n, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 32, 32, 3)).astype("float32")


def labels(*values):
    return np.asarray(values, dtype=np.int32)


def build(component, seed=0):
    keras.utils.set_random_seed(seed)
    return component.build()


def test_the_label_is_a_second_int32_input_named_label():
    for component in (DCGANGenerator(latent_dim=4, base_filters=2, num_classes=CLASSES),
                      ResNetDiscriminator(filters=4, num_classes=CLASSES)):
        model = build(component)
        assert [t.name for t in model.inputs][1] == "label"
        assert tuple(model.inputs[1].shape) == (None,) and model.inputs[1].dtype == "int32"
        assert component.num_classes == CLASSES


def test_the_dcgan_generator_concatenates_a_class_embedding_to_the_latent():
    model = build(DCGANGenerator(latent_dim=4, base_filters=2, num_classes=CLASSES))
    embedding = model.get_layer("class_embedding").kernel
    assert tuple(embedding.shape) == (CLASSES, 4)
    assert model.get_layer("latent_and_class").output.shape == (None, 8)
    z = np.repeat(latents(1), 3, axis=0)
    out = np.asarray(model([z, labels(0, 1, 2)], training=False))
    assert not np.array_equal(out[0], out[1]) and not np.array_equal(out[1], out[2])
    # The embedding is the only way the label enters: equal rows, equal images.
    embedding.assign(np.tile(np.asarray(embedding)[:1], (CLASSES, 1)))
    same = np.asarray(model([z, labels(0, 1, 2)], training=False))
    np.testing.assert_array_equal(same[0], same[1])
    np.testing.assert_array_equal(same[0], same[2])


def test_the_resnet_generator_has_a_conditional_batch_norm_before_every_relu():
    model = build(ResNetGenerator(latent_dim=4, filters=4, num_classes=CLASSES))
    names = [layer.name for layer in model.layers]
    norms = [n[:-len("_bn")] for n in names if n.endswith("_bn")]
    assert norms == ["block1_1", "block1_2", "block2_1", "block2_2", "block3_1", "block3_2",
                     "out"]
    for name in norms:
        bn = model.get_layer(f"{name}_bn")
        assert not bn.center and not bn.scale  # the per-class gain and bias replace them
        assert bn.momentum == pytest.approx(0.9) and bn.epsilon == pytest.approx(1e-5)
        gain, bias = model.get_layer(f"{name}_gain"), model.get_layer(f"{name}_bias")
        np.testing.assert_array_equal(np.asarray(gain.kernel), np.ones((CLASSES, 4)))
        np.testing.assert_array_equal(np.asarray(bias.kernel), np.zeros((CLASSES, 4)))
    # Every class starts alike (gain 1, bias 0) ...
    z = np.repeat(latents(1), 3, axis=0)
    first = np.asarray(model([z, labels(0, 1, 2)], training=False))
    np.testing.assert_array_equal(first[0], first[1])
    # ... and the gain of class 1 changes the images of class 1 only.
    gain = model.get_layer("block2_1_gain").kernel
    gain.assign(np.asarray(gain) * np.array([[1.0], [2.0], [1.0]], np.float32))
    second = np.asarray(model([z, labels(0, 1, 2)], training=False))
    assert not np.allclose(second[1], first[1])
    np.testing.assert_array_equal(second[0], first[0])
    np.testing.assert_array_equal(second[2], first[2])


def test_conditional_batch_norm_is_batch_norm_times_the_class_gain_plus_its_bias():
    model = build(ResNetGenerator(latent_dim=4, filters=4, num_classes=CLASSES), seed=2)
    rng = np.random.default_rng(5)
    for name in ("out_gain", "out_bias"):
        kernel = model.get_layer(name).kernel
        kernel.assign(rng.normal(size=kernel.shape).astype("float32"))
    y = labels(2, 0, 2, 1)
    inner = keras.Model(model.inputs, [model.get_layer("block3_add").output,
                                       model.get_layer("out_shift").output])
    x, got = (np.asarray(t) for t in inner([latents(4), y], training=True))
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    gain = np.asarray(model.get_layer("out_gain").kernel)[y][:, None, None, :]
    bias = np.asarray(model.get_layer("out_bias").kernel)[y][:, None, None, :]
    expected = (x - mean) / np.sqrt(var + 1e-5) * gain + bias
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("component, features", [
    (ResNetDiscriminator(filters=4, spectral_norm=False, num_classes=CLASSES), "sum"),
    (DCGANDiscriminator(base_filters=2, num_classes=CLASSES), "flatten"),
], ids=["resnet", "dcgan"])
def test_the_projection_discriminator_adds_the_class_embedding_dot_the_features(component,
                                                                                 features):
    model = build(component, seed=1)
    x, y = images(4), labels(0, 2, 1, 2)
    scores = np.asarray(model([x, y], training=False))
    assert scores.shape == (4, 1)
    h = np.asarray(keras.Model(model.inputs, model.get_layer(features).output)(
        [x, y], training=False), dtype=np.float64)
    kernel, bias = model.get_layer("score").get_weights()
    embedding = np.asarray(model.get_layer("class_embedding").kernel, dtype=np.float64)
    assert embedding.shape == (CLASSES, h.shape[1])
    expected = h @ kernel + bias + np.sum(embedding[y] * h, axis=1, keepdims=True)
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)
    # The same images with other labels get other scores.
    assert not np.allclose(np.asarray(model([x, labels(1, 1, 1, 1)], training=False)), scores)


def test_the_gradient_reaches_the_row_of_each_class_in_the_batch():
    model = build(ResNetDiscriminator(filters=4, spectral_norm=False, num_classes=4), seed=3)
    x, y = tf.constant(images(3)), tf.constant(labels(1, 3, 1))
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(model([x, y], training=True))
    embedding = model.get_layer("class_embedding").kernel
    grad = np.asarray(tape.gradient(total, embedding))
    h = np.asarray(keras.Model(model.inputs, model.get_layer("sum").output)([x, y]))
    # d(sum of scores)/d embed[c] = the sum of the features of the images of class c.
    np.testing.assert_allclose(grad[1], h[0] + h[2], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(grad[3], h[1], rtol=1e-4, atol=1e-4)
    assert not grad[0].any() and not grad[2].any()


def test_spectral_norm_wraps_the_class_embedding_of_a_spectrally_normalized_discriminator():
    model = build(ResNetDiscriminator(filters=4, num_classes=CLASSES))
    wrapper = model.get_layer("class_embedding_sn")
    assert isinstance(wrapper, keras.layers.SpectralNormalization)
    model([images(2), labels(0, 1)], training=True)  # one power iteration normalizes it
    sigma = np.linalg.svd(np.asarray(wrapper.layer.kernel), compute_uv=False)[0]
    assert sigma == pytest.approx(1.0, rel=0.2)
    unwrapped = build(DCGANDiscriminator(base_filters=2, num_classes=CLASSES))
    assert isinstance(unwrapped.get_layer("class_embedding"), keras.layers.Dense)


@pytest.mark.parametrize("component", [
    ResNetGenerator(latent_dim=4, filters=4, num_classes=CLASSES),
    ResNetDiscriminator(filters=4, num_classes=CLASSES),
], ids=["generator", "discriminator"])
def test_a_saved_conditional_model_loads_from_standard_layers_only(component, tmp_path):
    model = build(component)
    model([latents(2) if component.kind == "generator" else images(2), labels(0, 2)],
          training=True)  # moves batch-norm statistics and spectral-norm vectors
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, compile=False)
    # Nothing for keras to find in a registry: the file loads in any Python process.
    assert all(type(layer).__module__.startswith("keras.") for layer in loaded.layers)
    x = latents(3) if component.kind == "generator" else images(3)
    for y in (labels(0, 1, 2), labels(2, 2, 2)):
        np.testing.assert_array_equal(np.asarray(loaded([x, y], training=False)),
                                      np.asarray(model([x, y], training=False)))


def test_unconditional_models_are_unchanged():
    """num_classes 0 (the default) builds the same single-input models as before the
    conditional forms existed: the same weights (by path), the same layers."""
    for component in (DCGANGenerator(latent_dim=4, base_filters=2),
                      DCGANDiscriminator(base_filters=2, spectral_norm=True),
                      ResNetGenerator(latent_dim=4, filters=4),
                      ResNetDiscriminator(filters=4)):
        model = build(component)
        again = build(type(component)(**{**component.get_config(), "num_classes": 0}))
        assert len(model.inputs) == 1 and component.num_classes == 0
        names = {layer.name for layer in model.layers}
        assert not names & {"label_one_hot", "class_embedding", "class_embedding_sn",
                            "projection", "score_total", "latent_and_class"}
        assert not any(n.endswith(("_gain", "_bias", "_shift")) for n in names)
        for a, b in zip(model.weights, again.weights, strict=True):
            assert a.path == b.path
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # The SNGAN generator's weight paths, as the reference implementation names them.
    paths = [w.path for w in build(ResNetGenerator(latent_dim=4, filters=4)).weights]
    assert paths[:4] == ["project/kernel", "project/bias", "block1_1_bn/gamma",
                         "block1_1_bn/beta"]
    assert paths[-2:] == ["to_image/kernel", "to_image/bias"]


def test_conditional_models_compute_embeddings_in_the_mixed_precision_dtype():
    with dtype_policy("mixed_bfloat16"):
        generator = ResNetGenerator(latent_dim=4, filters=4, num_classes=CLASSES).build()
        discriminator = DCGANDiscriminator(base_filters=2, spectral_norm=True,
                                           num_classes=CLASSES).build()
    gain = generator.get_layer("block1_1_gain")
    assert gain.compute_dtype == "bfloat16" and gain.kernel.dtype == "float32"
    out = generator([latents(2), labels(0, 2)], training=True)
    assert out.dtype == "float32" and np.isfinite(np.asarray(out)).all()
    gains = keras.Model(generator.inputs, gain.output)([latents(2), labels(0, 2)])
    assert gains.dtype == "bfloat16"
    scores = discriminator([images(2), labels(0, 2)], training=True)
    assert scores.shape == (2, 1) and np.isfinite(np.asarray(tf.cast(scores, tf.float32))).all()


@pytest.mark.parametrize("component", [
    DCGANGenerator(latent_dim=4, base_filters=2, num_classes=CLASSES, skip_excitation=True),
    DCGANDiscriminator(base_filters=2, num_classes=CLASSES, multiscale=True),
], ids=["generator_sle", "discriminator_multiscale"])
def test_the_new_dcgan_options_combine_with_classes_and_bfloat16(component):
    from gankit.testing import MODEL_CHECKS, check_discriminator, check_generator

    check = check_generator if component.kind == "generator" else check_discriminator
    assert {*MODEL_CHECKS, "label_input"} <= set(check(component).passed)
    x = latents(2) if component.kind == "generator" else images(2)
    with dtype_policy("mixed_bfloat16"):
        model = build(component)
        out = np.asarray(model([x, labels(0, 2)], training=False), dtype=np.float32)
    assert np.isfinite(out).all() and out.shape[0] == 2
