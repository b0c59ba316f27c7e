"""The GPU check: what only a GPU can show, in one script of under 8 minutes, one table.

1. ``tests/device/`` (skipped on a CPU): ``precision: auto`` by compute capability,
   ``mixed_float16`` with loss scaling, XLA on the whole step, op determinism, ``mirrored``
   on one GPU, exact resume.
2. Steps/s of the frog DCGAN against the article's loop at batch 2, 20 and 64 in float32,
   ``mixed_bfloat16`` and ``mixed_float16`` (``benchmarks/frog_dcgan_speed.py``, 3 rounds).
3. Two minutes of ``recipes/frog_fast.yaml`` (``--data FOLDER`` of frogs, or 5,000 random
   32x32 PNGs made here: the steps are what is measured, not the frogs), with the precision
   ``auto`` chose.

Usage (a GPU machine with ``pip install -e ".[test]"`` and a CUDA build of TensorFlow,
``pip install "tensorflow[and-cuda]"``)::

    python benchmarks/device_check.py [--data FOLDER] [--out DIR] [--minutes 2]

It prints the table and writes it, with every figure, to ``DIR/device_check.md`` and
``DIR/device_check.json`` (default: the current folder). On a machine without a GPU it says
so and stops (exit 1), unless ``--allow-cpu`` (to try the script itself).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


def _gpus() -> list[dict]:
    code = ("import json, tensorflow as tf; print(json.dumps([dict(name=g.name, **{k: "
            "(list(v) if isinstance(v, tuple) else v) for k, v in "
            "tf.config.experimental.get_device_details(g).items()}) for g in "
            "tf.config.list_physical_devices('GPU')]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=300)
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return []


def _tests(log) -> dict:
    t0 = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", "tests/device", "-q", "-rs",
                             "-o", "addopts=", "-p", "no:cacheprovider"], cwd=ROOT,
                            capture_output=True, text=True, timeout=360)
    log.write(result.stdout + result.stderr)
    counts = {word: int(n) for n, word in re.findall(
        r"(\d+) (passed|failed|skipped|error|errors)", result.stdout.splitlines()[-1]
        if result.stdout.strip() else "")}
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    return {"exit": result.returncode, "counts": counts, "failed": failed,
            "seconds": round(time.perf_counter() - t0, 1)}


def _speed(log, json_file: Path, batch_sizes: list[int]) -> list[dict]:
    variants = ["transcription"] + [f"gankit:prec={p}" for p in PRECISIONS] + ["gankit:prec=auto"]
    steps = {2: "8", 20: "4", 64: "2"}
    command = [sys.executable, str(ROOT / "benchmarks" / "frog_dcgan_speed.py"),
               "--batch-sizes", *map(str, batch_sizes),
               "--steps", *(steps.get(b, "2") for b in batch_sizes), "--repeats", "3",
               "--warmup", "2", "--no-convs", "--json", str(json_file), "--variants", *variants]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=420)
    log.write(result.stdout + result.stderr)
    if result.returncode != 0 or not json_file.is_file():
        return [{"error": (result.stderr or result.stdout)[-300:]}]
    return json.loads(json_file.read_text())["rows"]


def _frog_fast(log, data: str | None, minutes: float, work: Path) -> dict:
    if data is None:
        from gankit.testing import write_image_folder

        data = str(write_image_folder(work / "random_frogs", 5000, 32, 32))
    run = work / "frog_fast"
    command = [sys.executable, "-m", "gankit", "run", str(ROOT / "recipes" / "frog_fast.yaml"),
               "--out", str(run), "--quiet",
               "--set", f"dataset={{type: image_folder, path: {data}, scale: [-1.0, 1.0]}}",
               "--set", f"train.max_minutes={minutes}"]
    t0 = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=60 * minutes + 240)
    log.write(result.stdout + result.stderr)
    try:
        status = json.loads((run / "run.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {"error": result.stderr[-300:]}
    return {"exit": result.returncode, "steps": status.get("step"),
            "seconds": status.get("seconds"), "precision": status.get("precision"),
            "wall": round(time.perf_counter() - t0, 1), "data": data}


def _gpu_name(gpu: dict) -> str:
    capability = ".".join(map(str, gpu.get("compute_capability") or ["?"]))
    return f"{gpu.get('device_name', gpu['name'])} (compute capability {capability})"


def _table(info: dict) -> str:
    lines = [f"GPU: {', '.join(map(_gpu_name, info['gpus'])) or 'none'}", "",
             "| check | result |", "|---|---|"]
    tests = info["tests"]
    counts = ", ".join(f"{n} {word}" for word, n in tests["counts"].items()) or "no result"
    failed = "".join(f"; {line}" for line in tests["failed"])
    lines.append(f"| tests/device | {counts} in {tests['seconds']} s{failed} |")
    ff = info["frog_fast"]
    if "error" in ff:
        lines.append(f"| frog_fast, {info['minutes']} min | failed: {ff['error']} |")
    else:
        rate = ff["steps"] / ff["seconds"] if ff.get("seconds") else 0
        lines.append(f"| frog_fast, {info['minutes']} min | {ff['steps']} steps ({rate:.1f} "
                     f"steps/s), precision {ff['precision']['policy']} "
                     f"({ff['precision']['reason']}) |")
    lines += ["", "| batch | variant | steps/s | vs article loop |", "|---:|---|---:|---:|"]
    for row in info["speed"]:
        if "error" in row:
            lines.append(f"| | benchmark failed: {row['error']} | | |")
            continue
        ratio = f"{row['ratio']:.2f}x" if row.get("ratio") else "-"
        lines.append(f"| {row['batch']} | {row['variant']} | {row['steps_per_s']:.2f} | {ratio} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="a folder of frog images for frog_fast (default: "
                                       "5,000 random images made here)")
    parser.add_argument("--out", default=".", help="where device_check.md and .json go")
    parser.add_argument("--minutes", type=float, default=2.0, help="frog_fast's budget")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[2, 20, 64])
    parser.add_argument("--allow-cpu", action="store_true", help="run without a GPU too")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    gpus = _gpus()
    if not gpus and not args.allow_cpu:
        print("device_check: TensorFlow sees no GPU here (a CUDA build of TensorFlow: "
              "pip install 'tensorflow[and-cuda]'); nothing to check", file=sys.stderr)
        return 1
    info = {"gpus": gpus, "minutes": args.minutes}
    with open(out / "device_check.log", "w") as log, tempfile.TemporaryDirectory() as work:
        print("1/3 tests/device ...", flush=True)
        info["tests"] = _tests(log)
        print(f"2/3 frog DCGAN speed at batch {', '.join(map(str, args.batch_sizes))} ...",
              flush=True)
        info["speed"] = _speed(log, out / "frog_dcgan_speed.json", args.batch_sizes)
        print(f"3/3 frog_fast for {args.minutes:g} minutes ...", flush=True)
        info["frog_fast"] = _frog_fast(log, args.data, args.minutes, Path(work))
    info["seconds"] = round(time.perf_counter() - t0, 1)
    table = _table(info)
    print(table)
    print(f"(total {info['seconds']} s)")
    (out / "device_check.md").write_text(table + "\n")
    (out / "device_check.json").write_text(json.dumps(info, indent=1))
    return 0 if info["tests"]["exit"] in (0, 5) and "error" not in info["frog_fast"] else 1


if __name__ == "__main__":
    sys.exit(main())
