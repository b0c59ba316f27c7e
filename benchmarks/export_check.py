"""Parity, size and single-image latency of `gankit export`'s formats, on this machine.

For each generator (the article's frog DCGAN, `dcgan`, the conditional `resnet`, and the
frog DCGAN built under mixed_bfloat16) it exports every format whose packages are
installed, runs each export in its own runtime on the same 64 latents, and compares the
uint8 images with what gankit's own mapping of the Keras generator gives. Prints one row
per (model, format) and the machine. Run: python benchmarks/export_check.py
"""

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in out.splitlines()
                     if line.startswith("Model name"))
    except (OSError, StopIteration):
        model = platform.processor()
    flags = open("/proc/cpuinfo").read()
    return f"{model}; " + ", ".join(f for f in ("avx2", "avx512_bf16", "amx_bf16") if f in flags)


def runner(fmt, path, conditional):
    if fmt == "saved_model":
        import tensorflow as tf
        model = tf.saved_model.load(str(path))
        return (lambda z, y: model.serve([z, y]).numpy()) if conditional else \
            (lambda z, y: model.serve(z).numpy()), model
    if fmt == "keras":
        import keras
        model = keras.saving.load_model(path)
        return (lambda z, y: np.asarray(model([z, y]) if conditional else model(z))), model
    if fmt == "onnx":
        import onnxruntime as ort
        session = ort.InferenceSession(str(path))
        return (lambda z, y: session.run(None, {"latent": z, **({"label": y} if conditional
                                                                else {})})[0]), session
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=str(path))
    signature = interpreter.get_signature_runner()

    def run(z, y):
        outs = [next(iter(signature(latent=z[i:i + 1], **({"label": y[i:i + 1]} if conditional
                                                          else {})).values()))
                for i in range(len(z))]
        return np.concatenate(outs)
    return run, interpreter


def main():
    import keras

    from gankit import GankitError, create
    from gankit.app.export import FORMATS, export, missing_packages, plan_export
    from gankit.util.images import to_uint8

    print(f"machine: {cpu()}; keras {keras.__version__}")
    models = [
        ("frog_dcgan", {"type": "frog_dcgan"}, None),
        ("dcgan", {"type": "dcgan", "latent_dim": 128}, None),
        ("resnet (10 classes)", {"type": "resnet", "num_classes": 10}, None),
        ("frog_dcgan bf16", {"type": "frog_dcgan"}, "mixed_bfloat16"),
    ]
    print(f"{'model':22} {'format':12} {'max diff':>8} {'pixels off':>10} {'size MB':>8} "
          f"{'1 image ms':>10}")
    for label, section, policy in models:
        keras.config.set_dtype_policy(policy or "float32")
        keras.utils.set_random_seed(0)
        generator = create("generator", section)
        model = generator.build()
        keras.config.set_dtype_policy("float32")
        conditional = generator.num_classes > 0
        rng = np.random.default_rng(0)
        z = rng.standard_normal((64, generator.latent_dim)).astype(np.float32)
        y = (np.arange(64) % max(generator.num_classes, 1)).astype(np.int32)
        expected = to_uint8(np.asarray(model([z, y] if conditional else z, training=False),
                                       np.float32), (-1.0, 1.0))
        with tempfile.TemporaryDirectory() as folder:
            source = Path(folder) / "g.keras"
            model.save(source)
            for fmt in FORMATS:
                if missing_packages(fmt):
                    print(f"{label:22} {fmt:12} skipped: {', '.join(missing_packages(fmt))}")
                    continue
                suffix = {"saved_model": "", "onnx": ".onnx", "litert": ".tflite",
                          "keras": ".keras"}[fmt]
                plan = plan_export(source, fmt, out=Path(folder) / f"out-{fmt}{suffix}")
                try:
                    export(plan)
                except GankitError as exc:
                    print(f"{label:22} {fmt:12} refused: {exc}")
                    continue
                run, keep = runner(fmt, plan.out, conditional)
                got = run(z, y)
                diff = np.abs(got.astype(int) - expected.astype(int))
                size = (sum(f.stat().st_size for f in plan.out.rglob("*") if f.is_file())
                        if plan.out.is_dir() else plan.out.stat().st_size) / 1e6
                times = []
                for i in range(30):
                    t = time.perf_counter()
                    run(z[i:i + 1], y[i:i + 1])
                    times.append(time.perf_counter() - t)
                print(f"{label:22} {fmt:12} {diff.max():8d} {(diff > 0).mean():10.5f} "
                      f"{size:8.2f} {1000 * statistics.median(times[5:]):10.2f}", flush=True)
                del keep


if __name__ == "__main__":
    sys.exit(main())
