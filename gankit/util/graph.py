"""A mark for gankit's own code that TensorFlow traces: no AutoGraph conversion needed."""

from __future__ import annotations

from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable)


def plain_python(func: F) -> F:
    """Mark ``func`` as traced as written: AutoGraph calls it without converting it.

    AutoGraph rewrites each Python function a ``tf.function`` or a ``tf.data`` map calls, so
    that an ``if`` or a ``while`` on a tensor becomes graph control flow. Rewriting costs
    tens to hundreds of milliseconds per function, once per process: about 5 s for the
    functions of gankit's training step and input pipeline, measured on the article's tiny
    models, which is most of what a first short run or a conformance check spends before its
    first step. A function whose control flow runs on Python values (or is written out as
    ``tf.cond`` and ``tf.while_loop``) needs none of it.

    The mark is the attribute TensorFlow sets on its own
    ``tf.autograph.experimental.do_not_convert`` wrappers, set here without importing
    TensorFlow (``tests/training/test_graph_marks.py`` checks that TensorFlow honours it). A
    release that stopped honouring it would convert the function again: slower, not wrong.

    Never mark a function that calls a plugin's code (a strategy's ``train_step`` calls the
    loss, the regularizers and the augmenter): what it calls would go unconverted too.
    """
    func.autograph_info__ = frozenset()  # type: ignore[attr-defined]
    return func
