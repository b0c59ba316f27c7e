"""One object that fans every hook out to the callbacks of a run, in order (as Keras'
``keras/src/callbacks/callback_list.py``)."""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping, TypeVar

from gankit.interfaces import Callback
from gankit.interfaces.callbacks import RunContext

C = TypeVar("C", bound=Callback)


class CallbackList:
    """The callbacks of a run, called in order for every hook.

    :meth:`on_step_end` also calls every :meth:`~gankit.interfaces.Callback.on_checkpoint`
    when one of the callbacks wrote a checkpoint of that step (``run.last_checkpoint``
    changed), and :meth:`on_close` closes every callback even when some fail to.

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
