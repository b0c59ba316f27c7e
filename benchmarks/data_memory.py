"""Memory and speed of streaming an image folder through the trainer's data pipeline.

Two measurements, each in its own subprocess so that peak memory is that run's alone:

* ``memory``: a folder of N generated 32x32 RGB PNGs (5,000 and 50,000) read for one shuffled
  epoch in batches of 64 through the real pipeline (``dataset_source`` +
  ``step_batches``, as ``Trainer`` reads it), streaming (``ImageFolderDataset.source()``:
  files listed and header-checked, decoded in ``tf.data``) and, for comparison, in memory
  (``load()`` into a float32 array, as gankit did before). Reported: peak resident memory
  (``ru_maxrss``), the time to list and check the files, and images per second.
* ``step``: the frog DCGAN step (``recipes/frog_dcgan.yaml``, batch 20 unless
  ``--batch-size``) fed by the streaming folder and by the same images in memory, one
  session, the two pipelines taking turns round by round (so a busy moment on a shared
  machine hits both). Reported: median seconds per step of each and their ratio. The folder is
  ``../shared/data/cifar10-frog-train`` when it exists (the 5,000 CIFAR-10 frogs), else 5,000
  generated PNGs.

Usage::

    python benchmarks/data_memory.py                  # about 10 minutes on 2 cores
    python benchmarks/data_memory.py --sizes 5000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FROGS = HERE.parent.parent / "shared" / "data" / "cifar10-frog-train"


def write_folder(folder: Path, n: int) -> Path:
    """``n`` seeded random 32x32 PNGs in ``folder`` (kept between runs)."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.png"))) == n:
        return folder
    rng = np.random.default_rng(n)
    for i in range(n):
        # smooth gradients plus noise: PNG sizes like real photos' (about 3 KB each)
        base = np.linspace(0, 255, 32, dtype=np.float32)[None, :, None]
        pixels = base + rng.normal(0, 20, (32, 32, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"{i:06d}.png")
    return folder


def memory_worker(folder: str, mode: str) -> dict:
    from gankit.training.data import ArraySource, dataset_source, step_batches
    from gankit_datasets.image_folder import ImageFolderDataset

    dataset = ImageFolderDataset(path=folder, height=32, width=32)
    t0 = time.perf_counter()
    if mode == "streaming":
        source = dataset_source(dataset)
    else:
        source = ArraySource(dataset.load())
    prepared = time.perf_counter() - t0
    steps = source.size // 64
    t0 = time.perf_counter()
    for _, batch in step_batches(source, batch_size=64, batches_per_step=1, seed=0,
                                 shuffle=True, start=0, stop=steps):
        batch.images.numpy()
    seconds = time.perf_counter() - t0
    return {"mode": mode, "images": source.size, "prepare_s": round(prepared, 2),
            "images_per_s": round(steps * 64 / seconds),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def step_worker(folder: str, batch: int, rounds: int, steps: int) -> dict:
    import numpy as np

    from gankit.plugin.manager import load_plugins
    from gankit.recipe.validation import load_raw, validate
    from gankit.rundir.run_dir import RunDir
    from gankit.training.data import ArraySource, step_batches
    from gankit.training.loop import Trainer

    plugins = load_plugins()
    recipe_file = HERE.parent / "recipes" / "frog_dcgan.yaml"
    raw = load_raw(str(recipe_file))
    raw["dataset"] = {"type": "image_folder", "path": folder, "height": 32, "width": 32}
    total = 2 * (rounds + 1) * steps
    raw["train"].update(steps=total, batch_size=batch)
    recipe = validate(raw, plugins.registry, source=f"{recipe_file} (benchmark)")
    with tempfile.TemporaryDirectory() as workdir:
        trainer = Trainer(recipe, RunDir(workdir).create(), progress=False).prepare()
    session = trainer.session
    step_fn = session.step_function()
    streaming = trainer.examples
    in_memory = ArraySource(recipe.create("dataset").load())
    feeds = {}
    for name, source in (("streaming", streaming), ("in_memory", in_memory)):
        feeds[name] = iter(step_batches(source, batch_size=batch,
                                        batches_per_step=session.batches_per_step, seed=0,
                                        shuffle=True, start=0, stop=total))

    def run(name: str) -> float:
        t0 = time.perf_counter()
        for _ in range(steps):
            step, real = next(feeds[name])
            values, _ = step_fn(step, real)
            {k: float(v) for k, v in values.items()}
        return (time.perf_counter() - t0) / steps

    for name in feeds:  # warm-up: tracing, compilation, the pipelines' first buffers
        run(name)
    times = {name: [] for name in feeds}
    ratios = []
    for r in range(rounds):
        order = list(feeds) if r % 2 == 0 else list(reversed(list(feeds)))
        for name in order:
            times[name].append(run(name))
        ratios.append(times["streaming"][-1] / times["in_memory"][-1])
    return {"batch": batch, "images": streaming.size, "steps_per_round": steps,
            "rounds": rounds,
            **{f"{name}_s_per_step": round(statistics.median(t), 4) for name, t in times.items()},
            "ratio_streaming_to_in_memory": round(statistics.median(ratios), 3),
            "ratios": [round(v, 3) for v in ratios],
            "frog_step_mean_s": float(np.mean(times["in_memory"]))}


def _subprocess(*args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if done.returncode != 0:
        raise SystemExit(f"worker {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 50000])
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(),
                                                        "gankit_data_memory"),
                        help="where the generated folders are kept")
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round")
    parser.add_argument("--skip-step", action="store_true")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        result = (memory_worker(rest[0], rest[1]) if kind == "memory"
                  else step_worker(rest[0], int(rest[1]), int(rest[2]), int(rest[3])))
        print(json.dumps(result))
        return

    import platform
    print(f"gankit data benchmark on {platform.node()}: {os.cpu_count()} CPUs, python "
          f"{platform.python_version()}")
    print("\nPeak memory of one shuffled epoch in batches of 64 (32x32 RGB PNGs):")
    print(f"{'images':>8} {'mode':>10} {'peak RSS':>10} {'list+check':>11} {'images/s':>9}")
    for n in args.sizes:
        folder = write_folder(Path(args.cache) / f"png_{n}", n)
        for mode in ("streaming", "in_memory"):
            r = _subprocess("--worker", "memory", str(folder), mode)
            print(f"{n:>8} {mode:>10} {r['peak_rss_mb']:>7} MB {r['prepare_s']:>9.1f} s "
                  f"{r['images_per_s']:>9}", flush=True)
    if args.skip_step:
        return
    folder = FROGS if FROGS.is_dir() else write_folder(Path(args.cache) / "png_5000", 5000)
    r = _subprocess("--worker", "step", str(folder), str(args.batch_size), str(args.rounds),
                    str(args.steps))
    print(f"\nFrog DCGAN step, batch {r['batch']}, {r['images']} images of {folder}, "
          f"{r['rounds']} rounds of {r['steps_per_round']} steps (medians):")
    print(f"  streaming folder: {r['streaming_s_per_step']:.4f} s/step")
    print(f"  in memory:        {r['in_memory_s_per_step']:.4f} s/step")
    print(f"  ratio streaming / in memory: {r['ratio_streaming_to_in_memory']:.3f} "
          f"(per round: {', '.join(map(str, r['ratios']))}; target <= 1.05)")


if __name__ == "__main__":
    main()
