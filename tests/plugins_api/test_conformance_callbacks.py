"""check_callback: a callback runs in a real tiny run and its resume without changing them;
each planted bug fails the matching check with a message that names the cause."""

import pytest

from gankit import Callback, Param
from gankit.testing import CALLBACK_CHECKS, ConformanceError, check_callback, check_component


class EveryOther(Callback):
    """Logs a value on even steps only, without declaring the column."""

    name = "every_other"
    params = {"every": Param(int, 2, min=1, doc="log every this many steps")}

    def needs_boundary(self, step):
        return False

    def on_step_end(self, step, logs):
        if step % self.config["every"] == 0:
            logs["half_loss"] = logs["d_loss"] / 2


class Trains(EveryOther):
    """Changes the generator's weights and rewrites d_loss (two planted bugs)."""

    def needs_boundary(self, step):
        return True

    def on_step_end(self, step, logs):
        weights = self.run.session.generator.trainable_weights[0]
        weights.assign(weights * 0.5)


class Rewrites(EveryOther):
    def on_step_end(self, step, logs):
        logs["d_loss"] = 0.0


class Deletes(EveryOther):
    def on_step_end(self, step, logs):
        logs.pop("g_loss")


class LogsATensor(EveryOther):
    """A 0-d tensor is turned into a float; a vector cannot be one number."""

    def on_step_end(self, step, logs):
        import tensorflow as tf

        logs["d_acc"] = tf.constant(0.5)
        logs["d_accs"] = tf.constant([0.5, 0.25])


class ForgetsSuper(EveryOther):
    def on_train_begin(self, run):  # no super(): self.run is never set
        pass

    def on_step_end(self, step, logs):
        logs["lr"] = float(self.run.train.batch_size)


def test_a_callback_with_an_occasional_column_passes_with_a_note():
    report = check_callback(EveryOther())
    assert report.passed == CALLBACK_CHECKS
    assert any("'half_loss' is logged from step 2 on and is not in log_columns()" in note
               for note in report.notes), report.notes


def test_check_component_dispatches_callbacks():
    report = check_component(EveryOther(), skip=["resume"])
    assert report.kind == "callback" and "resume" in report.skipped


@pytest.mark.parametrize("callback, check, match", [
    (Trains(), "weights", r"on_step_end\(1\) changed the weights of the generator"),
    (Rewrites(), "logs", r"received d_loss=.* in logs and changed it to 0.0"),
    (Deletes(), "logs", r"received g_loss=.* in logs and removed it"),
    (LogsATensor(), "train", r"callback 'every_other' \(LogsATensor\) logged 'd_accs' at step 1 "
                             r"\(EagerTensor of shape \(2,\)\): a logged value must be one "
                             r"number"),
    (ForgetsSuper(), "train", "AttributeError"),
])
def test_a_broken_callback_fails_the_matching_check(callback, check, match):
    with pytest.raises(ConformanceError, match=match) as failed:
        check_callback(callback, skip=["resume"])
    assert failed.value.check == check
