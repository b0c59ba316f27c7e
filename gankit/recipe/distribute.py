"""The ``train.distribute`` section: its parameters and what it asks of the rest of ``train``
(docs/scaling.md). TF-free: recipe validation checks it before TensorFlow loads; the engine
that runs it is :mod:`gankit.training.distribute`."""

from __future__ import annotations

import re
from typing import Any

from gankit.errors import RecipeError, did_you_mean
from gankit.params import Param, check_params

TYPES = ("none", "mirrored", "multi_worker")
_DEVICE = re.compile(r"(/(job:[\w-]+|replica:\d+|task:\d+))*/?(device:)?"
                     r"(cpu|gpu|tpu|xla_cpu|xla_gpu):\d{1,4}", re.IGNORECASE)
COMMUNICATIONS = ("auto", "ring", "nccl")

PARAMS: dict[str, dict[str, Param]] = {
    "none": {},
    "mirrored": {
        "devices": Param(list, None, nullable=True, item_type=str,
                         doc="the devices to train on, e.g. [/gpu:0, /gpu:1]; null: every GPU "
                             "of the machine (the CPU if it has none)"),
    },
    "multi_worker": {
        "communication": Param(str, "auto", choices=COMMUNICATIONS,
                               doc="how the workers exchange gradients: ring (gRPC), nccl "
                                   "(GPUs) or auto"),
    },
}
"""The keys each ``train.distribute`` type takes besides ``type``."""


# -- validation (no TensorFlow) ----------------------------------------------------------------

def check_distribute(value: Any, path: str = "train.distribute",
                     source: str | None = None) -> dict[str, Any]:
    """The normalised ``train.distribute``: ``{"type": ..., <that type's keys>}``.

    Accepts a type name (``mirrored``) or a mapping (``{type: mirrored, devices: [...]}``).

    Raises:
        RecipeError: an unknown type or key, or a malformed value.
    """
    def fail(message: str, key: str | None = None):
        raise RecipeError(message, path=f"{path}.{key}" if key else path, source=source)

    if isinstance(value, str):
        value = {"type": value}
    if not isinstance(value, dict):
        fail(f"expected one of {', '.join(TYPES)} or a mapping {{type: ..., ...}}, got "
             f"{type(value).__name__} {value!r}")
    kind = value.get("type")
    if kind is None:
        fail(f"missing key 'type'; expected one of {', '.join(TYPES)}")
    if kind not in TYPES:
        fail(f"unknown type {kind!r}{did_you_mean(str(kind), TYPES)}; valid types: "
             f"{', '.join(TYPES)}", "type")
    given = {k: v for k, v in value.items() if k != "type"}
    if given and not PARAMS[kind]:
        fail(f"type {kind} takes no other keys", str(next(iter(given))))
    config = check_params(PARAMS[kind], given, path, source=source)
    devices = config.get("devices")
    if devices is not None:
        if not devices:
            fail("expected at least one device (or null for every GPU)", "devices")
        for i, device in enumerate(devices):
            if not device.strip():
                fail("expected a device name such as /gpu:0, got an empty string",
                     f"devices[{i}]")
            if not _DEVICE.fullmatch(device.strip()):
                fail(f"expected a device name such as /gpu:0 or /cpu:0, got "
                     f"{device[:60]!r}", f"devices[{i}]")
        if len(set(devices)) != len(devices):
            fail(f"a device is listed twice: {devices}", "devices")
    return {"type": kind, **config}


def check_train(train, source: str | None = None) -> None:
    """What ``train.distribute`` asks of the rest of ``train`` (the validated section).

    Raises:
        RecipeError: ``xla: on`` with a distribution, or a batch that the listed devices
            cannot share equally.
    """
    config = train.distribute
    if config["type"] == "none":
        return
    if train.xla == "on":
        raise RecipeError(f"xla: on compiles the whole step, which train.distribute: "
                          f"{config['type']} cannot do across replicas; use auto or off",
                          path="train.xla", source=source)
    calls = train.steps_per_call
    if isinstance(calls, int) and calls > 1:
        raise RecipeError(f"train.distribute: {config['type']} runs one step per call; set "
                          f"steps_per_call to 1 or auto", path="train.steps_per_call",
                          source=source)
    devices = config.get("devices")
    if devices and train.batch_size % len(devices):
        raise RecipeError(f"train.batch_size is the global batch and must divide equally "
                          f"among the {len(devices)} devices of train.distribute.devices; "
                          f"got {train.batch_size}", path="train.batch_size", source=source)
