"""Keras optimizers and learning-rate schedules, chosen in a recipe by their Keras names.

Each is a thin component over the Keras class: it declares the constructor arguments (with
Keras' own defaults) so that a recipe is checked before TensorFlow loads, and ``create()``
hands them to Keras unchanged::

    optimizers:
      generator:     {type: Adam, learning_rate: 2.0e-4, beta_1: 0.0, beta_2: 0.9}
      discriminator: {type: RMSprop, learning_rate: {type: InverseTimeDecay,
                      initial_learning_rate: 8.0e-4, decay_steps: 1, decay_rate: 1.0e-8},
                      clipvalue: 1.0}
"""

from __future__ import annotations

from typing import Any

from gankit import REQUIRED, Param
from gankit.errors import RecipeError
from gankit.interfaces import Optimizer, Schedule

_POSITIVE = {"min": 0.0, "min_exclusive": True}
_UNIT = {"min": 0.0, "max": 1.0}

_CLIPPING = {
    "clipnorm": Param(float, None, nullable=True, **_POSITIVE,
                      doc="clip each gradient tensor to this L2 norm; null: off"),
    "clipvalue": Param(float, None, nullable=True, **_POSITIVE,
                       doc="clip each gradient element to [-clipvalue, clipvalue]; null: off"),
    "global_clipnorm": Param(float, None, nullable=True, **_POSITIVE,
                             doc="clip all gradients together to this global L2 norm; null: off"),
}


def _learning_rate(default: float) -> Param:
    return Param(float, default, component="schedule", **_POSITIVE,
                 doc="a fixed rate, or a schedule ({type: ExponentialDecay, ...})")


class KerasOptimizer(Optimizer):
    """Base of the built-in optimizers: the recipe's parameters go to ``keras_class``."""

    keras_class: str = ""
    removed_params = {
        "lr": "Keras 3 optimizers have no `lr`; set learning_rate",
        "decay": "Keras 3 optimizers have no `decay`; give learning_rate an InverseTimeDecay "
                 "schedule ({type: InverseTimeDecay, initial_learning_rate: ..., "
                 "decay_steps: 1, decay_rate: ...}), the same lr / (1 + decay * step)",
    }

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        given = [k for k in ("clipnorm", "clipvalue", "global_clipnorm") if self.config[k]]
        if len(given) > 1:
            raise RecipeError(f"set at most one of clipnorm, clipvalue and global_clipnorm "
                              f"(Keras refuses more), got {' and '.join(given)}",
                              path=f"{type(self).__name__}.{given[1]}")

    def create(self):
        import keras

        from gankit import create

        kwargs = dict(self.config)
        rate = kwargs["learning_rate"]
        if isinstance(rate, dict):
            kwargs["learning_rate"] = create("schedule", rate).create()
        return getattr(keras.optimizers, self.keras_class)(**kwargs)


def _optimizer(keras_name: str, summary: str, rate: float, specific: dict[str, Param]):
    params = {"learning_rate": _learning_rate(rate), **specific, **_CLIPPING}
    return type(keras_name, (KerasOptimizer,), {
        "__doc__": f"{summary} (keras.optimizers.{keras_name}).",
        "__module__": __name__, "name": keras_name, "keras_class": keras_name,
        "params": params})


_BETAS = {
    "beta_1": Param(float, 0.9, **_UNIT, doc="decay of the first-moment estimate"),
    "beta_2": Param(float, 0.999, **_UNIT, doc="decay of the second-moment estimate"),
    "epsilon": Param(float, 1e-7, **_POSITIVE, doc="added to the denominator for stability"),
}
_AMSGRAD = {"amsgrad": Param(bool, False, doc="use the AMSGrad variant")}

Adam = _optimizer("Adam", "Adam", 1e-3, {**_BETAS, **_AMSGRAD})
AdamW = _optimizer("AdamW", "Adam with decoupled weight decay", 1e-3, {
    "weight_decay": Param(float, 0.004, min=0.0, doc="decoupled weight decay"),
    **_BETAS, **_AMSGRAD})
Nadam = _optimizer("Nadam", "Adam with Nesterov momentum", 1e-3, dict(_BETAS))
Adamax = _optimizer("Adamax", "Adam with the infinity norm", 1e-3, dict(_BETAS))
RMSprop = _optimizer("RMSprop", "RMSprop", 1e-3, {
    "rho": Param(float, 0.9, **_UNIT, doc="discounting factor of the squared-gradient average"),
    "momentum": Param(float, 0.0, **_UNIT, doc="momentum"),
    "epsilon": Param(float, 1e-7, **_POSITIVE, doc="added to the denominator for stability"),
    "centered": Param(bool, False, doc="normalise by the estimated gradient variance"),
})
SGD = _optimizer("SGD", "Stochastic gradient descent", 1e-2, {
    "momentum": Param(float, 0.0, **_UNIT, doc="momentum"),
    "nesterov": Param(bool, False, doc="Nesterov momentum"),
})
Lion = _optimizer("Lion", "Lion (sign of an interpolated momentum)", 1e-3, {
    "beta_1": Param(float, 0.9, **_UNIT, doc="interpolation of the update"),
    "beta_2": Param(float, 0.99, **_UNIT, doc="decay of the momentum"),
})

OPTIMIZERS = (Adam, AdamW, Nadam, Adamax, RMSprop, SGD, Lion)


class KerasSchedule(Schedule):
    """Base of the built-in schedules: the recipe's parameters go to ``keras_class``."""

    keras_class: str = ""

    def create(self):
        import keras

        return getattr(keras.optimizers.schedules, self.keras_class)(**self.config)


def _schedule(keras_name: str, summary: str, params: dict[str, Param], check=None):
    attrs = {"__doc__": f"{summary} (keras.optimizers.schedules.{keras_name}).",
             "__module__": __name__, "name": keras_name, "keras_class": keras_name,
             "params": params}
    if check is not None:
        def __init__(self, **config):
            KerasSchedule.__init__(self, **config)
            check(self.config)
        attrs["__init__"] = __init__
    return type(keras_name, (KerasSchedule,), attrs)


_INITIAL = Param(float, REQUIRED, **_POSITIVE, doc="the rate at step 0")
_DECAY_STEPS = Param(int, 1, min=1, doc="steps per decay period")

InverseTimeDecay = _schedule("InverseTimeDecay", "rate / (1 + decay_rate * step / decay_steps)", {
    "initial_learning_rate": _INITIAL, "decay_steps": _DECAY_STEPS,
    "decay_rate": Param(float, 1e-8, min=0.0, doc="the decay rate (Keras 2's `decay` with decay_steps 1)"),
    "staircase": Param(bool, False, doc="decay in whole periods"),
})
ExponentialDecay = _schedule("ExponentialDecay", "rate * decay_rate ** (step / decay_steps)", {
    "initial_learning_rate": _INITIAL, "decay_steps": _DECAY_STEPS,
    "decay_rate": Param(float, 0.96, min=0.0, min_exclusive=True, doc="factor per period"),
    "staircase": Param(bool, False, doc="decay in whole periods"),
})
def _check_cosine(config: dict) -> None:
    steps, target = config["warmup_steps"], config["warmup_target"]
    if steps and target is None:
        raise RecipeError(f"warmup_steps is {steps} but warmup_target is not set: Keras would "
                          f"skip the warm-up; give the rate to reach after it "
                          f"(warmup_target: 1.0e-3)", path="CosineDecay.warmup_target")
    if target is not None and not steps:
        raise RecipeError("warmup_target is set but warmup_steps is 0: Keras would ignore it; "
                          "give the number of warm-up steps, or leave warmup_target out",
                          path="CosineDecay.warmup_steps")


CosineDecay = _schedule("CosineDecay", "cosine decay, with an optional linear warm-up", {
    "initial_learning_rate": _INITIAL,
    "decay_steps": Param(int, REQUIRED, min=1, max=10 ** 9,
                         doc="steps over which the rate decays to alpha times itself (after "
                             "any warm-up)"),
    "alpha": Param(float, 0.0, **_UNIT, doc="the final rate as a fraction of the initial"),
    "warmup_target": Param(float, None, nullable=True, **_POSITIVE,
                           doc="the rate reached after warm-up; null: no warm-up"),
    "warmup_steps": Param(int, 0, min=0, max=10 ** 9, doc="steps of linear warm-up"),
}, check=_check_cosine)
PolynomialDecay = _schedule("PolynomialDecay", "polynomial decay to an end rate", {
    "initial_learning_rate": _INITIAL,
    "decay_steps": Param(int, REQUIRED, min=1, max=10 ** 9,
                         doc="steps over which the rate falls to end_learning_rate"),
    "end_learning_rate": Param(float, 1e-4, min=0.0, doc="the rate after decay_steps"),
    "power": Param(float, 1.0, min=0.0, doc="the polynomial's power"),
    "cycle": Param(bool, False, doc="restart after decay_steps"),
})


def _check_piecewise(config: dict) -> None:
    bounds, values = config["boundaries"], config["values"]
    if len(values) != len(bounds) + 1:
        raise RecipeError(f"expected one more value than boundaries, got {len(bounds)} "
                          f"boundaries and {len(values)} values", path="PiecewiseConstantDecay.values")
    if any(a >= b for a, b in zip(bounds, bounds[1:])):
        raise RecipeError(f"expected strictly increasing boundaries, got {bounds}",
                          path="PiecewiseConstantDecay.boundaries")


PiecewiseConstantDecay = _schedule("PiecewiseConstantDecay", "a constant rate per range of steps", {
    "boundaries": Param(list, item_type=int, min=0, doc="the steps where the rate changes"),
    "values": Param(list, item_type=float, min=0.0, doc="the rates: one more than boundaries"),
}, check=_check_piecewise)

SCHEDULES = (InverseTimeDecay, ExponentialDecay, CosineDecay, PolynomialDecay,
             PiecewiseConstantDecay)
