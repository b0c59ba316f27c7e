"""The CallbackList fans every hook out in order, finds a callback by type, calls
on_checkpoint when a checkpoint was written, and closes every callback even if one fails."""

from types import SimpleNamespace

from gankit.interfaces import Callback
from gankit.training.callbacks import CallbackList, Checkpoints, CoreCallback


class _Recorder(CoreCallback):
    def __init__(self, name, calls, fail_close=False):
        super().__init__()
        self.name_, self.calls, self.fail_close = name, calls, fail_close

    def needs_boundary(self, step):
        return step == 3 and self.name_ == "b"

    def on_train_begin(self, run):
        super().on_train_begin(run)
        self.calls.append((self.name_, "begin"))

    def on_step_end(self, step, logs):
        self.calls.append((self.name_, "step", step))
        if self.name_ == "a" and step == 2:
            self.run.last_checkpoint = step  # as the checkpoint callback does

    def on_checkpoint(self, step):
        self.calls.append((self.name_, "checkpoint", step))

    def on_close(self):
        self.calls.append((self.name_, "close"))
        if self.fail_close:
            raise RuntimeError("closing failed")


def test_every_hook_reaches_every_callback_in_order():
    calls = []
    callbacks = CallbackList([_Recorder("a", calls, fail_close=True), _Recorder("b", calls)])
    run = SimpleNamespace(last_checkpoint=None)
    callbacks.on_train_begin(run)
    callbacks.on_step_end(1, {})
    callbacks.on_step_end(2, {})
    callbacks.on_close()
    assert calls == [("a", "begin"), ("b", "begin"),
                     ("a", "step", 1), ("b", "step", 1),
                     ("a", "step", 2), ("b", "step", 2),
                     ("a", "checkpoint", 2), ("b", "checkpoint", 2),
                     ("a", "close"), ("b", "close")]
    assert [callbacks.needs_boundary(s) for s in (1, 2, 3)] == [False, False, True]


def test_a_callback_is_found_by_type_not_position():
    checkpoints = Checkpoints()
    callbacks = CallbackList([checkpoints, _Recorder("a", [])])
    assert callbacks.find(Checkpoints) is checkpoints
    assert callbacks.find(_Recorder) is callbacks.callbacks[1]
    assert CallbackList([]).find(Checkpoints) is None
    assert isinstance(callbacks.find(Callback), Checkpoints)
