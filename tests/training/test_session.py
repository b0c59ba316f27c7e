"""The training core on tiny models: randomness per part, EMA, the data of each step,
compiled updates, and checkpoints by name."""

from pathlib import Path

import keras
import numpy as np
import pytest
import session_kit as kit
import tensorflow as tf
from tensorflow.core.protobuf import trackable_object_graph_pb2

from gankit.interfaces import Batch
from gankit.interfaces.context import StepContext, step_context
from gankit.recipe.validation import load_recipe
from gankit.training.data import batch_indices
from gankit.training.ema import GeneratorEMA

FROG = Path(__file__).parents[2] / "recipes" / "frog_dcgan.yaml"


class RecordingContext(StepContext):
    """A StepContext that records every draw's full name and value (run eagerly)."""

    def __init__(self, seed, step, name="", log=None):
        super().__init__(seed, step, name)
        self.log = {} if log is None else log

    def child(self, name):
        parent = super().child(name)
        return RecordingContext(parent.seed, parent.step, parent.name, self.log)

    def key(self, name):
        key = super().key(name)
        self.log[f"{self.name}/{name}" if self.name else name] = key.numpy()
        return key


def _draws(**parts):
    session = kit.session(seed=3, **parts)
    root = step_context(3, tf.constant(5, tf.int64))
    ctx = RecordingContext(root.seed, root.step)
    real = tf.constant(kit.images(8)[None, :4])
    out = session.parts.strategy.train_step(Batch(real), session.models, ctx)
    return ctx.log, out


def test_adding_a_regularizer_and_an_augmenter_changes_no_other_parts_randomness():
    plain, plain_out = _draws()
    richer, richer_out = _draws(regularizers=[{"type": "r1", "gamma": 1.0}],
                                augmenter={"type": "diffaugment"})
    assert {"d_latents/0", "g_latents", "loss/d0/label_noise"} <= set(plain)
    for name, key in plain.items():
        assert np.array_equal(richer[name], key), name
    assert any(name.startswith("regularizers/r1") for name in richer)
    assert any(name.startswith("augmenter/") for name in richer)
    # The same latents, so the first generated batch of the step is identical too.
    np.testing.assert_array_equal(plain_out.fake_images.numpy(), richer_out.fake_images.numpy())


def test_each_part_and_step_has_its_own_stream():
    ctx = step_context(0, tf.constant(1, tf.int64))
    a = ctx.normal("d_latents/0", (4, 3)).numpy()
    assert np.array_equal(a, ctx.normal("d_latents/0", (4, 3)).numpy())
    assert not np.array_equal(a, ctx.normal("g_latents", (4, 3)).numpy())
    assert not np.array_equal(a, step_context(0, tf.constant(2, tf.int64))
                              .normal("d_latents/0", (4, 3)).numpy())
    assert not np.array_equal(a, step_context(1, tf.constant(1, tf.int64))
                              .normal("d_latents/0", (4, 3)).numpy())


def test_ema_is_exact_after_k_steps():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2),
                              keras.layers.BatchNormalization()])
    shadow = keras.models.clone_model(model)
    decay, start = 0.9, 2
    ema = GeneratorEMA(model, shadow, decay, start)
    w0 = [v.numpy().copy() for v in model.trainable_variables]
    expected = [w.copy() for w in w0]
    for step in range(6):
        new = [np.full_like(w, step + 1.0) for w in w0]
        for v, value in zip(model.trainable_variables, new):
            v.assign(value)
        model.non_trainable_variables[0].assign(np.full((2,), 10.0 + step, np.float32))
        ema.update(tf.constant(step, tf.int64))
        d = 0.0 if step < start else decay
        expected = [d * e + (1 - d) * n for e, n in zip(expected, new)]
    for got, want in zip(shadow.trainable_variables, expected):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
    # closed form: steps 0, 1 copy (value 2); steps 2..5 average towards 3, 4, 5, 6
    closed = 0.9 ** 4 * 2 + sum(0.1 * 0.9 ** (5 - s) * (s + 1) for s in range(2, 6))
    np.testing.assert_allclose(shadow.trainable_variables[0].numpy(), closed, rtol=1e-6)
    assert shadow.non_trainable_variables[0].numpy()[0] == 15.0  # copied, not averaged


def test_ema_in_a_session_lags_the_generator_and_is_checkpointed():
    session = kit.session(ema=(0.5, 0))
    step = session.step_function()
    data = kit.images(8)
    for k in range(3):
        step(tf.constant(k, tf.int64), Batch(tf.constant(data[None, :4])))
    g = session.generator.trainable_variables[0].numpy()
    e = session.ema.shadow.trainable_variables[0].numpy()
    assert not np.array_equal(g, e) and np.isfinite(e).all()
    assert "generator_ema" in session.state() and int(session.step_counter.numpy()) == 3


@pytest.mark.parametrize("shuffle", [False, True])
def test_each_step_reads_its_own_batches_and_every_epoch_is_a_permutation(shuffle):
    n, bs, m = 12, 3, 2  # 4 batches per epoch, 2 batches per step
    steps = [batch_indices(tf.constant(k), n=n, batch_size=bs, batches_per_step=m, seed=1,
                           shuffle=shuffle).numpy() for k in range(4)]
    assert steps[0].shape == (m, bs)
    epochs = [np.concatenate([steps[0].ravel(), steps[1].ravel()]),
              np.concatenate([steps[2].ravel(), steps[3].ravel()])]
    for epoch in epochs:
        assert sorted(epoch) == list(range(n))
    if shuffle:
        assert not np.array_equal(epochs[0], epochs[1])  # a new order each epoch
        assert not np.array_equal(epochs[0], np.arange(n))
    else:
        assert np.array_equal(epochs[0], np.arange(n))
    again = batch_indices(tf.constant(3), n=n, batch_size=bs, batches_per_step=m, seed=1,
                          shuffle=shuffle).numpy()
    assert np.array_equal(again, steps[3])  # a pure function of the step


def test_compiled_optimizer_updates_match_the_plain_ones():
    """`train.xla: auto` compiles each optimizer update with XLA: same arithmetic."""
    data = kit.images(8)
    states = []
    for xla in ("off", "auto"):
        session = kit.session(seed=4, xla=xla, optimizer={"type": "RMSprop", "learning_rate": 1e-3,
                                                          "clipvalue": 1.0})
        step = session.step_function()
        for k in range(3):
            step(tf.constant(k, tf.int64), Batch(tf.constant(data[None, :4])))
        states.append([v.numpy() for vs in session.variables().values() for v in vs])
    for plain, fused in zip(*states):
        np.testing.assert_allclose(plain, fused, rtol=1e-5, atol=1e-6)


def test_the_frog_recipes_optimizers_are_the_articles_rmsprop():
    optimizers = {role: o.create() for role, o in load_recipe(FROG).create("optimizer").items()}
    d_opt, g_opt = optimizers["discriminator"], optimizers["generator"]
    assert isinstance(d_opt, keras.optimizers.RMSprop) and d_opt.clipvalue == 1.0
    schedule = d_opt._learning_rate
    assert float(schedule(0)) == pytest.approx(8e-4)
    assert float(g_opt._learning_rate(0)) == pytest.approx(4e-4)
    assert float(schedule(1_000_000)) == pytest.approx(8e-4 / (1 + 1e-8 * 1_000_000))


def test_checkpoints_hold_every_piece_of_state_by_name(tmp_path):
    trained = kit.session(seed=1, ema=(0.9, 0), regularizers=[{"type": "r1", "every": 2}])
    step = trained.step_function()
    data = kit.images(8)
    for k in range(2):
        step(tf.constant(k, tf.int64), Batch(tf.constant(data[None, :4])))
    prefix = trained.checkpoint().write(str(tmp_path / "state"))
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(tf.train.load_checkpoint(prefix).get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    names = {child.local_name for child in graph.nodes[0].children}
    assert {"generator", "discriminator", "generator_optimizer", "discriminator_optimizer",
            "generator_ema", "step"} <= names
    # One piece alone can be read back by its name (what `gankit sample` does).
    alone = kit.parts().generator.build()
    tf.train.Checkpoint(generator_ema=alone).read(prefix).expect_partial() \
        .assert_existing_objects_matched()
    for a, b in zip(alone.variables, trained.ema.shadow.variables):
        assert np.array_equal(a.numpy(), b.numpy())
    fresh = kit.session(seed=99, ema=(0.9, 0), regularizers=[{"type": "r1", "every": 2}])
    fresh.checkpoint().read(prefix).assert_existing_objects_matched()
    for (name, a), (_, b) in zip(trained.variables().items(), fresh.variables().items()):
        for x, y in zip(a, b):
            assert np.array_equal(np.asarray(x), np.asarray(y)), name
    # A session that keeps more state than the checkpoint holds cannot restore from it.
    plain = kit.session(seed=1)
    plain_prefix = plain.checkpoint().write(str(tmp_path / "plain"))
    with pytest.raises(AssertionError):
        kit.session(seed=1, ema=(0.9, 0)).checkpoint().read(plain_prefix) \
            .assert_existing_objects_matched()
