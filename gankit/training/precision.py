"""Mixed precision: the Keras dtype policy a session builds its models under.

``train.precision`` names a Keras dtype policy. Under ``mixed_bfloat16`` and
``mixed_float16`` every layer built by the session computes in 16 bits while its variables
stay float32 (Keras casts them on use). The discriminator's scores are cast to float32
before any loss (``GANModels.discriminate``), images and penalties are float32, and the
built-in models end with a float32 activation, as Keras recommends for a model's output.
``mixed_float16`` also scales each model's loss (``updates.py``).

The policy is set only while the models are built and restored afterwards, so it never
reaches other sessions, or anything else, in the same process.

``auto`` (:func:`choose`) picks, per run, the policy that is fastest on the devices the run
trains on, by the rule of :func:`choose_for` (measured with ``benchmarks/frog_dcgan_speed.py``;
docs/performance.md has the figures):

- a CPU: ``mixed_bfloat16`` where it has bfloat16 units (AMX, or AVX-512 BF16), else
  ``float32`` (TensorFlow emulates bfloat16 there, about 10x slower than float32);
- an NVIDIA GPU: ``mixed_bfloat16`` from compute capability 8.0 (Ampere) on,
  ``mixed_float16`` (with loss scaling) on 7.x (Volta, Turing tensor cores), ``float32``
  below.

A forced policy that the hardware only emulates still trains; :func:`emulation_warning`
gives the one-line warning that ``gankit run`` and ``gankit validate`` print.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator, Sequence

from gankit.util import machine

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
"""The Keras dtype policies a session can build its models under."""

AUTO = "auto"
CHOICES = (AUTO, *PRECISIONS)
"""The values of ``train.precision``: ``auto`` or a policy."""

SLOWDOWN = {
    # (policy, device kind): how much slower than float32 a step ran, measured by
    # benchmarks/frog_dcgan_speed.py (docs/performance.md) -- the figure the warning quotes.
    ("mixed_bfloat16", "cpu"): ("about 10x", "a 2-core AMD EPYC with AVX2 only"),
    ("mixed_float16", "cpu"): ("about 6x", "a 2-core AMD EPYC with AVX-512 BF16, no FP16 units"),
}


@dataclass(frozen=True)
class Device:
    """A device a run trains on, as far as the precision rule needs it."""

    kind: str
    """``cpu`` or ``gpu``."""
    name: str = ""
    """The GPU's name (``NVIDIA H100 80GB HBM3``), or the CPU's model."""
    compute_capability: tuple[int, int] | None = None
    """A GPU's (major, minor), where TensorFlow reports it."""


@dataclass(frozen=True)
class Choice:
    """What ``train.precision`` resolved to, and why (kept in run.json and the report)."""

    requested: str
    policy: str
    reason: str
    warning: str | None = None
    """A one-line warning when the policy is only emulated on these devices."""

    def as_dict(self) -> dict:
        return {"requested": self.requested, "policy": self.policy, "reason": self.reason}

    def describe(self) -> str:
        """``mixed_bfloat16 (auto: ...)`` for the start-up line."""
        if self.requested == AUTO:
            return f"{self.policy} (auto: {self.reason})"
        return f"{self.policy} (set in the recipe)"


def choose_for(requested: str, devices: Sequence[Device], cpu: machine.CPU | None = None) -> Choice:
    """Resolve ``requested`` (``auto`` or a policy) for ``devices`` (no TensorFlow needed).

    With several devices (``train.distribute``) every one must run the policy fast; the
    slowest device decides.
    """
    cpu = cpu or machine.cpu()
    if requested not in CHOICES:
        raise ValueError(f"precision must be one of {', '.join(CHOICES)}, got {requested!r}")
    devices = list(devices) or [Device("cpu", cpu.model)]
    if requested != AUTO:
        check_usable(requested, cpu, on_cpu=all(d.kind == "cpu" for d in devices))
        warning = emulation_warning(requested, devices, cpu)
        return Choice(requested, requested, "set in the recipe", warning)
    picks = [_fastest(device, cpu) for device in devices]
    if len({policy for policy, _ in picks}) > 1:
        return Choice(AUTO, "float32", "the devices of train.distribute differ in what they "
                                       "run fast")
    return Choice(AUTO, *picks[0])


def check_usable(policy: str, cpu: machine.CPU | None = None, on_cpu: bool = True) -> None:
    """Refuse a policy that would crash TensorFlow on this CPU (no TensorFlow needed).

    ``mixed_bfloat16`` on a CPU whose bfloat16 units ``ONEDNN_MAX_CPU_ISA`` hides from
    oneDNN: TensorFlow still hands bfloat16 matrix multiplications to oneDNN, which has no
    kernel for them at that level, and the process aborts (measured on an AMD EPYC with
    ``ONEDNN_MAX_CPU_ISA=AVX2``). ``on_cpu`` False (a GPU trains) skips the check.

    Raises:
        GankitError: with the one-line reason.
    """
    from gankit.errors import GankitError

    cpu = cpu or machine.cpu()
    if on_cpu and policy == "mixed_bfloat16" and cpu.bf16_flags and not cpu.bf16_units:
        raise GankitError(f"train.precision mixed_bfloat16 cannot run with ONEDNN_MAX_CPU_ISA="
                          f"{cpu.isa_cap}: it keeps oneDNN from this CPU's "
                          f"{machine.unit_names(cpu.bf16_flags)}, and TensorFlow aborts in "
                          f"its first bfloat16 matrix multiplication; unset "
                          f"ONEDNN_MAX_CPU_ISA, or use train.precision: auto (float32 here)")


def _fastest(device: Device, cpu: machine.CPU) -> tuple[str, str]:
    if device.kind == "gpu":
        cc = device.compute_capability
        label = f"{device.name or 'GPU'}, compute capability " + (
            f"{cc[0]}.{cc[1]}" if cc else "unknown")
        if cc is None:
            return "float32", f"{label}: no tensor-core precision known"
        if cc >= (8, 0):
            return "mixed_bfloat16", f"{label}: bfloat16 tensor cores"
        if cc >= (7, 0):
            return "mixed_float16", f"{label}: float16 tensor cores, with loss scaling"
        return "float32", f"{label}: no tensor cores"
    units = cpu.bf16_units
    if units:
        return "mixed_bfloat16", f"this CPU has {machine.unit_names(units)}"
    if cpu.bf16_flags:
        return "float32", (f"ONEDNN_MAX_CPU_ISA={cpu.isa_cap} keeps oneDNN from this CPU's "
                           f"{machine.unit_names(cpu.bf16_flags)}")
    if not cpu.known:
        return "float32", "this CPU's bfloat16 units are unknown"
    return "float32", ("this CPU has no AMX or AVX-512 BF16: bfloat16 would be emulated, "
                       "about 10x slower")


def emulation_warning(policy: str, devices: Sequence[Device] | None = None,
                      cpu: machine.CPU | None = None) -> str | None:
    """The one-line warning for a forced ``policy`` that ``devices`` only emulate, or None.

    ``devices`` None means the CPU alone (what ``gankit validate`` can tell without
    TensorFlow: it passes None only where no GPU can be present).
    """
    cpu = cpu or machine.cpu()
    devices = list(devices) if devices else [Device("cpu", cpu.model)]
    if policy in ("float32", AUTO) or any(d.kind != "cpu" for d in devices):
        return None  # a GPU: TensorFlow runs 16-bit policies there (slower ones are rare)
    if policy == "mixed_bfloat16" and (cpu.bf16_units or not cpu.known):
        return None
    slower, measured_on = SLOWDOWN[(policy, "cpu")]
    better, _ = _fastest(devices[0], cpu)
    return (f"train.precision {policy} is emulated on this CPU, {cpu.describe()}: a step "
            f"ran {slower} slower than float32 on {measured_on} (docs/performance.md); "
            f"train.precision: auto chooses {better} here")


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Make ``name`` Keras' global dtype policy inside the block, then restore the previous one.

    Layers take the global policy when they are created, so models built inside the block
    keep it for good (and store it in a saved ``.keras`` file).

    Raises:
        ValueError: for a name outside :data:`PRECISIONS`.
    """
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    import keras  # noqa: PLC0415 - TensorFlow loads only when models are built

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def uses_loss_scaling(name: str) -> bool:
    """Whether a precision needs loss scaling (float16's range is too narrow for small
    gradients; bfloat16 has float32's range and needs none)."""
    return name == "mixed_float16"


def devices_of(distribution) -> list[Device]:
    """The devices a session trains on: those of its ``tf.distribute`` strategy, or the
    first GPU TensorFlow sees (where it places a step), else the CPU."""
    import tensorflow as tf

    names = list(getattr(distribution, "device_names", lambda: [])())
    gpus = tf.config.list_physical_devices("GPU")
    if not names:
        names = ["/gpu:0"] if gpus else ["/cpu:0"]
    found = []
    for name in names:
        if "gpu" not in name.lower():
            found.append(Device("cpu", machine.cpu().model))
            continue
        index = int(name.rsplit(":", 1)[-1]) if name.rsplit(":", 1)[-1].isdigit() else 0
        details = {}
        if index < len(gpus):
            try:
                details = tf.config.experimental.get_device_details(gpus[index])
            except (ValueError, RuntimeError):
                details = {}
        cc = details.get("compute_capability")
        found.append(Device("gpu", details.get("device_name", ""),
                            tuple(cc) if cc else None))
    return found


def choose(requested: str, distribution=None) -> Choice:
    """Resolve ``train.precision`` for the devices a session trains on (loads TensorFlow)."""
    if requested == "float32":
        return Choice(requested, requested, "set in the recipe")
    return choose_for(requested, devices_of(distribution))
