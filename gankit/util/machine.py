"""What this machine computes fast, read without TensorFlow: the CPU's model and the flags
that decide whether bfloat16 runs in hardware.

``train.precision: auto`` (``gankit.training.precision``) and ``gankit validate``'s warning
about an emulated precision read the CPU from here, so they answer before TensorFlow
loads. What each flag is worth was measured with ``benchmarks/frog_dcgan_speed.py``
(docs/performance.md):

* ``amx_bf16`` (Intel AMX tiles, Sapphire Rapids and later): bfloat16 convolutions about
  6x faster than float32;
* ``avx512_bf16`` without AMX (AMD EPYC Zen 4, Intel Cooper Lake): bfloat16 about 2x
  faster than float32 (oneDNN's ``vdpbf16ps`` kernels);
* neither (AVX2/FMA CPUs such as an AMD EPYC Zen 2/3): TensorFlow emulates bfloat16 in
  float32 and converts around every operation: about 10x *slower* than float32.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BF16_UNITS = ("amx_bf16", "avx512_bf16")
"""The x86 CPU flags (``/proc/cpuinfo``) of bfloat16 arithmetic in hardware, fastest first.
Other CPUs (aarch64's ``bf16`` among them) are not counted: their bfloat16 speed under
TensorFlow has not been measured here."""


@dataclass(frozen=True)
class CPU:
    """The CPU as ``/proc/cpuinfo`` describes it (empty flags where it cannot be read)."""

    model: str
    arch: str
    flags: frozenset[str]
    known: bool = True
    """False when ``/proc/cpuinfo`` could not be read (not Linux): the flags are unknown."""
    isa_cap: str | None = None
    """``ONEDNN_MAX_CPU_ISA`` where it is set: oneDNN (TensorFlow's CPU kernels) uses no
    instruction above it, so units above it are as good as absent."""

    @property
    def bf16_units(self) -> tuple[str, ...]:
        """The bfloat16 units this CPU has and oneDNN may use, of :data:`BF16_UNITS`."""
        if self.arch not in ("x86_64", "AMD64", "i686", "i386"):
            return ()
        return tuple(unit for unit in self.bf16_flags if _allowed(unit, self.isa_cap))

    @property
    def bf16_flags(self) -> tuple[str, ...]:
        """The bfloat16 flags of :data:`BF16_UNITS` the CPU reports, usable or not."""
        return tuple(unit for unit in BF16_UNITS if unit in self.flags)

    def describe(self) -> str:
        """A short phrase: the model and its bfloat16 units, for one-line messages."""
        units = self.bf16_units
        if units:
            return f"{self.model} (with {unit_names(units)})"
        if not self.known:
            return f"{self.model} (its bfloat16 units are unknown)"
        if self.bf16_flags:
            return (f"{self.model} ({unit_names(self.bf16_flags)} kept from oneDNN by "
                    f"ONEDNN_MAX_CPU_ISA={self.isa_cap})")
        return f"{self.model} (no AMX or AVX-512 BF16)"


# oneDNN's instruction-set names (ONEDNN_MAX_CPU_ISA), in order; a cap at or above the
# first that has a unit lets oneDNN use it.
_ISAS = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI",
         "AVX512_CORE_BF16", "AVX10_1_512", "AVX512_CORE_FP16", "AVX10_1_512_AMX",
         "AVX512_CORE_AMX", "AVX10_1_512_AMX_FP16", "AVX512_CORE_AMX_FP16", "AVX10_2_512",
         "AVX10_2_512_AMX_2")
_NEEDS = {"avx512_bf16": "AVX512_CORE_BF16", "amx_bf16": "AVX10_1_512_AMX"}


def _allowed(unit: str, cap: str | None) -> bool:
    if cap is None or cap.upper() in ("", "ALL", "DEFAULT"):
        return True
    cap = cap.upper()
    if cap not in _ISAS:
        return True  # a name oneDNN does not know either: it ignores it
    return _ISAS.index(cap) >= _ISAS.index(_NEEDS[unit])


def unit_names(units: tuple[str, ...]) -> str:
    names = {"amx_bf16": "AMX", "avx512_bf16": "AVX-512 BF16"}
    return " and ".join(names.get(u, u) for u in units)


@functools.lru_cache(maxsize=1)
def cpu() -> CPU:
    """This machine's CPU (read once per process)."""
    return parse_cpuinfo(_read("/proc/cpuinfo"), platform.machine(),
                         os.environ.get("ONEDNN_MAX_CPU_ISA") or None)


def parse_cpuinfo(text: str, arch: str, isa_cap: str | None = None) -> CPU:
    """A :class:`CPU` from the text of ``/proc/cpuinfo`` (``""``: unknown)."""
    model = re.search(r"^(?:model name|Model|Hardware)\s*:\s*(.+)$", text, re.M)
    flags = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", text, re.M)
    name = model.group(1).strip() if model else (platform.processor() or arch or "unknown CPU")
    return CPU(model=name[:200], arch=arch, known=flags is not None,
               flags=frozenset(flags.group(1).split()) if flags else frozenset(),
               isa_cap=isa_cap)


def gpu_may_be_present() -> bool:
    """Whether an NVIDIA GPU may be visible to TensorFlow, judged without loading it (the
    driver's device files). False means surely none; True means TensorFlow must tell."""
    try:
        return Path("/dev/nvidia0").exists() or any(Path("/proc/driver/nvidia/gpus").iterdir())
    except OSError:
        return False


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(1 << 20)
    except OSError:
        return ""


_PACKAGES = {"tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tf-nightly"),
             "keras": ("keras",), "numpy": ("numpy",), "gankit": ("gankit",)}


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """What the run ran on, without importing TensorFlow (for ``run.json``'s ``machine``).

    Returns:
        a flat JSON-serializable dict: ``platform``, ``python``, ``cpu`` (model name),
        ``cores`` (os.cpu_count), ``cores_usable`` (this process's affinity), ``memory_gib``,
        ``amx_bf16`` and ``avx512_bf16`` (CPU flags, None where unknown), and the versions of
        ``tensorflow``, ``keras``, ``numpy`` and ``gankit`` (None if not installed).
    """
    found = cpu()
    flags = found.flags if found.known else None
    memory = re.search(r"^MemTotal:\s*(\d+)\s*kB", _read("/proc/meminfo"), re.M)
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": found.model,
        "cores": os.cpu_count(),
        "cores_usable": (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                         else os.cpu_count()),
        "memory_gib": round(int(memory.group(1)) / 2**20, 1) if memory else None,
        "amx_bf16": ("amx_bf16" in flags) if flags is not None else None,
        "avx512_bf16": ("avx512_bf16" in flags) if flags is not None else None,
    }
    for key, distributions in _PACKAGES.items():
        info[key] = next((v for v in map(_version, distributions) if v), None)
    return info
