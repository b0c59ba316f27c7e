"""``train.precision``: models built under a Keras mixed policy that never leaks, float32
images, scores, losses and penalties, loss scaling under float16 (skipped steps, the scale
in the checkpoint, exact resume), and a mixed run's generator.keras sampled by the CLI."""

import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
import session_kit as kit
import tensorflow as tf
from PIL import Image

from gankit import Discriminator, Generator, Param, create
from gankit.cli.main import main
from gankit.errors import RecipeError
from gankit.interfaces import RegularizerInputs
from gankit.interfaces.context import step_context
from gankit.interfaces.data import as_examples
from gankit.recipe.validation import load_recipe
from gankit.testing import (
    ConformanceError,
    check_mixed_precision,
    make_images,
    run_recipe,
    write_image_folder,
)
from gankit.training.data import step_batches
from gankit.training.precision import dtype_policy
from gankit.training.session import SessionConfig, TrainingSession
from gankit.training.updates import CoreModelUpdate
from gankit_nets.dcgan import DCGANDiscriminator

FROG = Path(__file__).parents[2] / "recipes" / "frog_dcgan.yaml"
MIXED = ["mixed_bfloat16", "mixed_float16"]


@pytest.mark.parametrize("value, message", [
    ("bfloat16", "got the string 'bfloat16' (did you mean 'mixed_bfloat16'?)"),
    ("16", "got int 16"),
    ("null", "got null"),
    ("[mixed_float16]", "got the list ['mixed_float16']"),
])
def test_a_bad_precision_is_refused_at_validation(value, message):
    with pytest.raises(RecipeError) as caught:
        load_recipe(FROG, [f"train.precision={value}"])
    text = str(caught.value)
    assert ("train.precision: expected one of 'auto', 'float32', 'mixed_bfloat16', "
            "'mixed_float16'") in text
    assert message in text and "\n" not in text


def test_the_article_recipe_is_float32_and_the_key_reaches_the_session():
    assert load_recipe(FROG).train.precision == "float32"
    assert load_recipe(FROG, ["train.precision=mixed_float16"]).train.precision \
        == "mixed_float16"


def _session(precision, seed=0, xla="off", **parts):
    return TrainingSession(kit.parts(**parts), SessionConfig(
        seed=seed, batch_size=4, xla=xla, precision=precision)).build()


@pytest.mark.parametrize("precision", MIXED)
def test_models_compute_in_16_bits_with_float32_weights_and_the_policy_does_not_leak(precision):
    session = _session(precision, ema=(0.9, 0))
    assert keras.config.dtype_policy().name == "float32"
    low = precision.split("_")[1]
    for model in (session.generator, session.discriminator, session.ema.shadow):
        convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
        assert convs and all(layer.compute_dtype == low for layer in convs)
        assert all(w.dtype == "float32" for w in model.weights if w.trainable)
        # The last layers (tanh, sigmoid) are float32: images and probabilities in float32.
        assert keras.backend.standardize_dtype(model.output.dtype) == "float32"
    # Nothing built after it inherits the policy.
    assert _session("float32").generator.layers[1].compute_dtype == "float32"


def test_the_policy_is_restored_when_building_fails():
    with pytest.raises(RuntimeError):
        with dtype_policy("mixed_float16"):
            assert keras.config.dtype_policy().name == "mixed_float16"
            raise RuntimeError("a broken build()")
    assert keras.config.dtype_policy().name == "float32"
    with pytest.raises(ValueError, match="precision must be one of"):
        with dtype_policy("float16"):
            pass


def _run(session, start, stop):
    step = session.step_function()
    metrics = {}
    for k, batch in step_batches(as_examples(kit.images(16), (kit.SIZE, kit.SIZE, 3)),
                                 batch_size=4, batches_per_step=1, seed=0, shuffle=True,
                                 start=start, stop=stop):
        metrics[int(k)] = {name: float(v) for name, v in step(k, batch)[0].items()}
    return metrics


@pytest.mark.parametrize("precision", MIXED)
def test_resuming_a_mixed_precision_run_is_bit_exact(precision, tmp_path):
    def session():  # xla auto: the loss scaler's update is compiled with XLA too
        made = _session(precision, seed=3, xla="auto", regularizers=[{"type": "r1", "every": 2}])
        for update in made.updates.values():
            if update.loss_scaler is not None:
                # Too high a scale (as the initial 2**15 is for many models): the first
                # float16 steps overflow, are skipped, and the scale falls.
                update.loss_scaler.dynamic_scale.assign(2.0 ** 28)
        return made

    whole = session()
    metrics = _run(whole, 0, 2)
    prefix = whole.checkpoint().write(str(tmp_path / "after-2"))
    scales = [float(v.numpy()) for name, v in whole.state().items() if name.endswith("_scale")]
    metrics.update(_run(whole, 2, 4))

    resumed = session()
    resumed.checkpoint().read(prefix).assert_existing_objects_matched()
    assert [float(v.numpy()) for name, v in resumed.state().items()
            if name.endswith("_scale")] == scales
    again = _run(resumed, 2, 4)
    for k in range(2, 4):
        assert again[k] == metrics[k], k
    for (name, a), (_, b) in zip(whole.variables().items(), resumed.variables().items()):
        for x, y in zip(a, b):
            assert np.array_equal(np.asarray(x), np.asarray(y)), name
    assert all(np.isfinite(list(m.values())).all() for m in metrics.values())
    if precision == "mixed_float16":
        # The checkpoint held scales the scaler had lowered after skipped steps.
        assert len(scales) == 2 and all(s < 2.0 ** 28 for s in scales)
        assert any(metrics[k]["g_grad_norm"] == 0.0 for k in range(2))
    else:
        assert scales == []


# --- loss scaling, on gankit's gradient application ------------------------------------------

def _dense(precision, units=3):
    keras.utils.set_random_seed(0)
    with dtype_policy(precision):
        x = keras.Input((4,))
        return keras.Model(x, keras.layers.Dense(units)(x))


def _minimize(update, model, x):
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.cast(model(x), tf.float32))
    return float(update.minimize(tape, loss))


def test_loss_scaling_changes_nothing_when_nothing_overflows():
    # In float32 a power-of-two scale is exact: the same update as without scaling.
    x = tf.constant(np.random.default_rng(0).standard_normal((2, 4)), tf.float32)
    results = []
    for loss_scale in (False, True):
        model = _dense("float32")
        update = CoreModelUpdate(model, keras.optimizers.SGD(0.1), loss_scale=loss_scale)
        norm = _minimize(update, model, x)
        results.append((norm, [w.numpy() for w in model.weights]))
    assert results[0][0] == results[1][0] > 0
    for a, b in zip(results[0][1], results[1][1]):
        assert np.array_equal(a, b)


def test_float16_steps_that_overflow_are_skipped_and_the_scale_adapts():
    model = _dense("mixed_float16")
    update = CoreModelUpdate(model, keras.optimizers.SGD(0.1), loss_scale=True)
    scaler = update.loss_scaler
    assert float(scaler.dynamic_scale.numpy()) == 2.0 ** 15
    # The kernel's gradient is 100 x scale: over float16's 65504 until the scale is 512.
    x = tf.fill((1, 4), 100.0)
    start = [w.numpy() for w in model.weights]
    for expected_scale in (2.0 ** 14, 2.0 ** 13, 2.0 ** 12, 2.0 ** 11, 2.0 ** 10, 2.0 ** 9):
        assert _minimize(update, model, x) == 0.0  # skipped: reported as a zero norm
        assert float(scaler.dynamic_scale.numpy()) == expected_scale
        assert all(np.array_equal(w.numpy(), s) for w, s in zip(model.weights, start))
    norm = _minimize(update, model, x)
    assert norm == pytest.approx(np.sqrt(3 * (4 * 100.0 ** 2 + 1)), rel=1e-3)
    assert float(scaler.dynamic_scale.numpy()) == 512.0
    assert int(update.optimizer.iterations.numpy()) == 1  # one update applied
    assert not np.array_equal(model.weights[0].numpy(), start[0])
    # After dynamic_growth_steps finite steps in a row the scale doubles again.
    scaler.dynamic_growth_steps = 2
    _minimize(update, model, tf.ones((1, 4)))
    assert float(scaler.dynamic_scale.numpy()) == 1024.0
    assert set(update.state()) == {"loss_scale", "loss_scale_steps"}


# --- penalties, XLA, sampling ----------------------------------------------------------------

@pytest.mark.parametrize("precision", MIXED)
def test_gradient_penalties_are_float32_and_close_to_float32(precision):
    images = tf.constant(make_images(4, (32, 32, 3), seed=2))
    half = tf.constant(make_images(4, (32, 32, 3), seed=3))
    values = {}
    for policy in ("float32", precision):
        keras.utils.set_random_seed(5)
        with dtype_policy(policy):
            model = DCGANDiscriminator(base_filters=4, norm="layer").build()

        def discriminate(x):
            return tf.cast(model(x, training=True), tf.float32)

        inputs = RegularizerInputs(discriminate, images, half, discriminate(images),
                                   discriminate(half))
        ctx = step_context(0, tf.constant(0, tf.int64))
        values[policy] = [create("regularizer", name).penalty(inputs, ctx)
                          for name in ("r1", "r2", "gradient_penalty")]
    for exact, mixed in zip(values["float32"], values[precision]):
        assert mixed.dtype == tf.float32 and np.isfinite(float(mixed))
        assert float(mixed) == pytest.approx(float(exact), rel=0.1)


def test_a_float16_step_compiles_whole_with_xla():
    # (mixed_bfloat16 with xla: on is the run below; both with auto, the resume test above)
    session = _session("mixed_float16", xla="on")
    before = session.generator.trainable_variables[0].numpy()
    step = session.step_function()
    for k, batch in step_batches(as_examples(kit.images(8), (kit.SIZE, kit.SIZE, 3)),
                                 batch_size=4, batches_per_step=1, seed=0, shuffle=False,
                                 start=0, stop=2):
        metrics, fake = step(k, batch)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert fake.dtype == tf.float32
    assert not np.array_equal(session.generator.trainable_variables[0].numpy(), before)


def test_a_mixed_runs_generator_keras_samples_with_the_cli(tmp_path):
    folder = write_image_folder(tmp_path / "images", n=8, height=24, width=24)
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(f"""
generator: {{type: frog_dcgan, latent_dim: 8, height: 24, width: 24, base_filters: 8, filters: 8}}
discriminator: {{type: frog_dcgan, height: 24, width: 24, filters: 8}}
dataset: {{type: image_folder, path: {folder}, height: 24, width: 24}}
loss: {{type: bce, real_label: 0.0, fake_label: 1.0}}
train: {{steps: 2, batch_size: 4, precision: mixed_bfloat16, xla: "on", checkpoint_every: 2,
         sample_every: 2, grid_every: 2, grid_size: 2}}
""")
    run = run_recipe(recipe, tmp_path / "run", steps=2).run_dir
    saved = keras.models.load_model(run / "generator.keras", compile=False)
    assert saved.layers[1].dtype_policy.name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"
    grids = []
    for source in ("checkpoint", "generator.keras"):
        if source == "generator.keras":  # without checkpoints, sample generator.keras itself
            shutil.rmtree(run / "checkpoints")
        out = tmp_path / f"{source}.png"
        assert main(["sample", str(run), "-n", "4", "--seed", "1", "--out", str(out)]) == 0
        grids.append(np.asarray(Image.open(out)).astype(int))
        assert grids[-1].ndim == 3 and grids[-1].std() > 0
    # The checkpoint's weights sampled in float32, generator.keras in bfloat16 (its policy).
    assert grids[0].shape == grids[1].shape and np.abs(grids[0] - grids[1]).mean() < 8


# --- the conformance kit's mixed-precision check catches what it should -----------------------

class TinyGenerator(Generator):
    """latent -> Dense(16) -> (4, 4, 1) -> tanh; ``float32_output`` puts the tanh in float32."""

    name = "tiny"
    params = {"float32_output": Param(bool, True)}
    latent_dim = 3
    image_shape = (4, 4, 1)

    def build(self):
        from keras import layers

        z = keras.Input((3,))
        x = layers.Reshape((4, 4, 1))(layers.Dense(16)(z))
        dtype = "float32" if self.config["float32_output"] else None
        return keras.Model(z, layers.Activation("tanh", dtype=dtype)(x))


class TinyDiscriminator(Discriminator):
    """image -> Flatten -> Dense(1, sigmoid), computing in ``dtype`` (None: the policy's)."""

    name = "tiny"
    params = {"dtype": Param(str, None, nullable=True)}
    output_activation = "sigmoid"
    image_shape = (4, 4, 1)

    def build(self):
        from keras import layers

        image = keras.Input((4, 4, 1))
        x = layers.Flatten()(image)
        return keras.Model(image, layers.Dense(1, activation="sigmoid",
                                               dtype=self.config["dtype"])(x))


def test_the_mixed_precision_check_passes_float32_outputs_and_catches_16_bit_ones():
    assert check_mixed_precision(TinyGenerator()).passed == ("mixed_bfloat16", "mixed_float16")
    with pytest.raises(ConformanceError, match="'mixed_bfloat16' check: under mixed_bfloat16 "
                                               "the generator's images are bfloat16"):
        check_mixed_precision(TinyGenerator(float32_output=False))
    with pytest.raises(ConformanceError, match="the discriminator's probabilities are float16"):
        check_mixed_precision(TinyDiscriminator(), skip=["mixed_bfloat16"])
    report = check_mixed_precision(TinyDiscriminator(dtype="float32"))
    assert report.notes == tuple(
        f"mixed_{low}: no layer with weights of the discriminator computes in {low} under "
        f"mixed_{low} (each sets its own dtype), so the policy makes it no faster"
        for low in ("bfloat16", "float16"))
    with pytest.raises(ConformanceError,
                       match=r"trainable weights 'dense.*' \(bfloat16\).* are not float32"):
        check_mixed_precision(TinyDiscriminator(dtype="bfloat16"))
    assert keras.config.dtype_policy().name == "float32"
