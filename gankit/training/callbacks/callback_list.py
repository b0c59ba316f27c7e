"""One object that fans every hook out to the callbacks of a run, in order (as Keras'
``keras/src/callbacks/callback_list.py``)."""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping, TypeVar

from gankit.errors import TrainingError
from gankit.interfaces import Callback
from gankit.interfaces.callbacks import RunContext
from gankit.rundir.errors import one_line

C = TypeVar("C", bound=Callback)


class CallbackList:
    """The callbacks of a run, called in order for every hook.

    :meth:`on_step_end` also calls every :meth:`~gankit.interfaces.Callback.on_checkpoint`
    when one of the callbacks wrote a checkpoint of that step (``run.last_checkpoint``
    changed), and :meth:`on_close` closes every callback even when some fail to. A value a
    callback adds to ``logs`` as a number of another type (a NumPy scalar, a 0-d tensor) is
    turned into a Python float; anything else stops the run with a TrainingError naming the
    callback and the value.

    Args:
        callbacks: in the order their hooks run.
    """

    def __init__(self, callbacks: Iterable[Callback]) -> None:
        self.callbacks = list(callbacks)
        self.run: RunContext | None = None

    def __iter__(self) -> Iterator[Callback]:
        return iter(self.callbacks)

    def __len__(self) -> int:
        return len(self.callbacks)

    def find(self, kind: type[C]) -> C | None:
        """The first callback that is a ``kind``, or None."""
        return next((cb for cb in self.callbacks if isinstance(cb, kind)), None)

    def log_columns(self) -> list[str]:
        """Every callback's :meth:`~gankit.interfaces.Callback.log_columns`, in order."""
        return [c for cb in self.callbacks for c in cb.log_columns()]

    def needs_boundary(self, step: int) -> bool:
        """Whether a compiled call must end after ``step``: any callback asks for it."""
        return any(cb.needs_boundary(step) for cb in self.callbacks)

    def on_train_begin(self, run: RunContext) -> None:
        self.run = run
        for cb in self.callbacks:
            cb.on_train_begin(run)

    def on_step_end(self, step: int, logs: dict[str, float]) -> None:
        saved = self.run.last_checkpoint if self.run is not None else None
        for cb in self.callbacks:
            cb.on_step_end(step, logs)
            for key, value in logs.items():
                if type(value) is not float:
                    logs[key] = _as_float(cb, step, key, value)
        if self.run is not None and self.run.last_checkpoint != saved:
            self.on_checkpoint(step)

    def on_checkpoint(self, step: int) -> None:
        for cb in self.callbacks:
            cb.on_checkpoint(step)

    def on_train_end(self, step: int, logs: Mapping[str, Any]) -> None:
        for cb in self.callbacks:
            cb.on_train_end(step, logs)

    def on_close(self) -> None:
        """Close every callback; an error of one does not keep the others open (and is
        dropped: closing must not hide the run's real outcome)."""
        for cb in self.callbacks:
            try:
                cb.on_close()
            except Exception:  # noqa: BLE001 - closing must not hide the real outcome
                pass


def _as_float(callback: Callback, step: int, key: str, value: Any) -> float:
    """A logged value as a Python float, or a TrainingError that names who logged it."""
    try:
        if getattr(value, "ndim", 0) == 0 and not isinstance(value, (str, bytes)):
            return float(value)
    except (TypeError, ValueError):
        pass
    name = getattr(callback, "name", "") or type(callback).__name__
    shape = getattr(value, "shape", None)
    what = f"{type(value).__name__} of shape {tuple(shape)}" if shape is not None else \
        f"{type(value).__name__} {one_line(repr(value), 60)}"
    raise TrainingError(f"callback '{name}' ({type(callback).__name__}) logged {key!r} at step "
                        f"{step} ({what}): a logged value must be one number (a Python "
                        f"float: float(value))")
