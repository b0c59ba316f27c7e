"""The standard architectures of the nets plugin: DCGAN and the SNGAN CIFAR ResNet."""

import subprocess
import sys

import keras
import numpy as np
import pytest

from gankit.errors import RecipeError
from gankit.params import check_params
from gankit.testing import MODEL_CHECKS, check_discriminator, check_generator, check_plugin
from gankit_nets.dcgan import DCGANDiscriminator, DCGANGenerator
from gankit_nets.resnet import ResNetDiscriminator, ResNetGenerator


def tiny_dcgan_g(size=32, **kw):
    return DCGANGenerator(latent_dim=8, height=size, width=size, base_filters=2, **kw)


def tiny_dcgan_d(size=32, **kw):
    return DCGANDiscriminator(height=size, width=size, base_filters=2, **kw)


def tiny_resnet_g(**kw):
    return ResNetGenerator(latent_dim=8, filters=8, **kw)


def tiny_resnet_d(**kw):
    return ResNetDiscriminator(filters=8, **kw)


def latents(n, dim, seed=0):
    return np.random.default_rng(seed).standard_normal((n, dim)).astype("float32")


def images(n, size=32, channels=3, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, channels)).astype("float32")


def spectral_normalized(model):
    """Class names of the layers wrapped in SpectralNormalization, and of bare Conv/Dense."""
    wrapped = [type(layer.layer).__name__ for layer in model.layers
               if isinstance(layer, keras.layers.SpectralNormalization)]
    bare = [type(layer).__name__ for layer in model.layers
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose,
                                  keras.layers.Dense))]
    return sorted(wrapped), sorted(bare)


def count(model, kind):
    return sum(type(layer).__name__ == kind for layer in model.layers)


def test_importing_the_models_does_not_import_tensorflow():
    code = ("import sys, gankit_nets, gankit_nets.dcgan, gankit_nets.resnet; "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_plugin_registers_both_architectures():
    check_plugin("nets", provides={"generator": ["dcgan", "resnet"],
                                   "discriminator": ["dcgan", "resnet"]})


@pytest.mark.parametrize("size, steps", [(32, 3), (64, 4)])
def test_dcgan_shapes_and_stack(size, steps):
    keras.utils.set_random_seed(0)
    gen = tiny_dcgan_g(size, channels=1)
    g = gen.build()
    assert gen.image_shape == (size, size, 1) and gen.latent_dim == 8
    out = np.asarray(g(latents(3, 8), training=False))
    assert out.shape == (3, size, size, 1) and np.abs(out).max() <= 1.0
    # 4x4x(8F), then one stride-2 transposed convolution per doubling, halving the channels.
    assert g.get_layer("to_4x4").output.shape == (None, 4, 4, 16)
    assert [layer.filters for layer in g.layers if isinstance(layer, keras.layers.Conv2DTranspose)
            ] == [16 // 2 ** i for i in range(1, steps)] + [1]
    assert count(g, "BatchNormalization") == steps
    assert g.layers[-1].activation.__name__ == "tanh"

    d = tiny_dcgan_d(size, channels=1).build()
    assert np.asarray(d(out, training=False)).shape == (3, 1)
    assert [layer.filters for layer in d.layers if isinstance(layer, keras.layers.Conv2D)
            ] == [2 * 2 ** i for i in range(steps)]
    assert d.get_layer("flatten").input.shape == (None, 4, 4, 2 * 2 ** (steps - 1))
    assert count(d, "BatchNormalization") == steps - 1  # all but the first convolution
    assert d.get_layer("down1_lrelu").negative_slope == pytest.approx(0.2)


def test_resnet_shapes_and_blocks():
    keras.utils.set_random_seed(0)
    gen = tiny_resnet_g(channels=1)
    g = gen.build()
    out = np.asarray(g(latents(3, 8), training=False))
    assert gen.image_shape == (32, 32, 1) and out.shape == (3, 32, 32, 1)
    assert np.abs(out).max() <= 1.0
    assert count(g, "UpSampling2D") == 6 and count(g, "Add") == 3  # 3 up-blocks with shortcuts
    assert all(layer.interpolation == "nearest" for layer in g.layers
               if isinstance(layer, keras.layers.UpSampling2D))
    assert g.get_layer("block3_add").output.shape == (None, 32, 32, 8)

    disc = tiny_resnet_d(channels=1)
    d = disc.build()
    assert disc.image_shape == (32, 32, 1)
    assert np.asarray(d(out, training=False)).shape == (3, 1)
    assert count(d, "Add") == 4 and count(d, "AveragePooling2D") == 4
    assert d.get_layer("block1_add").output.shape == (None, 16, 16, 8)
    assert d.get_layer("block4_add").output.shape == (None, 8, 8, 8)


def test_resnet_discriminator_pools_by_a_global_sum():
    keras.utils.set_random_seed(1)
    d = tiny_resnet_d(spectral_norm=False).build()
    x = images(2)
    features = keras.Model(d.input, d.get_layer("out_relu").output)(x, training=False)
    kernel, bias = d.get_layer("score").get_weights()
    expected = np.sum(np.asarray(features), axis=(1, 2)) @ kernel + bias
    np.testing.assert_allclose(np.asarray(d(x, training=False)), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("disc", [tiny_dcgan_d(), tiny_resnet_d()], ids=["dcgan", "resnet"])
def test_discriminators_output_linear_scores(disc):
    assert disc.output_activation == "linear"
    keras.utils.set_random_seed(0)
    d = disc.build()
    score = d.layers[-1]
    score = getattr(score, "layer", score)  # unwrap SpectralNormalization
    assert isinstance(score, keras.layers.Dense) and score.units == 1
    assert score.activation.__name__ == "linear"
    scores = np.asarray(d(images(8) * 100.0, training=False))
    assert scores.min() < 0.0 or scores.max() > 1.0  # no sigmoid squashes it


@pytest.mark.parametrize("component, wrapped_on, batch_norms_on, batch_norms_off", [
    (tiny_dcgan_g, ["Conv2DTranspose"] * 3 + ["Dense"], 3, 3),
    (lambda **kw: tiny_dcgan_g(64, **kw), ["Conv2DTranspose"] * 4 + ["Dense"], 4, 4),
    (tiny_dcgan_d, ["Conv2D"] * 3 + ["Dense"], 0, 2),
    (lambda **kw: tiny_dcgan_d(64, **kw), ["Conv2D"] * 4 + ["Dense"], 0, 3),
    (tiny_resnet_g, ["Conv2D"] * 10 + ["Dense"], 7, 7),
    (tiny_resnet_d, ["Conv2D"] * 10 + ["Dense"], 0, 0),
], ids=["dcgan_g32", "dcgan_g64", "dcgan_d32", "dcgan_d64", "resnet_g", "resnet_d"])
def test_spectral_norm_wraps_every_conv_and_dense(component, wrapped_on, batch_norms_on,
                                                   batch_norms_off):
    on = component(spectral_norm=True).build()
    assert spectral_normalized(on) == (sorted(wrapped_on), [])
    assert count(on, "BatchNormalization") == batch_norms_on
    off = component(spectral_norm=False).build()
    wrapped, bare = spectral_normalized(off)
    assert wrapped == [] and bare == sorted(wrapped_on)
    assert count(off, "BatchNormalization") == batch_norms_off


def test_spectral_norm_defaults():
    assert ResNetDiscriminator().config["spectral_norm"] is True
    assert ResNetGenerator().config["spectral_norm"] is False
    assert DCGANGenerator().config["spectral_norm"] is False
    assert DCGANDiscriminator().config["spectral_norm"] is False


@pytest.mark.parametrize("gen", [tiny_dcgan_g(), tiny_dcgan_g(64, spectral_norm=True),
                                 tiny_resnet_g()], ids=["dcgan32", "dcgan64_sn", "resnet"])
def test_generators_pass_the_conformance_kit(gen):
    assert check_generator(gen).passed == MODEL_CHECKS


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_dcgan_upsampling_by_resize_then_convolution(mode):
    gen = tiny_dcgan_g(upsample=mode)
    assert check_generator(gen).passed == MODEL_CHECKS
    model = gen.build()
    kinds = [type(layer).__name__ for layer in model.layers]
    assert "Conv2DTranspose" not in kinds
    assert kinds.count("UpSampling2D") == 3 and model.output_shape[1:3] == (32, 32)
    assert model.get_layer("up1_resize").interpolation == mode
    assert model.get_layer("up1").kernel_size == (3, 3)
    assert [type(layer).__name__ for layer in tiny_dcgan_g().build().layers].count(
        "Conv2DTranspose") == 3  # the default is the paper's


@pytest.mark.parametrize("size, gated", [(32, {"sle16": (4, 16)}),
                                         (64, {"sle16": (4, 16), "sle32": (8, 32)})])
def test_dcgan_skip_layer_excitation_gates_the_later_stages(size, gated):
    gen = tiny_dcgan_g(size, skip_excitation=True)
    assert check_generator(gen).passed == MODEL_CHECKS
    model = gen.build()
    for name, (low, high) in gated.items():
        # one gain in (0, 1) per channel of the stage at four times the resolution
        gate = model.get_layer(f"{name}_gate").output
        scale = model.get_layer(f"{name}_scale").output
        assert tuple(gate.shape[1:3]) == (1, 1) and tuple(scale.shape[1:3]) == (high, high)
        assert gate.shape[-1] == scale.shape[-1]
        squeeze = model.get_layer(f"{name}_squeeze")
        assert squeeze.kernel_size == (4, 4) and squeeze.padding == "valid"
        assert tuple(squeeze.input.shape[1:3]) == (4, 4)  # a larger source is pooled to 4x4
        if low > 4:
            assert tuple(model.get_layer(f"{name}_pool").input.shape[1:3]) == (low, low)
    assert ("sle32_pool" in [layer.name for layer in model.layers]) == (size == 64)
    plain = tiny_dcgan_g(size).build()
    assert not [layer for layer in plain.layers if layer.name.startswith("sle")]
    assert model.output_shape == plain.output_shape
    # the gate is live: shut (a sigmoid of -50), the 16x16 stage is zero, and every latent
    # gives the same image
    z = latents(4, 8)
    assert np.asarray(model(z, training=False)).std(axis=0).max() > 0
    bias = model.get_layer("sle16_excite").bias
    bias.assign(np.full(bias.shape, -50.0, "float32"))
    shut = np.asarray(model(z, training=False))
    np.testing.assert_allclose(shut, np.broadcast_to(shut[:1], shut.shape), atol=1e-12)


def test_dcgan_skip_layer_excitation_with_spectral_norm_wraps_its_convolutions():
    model = tiny_dcgan_g(skip_excitation=True, spectral_norm=True).build()
    wrapped, bare = spectral_normalized(model)
    assert wrapped.count("Conv2D") == 2 and "Conv2D" not in bare


@pytest.mark.parametrize("size", [32, 64])
def test_dcgan_multiscale_discriminator_sees_the_pooled_image(size):
    disc = tiny_dcgan_d(size, multiscale=True)
    assert check_discriminator(disc).passed == MODEL_CHECKS
    model = disc.build()
    steps = 3 if size == 32 else 4
    for i in range(2, steps + 1):
        pooled = model.get_layer(f"image_at{i}").output
        joined = model.get_layer(f"down{i}_with_image").output
        assert tuple(pooled.shape[1:]) == (size >> (i - 1), size >> (i - 1), 3)
        assert joined.shape[-1] == 3 + 2 * 2 ** (i - 2)  # F 2: the features, then the image
    assert "image_at1" not in [layer.name for layer in model.layers]
    plain = tiny_dcgan_d(size).build()
    assert model.count_params() - plain.count_params() == sum(
        3 * 16 * 2 * 2 ** (i - 1) for i in range(2, steps + 1))
    # the pooled path is live: the score changes when only the weights that read the
    # pooled image (the last 3 input channels of the last convolution) are zeroed
    x = images(2, size, seed=1)
    before = np.asarray(model(x, training=False))
    last = model.get_layer(f"down{steps}")
    kernel = np.asarray(last.kernel).copy()
    kernel[:, :, -3:, :] = 0.0
    last.kernel.assign(kernel)
    after = np.asarray(model(x, training=False))
    assert np.abs(after - before).max() > 1e-3 * np.abs(before).max()


def test_the_new_options_are_booleans_named_in_errors():
    with pytest.raises(RecipeError, match=r"generator\.skip_excitation: expected true or false"):
        check_params(DCGANGenerator.params, {"skip_excitation": "yes"}, "generator")
    with pytest.raises(RecipeError, match=r"discriminator\.multiscale: expected true or false"):
        check_params(DCGANDiscriminator.params, {"multiscale": 1}, "discriminator")


@pytest.mark.parametrize("disc", [tiny_dcgan_d(), tiny_dcgan_d(64, spectral_norm=True),
                                  tiny_resnet_d(), tiny_resnet_d(spectral_norm=False)],
                         ids=["dcgan32", "dcgan64_sn", "resnet_sn", "resnet"])
def test_discriminators_pass_the_conformance_kit(disc):
    assert check_discriminator(disc).passed == MODEL_CHECKS


@pytest.mark.parametrize("component, inputs", [
    (tiny_dcgan_g(), latents(4, 8)),
    (tiny_resnet_g(), latents(4, 8)),
    (tiny_dcgan_g(skip_excitation=True), latents(4, 8)),
    (tiny_dcgan_d(spectral_norm=True), images(4)),
    (tiny_dcgan_d(multiscale=True), images(4)),
    (tiny_resnet_d(), images(4)),
], ids=["dcgan_g", "resnet_g", "dcgan_g_sle", "dcgan_d_sn", "dcgan_d_multiscale",
        "resnet_d_sn"])
def test_saved_models_load_and_give_identical_outputs(component, inputs, tmp_path):
    keras.utils.set_random_seed(3)
    model = component.build()
    # A training-mode call moves the batch-norm statistics and the spectral-norm vectors
    # away from their initial values, so the file must carry them.
    model(inputs, training=True)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    # Same weights in the same order. (Keras restores a SpectralNormalization-wrapped kernel
    # under the inner layer's path, 'down1/kernel' instead of 'down1_sn/down1/kernel'.)
    assert [w.name for w in loaded.weights] == [w.name for w in model.weights]
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(model(inputs, training=False)),
                                  np.asarray(loaded(inputs, training=False)))


def test_invalid_sizes_name_the_key():
    with pytest.raises(RecipeError, match=r"generator\.height: expected one of 32, 64, got int 48"):
        check_params(DCGANGenerator.params, {"height": 48}, "generator")
    with pytest.raises(RecipeError, match=r"expected one of 32, 64") as err:
        DCGANDiscriminator(height=48, width=48)
    assert err.value.path.endswith(".height")
    with pytest.raises(RecipeError, match=r"generator\.width: expected the same as height \(32\)"):
        DCGANGenerator(height=32, width=64)
    with pytest.raises(RecipeError, match=r"discriminator\.width: expected the same as height "
                                          r"\(64\)"):
        DCGANDiscriminator(height=64, width=32)
    for cls in (ResNetGenerator, ResNetDiscriminator):
        with pytest.raises(RecipeError, match=r"height: expected one of 32, got int 64"):
            cls(height=64)
        with pytest.raises(RecipeError, match=r"width: expected one of 32, got int 16"):
            cls(width=16)
    with pytest.raises(RecipeError, match=r"discriminator\.spectral_norm: expected true or false"):
        check_params(ResNetDiscriminator.params, {"spectral_norm": "yes"}, "discriminator")
    with pytest.raises(RecipeError, match=r"discriminator\.num_classes: expected an integer in "
                                          r"\[0, 10000\], got -1"):
        check_params(ResNetDiscriminator.params, {"num_classes": -1}, "discriminator")


def _counts(model):
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return model.count_params(), trainable


def test_default_resnet_has_the_sngan_cifar_size():
    g, d = ResNetGenerator().build(), ResNetDiscriminator().build()
    print(f"\nresnet generator (all, trainable): {_counts(g)}"
          f"\nresnet discriminator (all, trainable): {_counts(d)}")
    # SNGAN/Mimicry: about 4.3M and 1.0M. The generator lacks the reference's 3 x 256 biases of
    # the convolutions that batch norm cancels (4,276,739 - 768); non-trainable: the
    # batch-norm statistics (3,584) and the spectral-norm vectors (10 x 128 + 1).
    assert _counts(g) == (4_279_555, 4_275_971)
    assert _counts(d) == (1_055_106, 1_053_825)


def test_default_dcgan_sizes():
    counts = {size: (_counts(DCGANGenerator(height=size, width=size).build()),
                     _counts(DCGANDiscriminator(height=size, width=size).build()))
              for size in (32, 64)}
    print(f"\ndcgan (generator, discriminator) (all, trainable): {counts}")
    assert counts[32] == ((3_679_747, 3_677_955), (664_129, 663_361))
    # At 64x64 the PyTorch DCGAN example (3,576,704 and 2,765,568) with a 128-long latent
    # and biases on the layers batch norm does not follow.
    assert counts[64] == ((3_808_003, 3_806_083), (2_767_425, 2_765_633))
