"""The trainer's built-in side work, one callback a module, and the list that runs them.

They run in this order after every step: the NaN guard, the recipe's own callbacks, the
loss log, the progress bar, TensorBoard, samples, grids and checkpoints. Grids, checkpoints
and metrics need the models at their steps (:meth:`~gankit.interfaces.Callback.needs_boundary`),
so a compiled call of several steps ends there; the others use only each step's logs and
images, which a call returns for every step it ran. A recipe's
``callbacks`` section adds registered callbacks (they may add entries to ``logs``, which
the loss log and TensorBoard then record). :class:`CallbackList` calls every hook of them
in that order.

===================  ===========================================================
module               callback
===================  ===========================================================
``callback_list``    :class:`CallbackList`: one object that fans every hook out
``core``             :class:`CoreCallback`: the base of the built-ins
``nan_guard``        :class:`NaNGuard`: stops at the first non-finite metric
``loss_log``         :class:`LossLog`: ``losses.csv``
``progress``         :class:`Progress`: the progress bar
``tensorboard``      :class:`TensorBoard`: every metric as a scalar
``samples``          :class:`Samples`: a generated and a real image
``grids``            :class:`Grids`: the grid of fixed latents
``checkpoints``      :class:`Checkpoints`: the checkpoints
===================  ===========================================================
"""

from __future__ import annotations

from typing import Mapping, Sequence

from gankit.interfaces import Callback
from gankit.training.callbacks.callback_list import CallbackList
from gankit.training.callbacks.checkpoints import Checkpoints
from gankit.training.callbacks.core import CoreCallback
from gankit.training.callbacks.grids import MAX_GRID_CLASSES, Grids
from gankit.training.callbacks.loss_log import LossLog
from gankit.training.callbacks.nan_guard import NaNGuard
from gankit.training.callbacks.progress import Progress
from gankit.training.callbacks.samples import Samples
from gankit.training.callbacks.tensorboard import TensorBoard
from gankit.util.progress import ProgressBar

__all__ = ["CallbackList", "Checkpoints", "CoreCallback", "Grids", "LossLog", "MAX_GRID_CLASSES",
           "NaNGuard", "Progress", "Samples", "TensorBoard", "builtin_callbacks", "describe"]


def builtin_callbacks(bar: ProgressBar, leading: Sequence[Callback] = (), extra_columns=()
                      ) -> tuple[list[Callback], list[Callback]]:
    """The built-in callbacks that run before and after a recipe's own; ``leading`` (the
    metrics of a recipe's ``metrics`` section) run right after the NaN guard, and their log
    columns come first."""
    leading = list(leading)
    log = LossLog([c for cb in leading for c in cb.log_columns()] + list(extra_columns))
    return [NaNGuard(log), *leading], [log, Progress(bar), TensorBoard(), Samples(), Grids(),
                                       Checkpoints()]


def describe(logs: Mapping[str, float]) -> str:
    """``d_loss 0.6931 g_loss 0.7012``: the losses of a step, for a closing line."""
    return " ".join(f"{k} {v:.4f}" for k, v in logs.items() if k.endswith("loss"))
