"""Steps per second of ``gankit run`` on the frog DCGAN with ``train.steps_per_call: 1``
against ``auto`` (several steps per compiled call), through the real ``Trainer.run``: every
callback runs and every file is written (losses.csv, the sample pair every 2 steps, grids,
checkpoints, TensorBoard).

Two settings of the frog recipe are timed:

* ``recipe``: the recipe as it is (``sample_every: 2``, ``checkpoint_every: 2``,
  ``grid_every: 100``): a checkpoint every 2 steps caps calls at 2 steps;
* ``no-ckpt``: the same with ``checkpoint_every`` and ``grid_every`` beyond the timed steps,
  so that only the sample pair every 2 steps (which a call returns, no boundary) and the
  loss log run between calls.

The dataset is 240 random 32x32 images (an in-memory dataset registered as a plugin). Each
run is its own process; the configurations take turns (A, B, A, B, ...), so a busy moment
on a shared machine hits both alike. A run's rate counts the steps after its warm-up steps
(which include compiling), from the end of a call to the end of the last one; the table
gives the median over the rounds and the median of the per-round ratios.

    python benchmarks/steps_per_call.py                  # batch 2 and 20, both settings
    python benchmarks/steps_per_call.py --batch-sizes 2 --rounds 5 --settings no-ckpt
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RECIPE = os.path.join(HERE, "..", "recipes", "frog_dcgan.yaml")
STEPS = {2: (12, 72), 20: (4, 16)}  # batch: (warm-up steps, total steps)


def _plugin():
    import types

    import numpy as np

    import gankit
    from gankit import Dataset, Param

    class RandomImages(Dataset):
        """Uniform random images in [0, 1) (a stand-in for the CIFAR-10 frogs)."""

        name = "random_images"
        params = {"count": Param(int, 240, min=1, doc="number of images")}
        image_shape = (32, 32, 3)
        value_range = (0.0, 1.0)

        def load(self):
            rng = np.random.default_rng(0)
            return rng.uniform(0, 1, (self.config["count"], 32, 32, 3)).astype("float32")

    plugin = types.ModuleType("gankit_benchmark_steps")
    plugin.gankit_register_components = gankit.hookimpl(lambda register: register(RandomImages))
    return plugin


def worker(batch: int, steps_per_call: str, setting: str, warm: int, total: int) -> dict:
    from gankit.interfaces import Callback
    from gankit.plugin.manager import load_plugins
    from gankit.recipe.validation import load_raw, validate
    from gankit.rundir.run_dir import RunDir
    from gankit.training.loop import Trainer

    plugins = load_plugins(extra=[("benchmark", _plugin())])
    raw = load_raw(RECIPE)
    raw["dataset"] = {"type": "random_images"}
    raw["train"].update(steps=total, batch_size=batch,
                        steps_per_call=steps_per_call if steps_per_call == "auto"
                        else int(steps_per_call))
    if setting == "no-ckpt":
        raw["train"].update(checkpoint_every=10 * total, grid_every=10 * total)
    recipe = validate(raw, plugins.registry, source=f"{RECIPE} (benchmark)")

    class Clock(Callback):
        name = "clock"

        def __init__(self):
            self.config, self.start, self.calls, self.sizes = {}, None, 0, []

        def needs_boundary(self, step):
            return False

        def on_step_end(self, step, logs):
            done = int(self.run.session.step_counter.numpy())  # where the call ended
            if step == done:
                self.calls += 1
                self.sizes.append(done)
            if self.start is None and step >= warm:
                self.start = (time.perf_counter(), done)
            self.end = time.perf_counter()

    clock = Clock()
    with tempfile.TemporaryDirectory() as folder:
        run = RunDir(os.path.join(folder, "run")).create()
        run.write_recipe(recipe.to_dict())
        Trainer(recipe, run, progress=False, callbacks=[clock]).run()
    t0, done = clock.start
    ends = clock.sizes
    sizes = [b - a for a, b in zip([0] + ends[:-1], ends)]
    return {"steps_per_s": (total - done) / (clock.end - t0), "calls": clock.calls,
            "median_call_steps": statistics.median(sizes[1:] or sizes),
            "max_call_steps": max(sizes)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[2, 20],
                        choices=sorted(STEPS))
    parser.add_argument("--settings", nargs="+", default=["no-ckpt", "recipe"],
                        choices=["no-ckpt", "recipe"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", nargs="+", default=["1", "auto"],
                        help="values of train.steps_per_call (the first is the baseline)")
    parser.add_argument("--steps", type=int, nargs=2, metavar=("WARM", "TOTAL"),
                        help="warm-up and total steps of each run (default: 12 72 at batch 2, "
                             "4 16 at batch 20)")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        batch, spc, setting, warm, total = args.worker
        print(json.dumps(worker(int(batch), spc, setting, int(warm), int(total))))
        return 0
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    print(f"command: python benchmarks/steps_per_call.py {' '.join(argv or sys.argv[1:])}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results = {}
    for batch in args.batch_sizes:
        for setting in args.settings:
            for r in range(args.rounds):
                for variant in args.variants:
                    warm, total = args.steps or STEPS[batch]
                    out = subprocess.run(
                        [sys.executable, __file__, "--worker", str(batch), variant, setting,
                         str(warm), str(total)],
                        capture_output=True, text=True, env=env, check=False)
                    if out.returncode:
                        print(out.stderr[-3000:], file=sys.stderr)
                        return 1
                    res = json.loads(out.stdout.strip().splitlines()[-1])
                    results.setdefault((batch, setting, variant), []).append(res)
                    print(f"  batch {batch} {setting} round {r + 1}: steps_per_call={variant}: "
                          f"{res['steps_per_s']:.3f} steps/s, {res['calls']} calls (median "
                          f"{res['median_call_steps']:g} steps, max {res['max_call_steps']})",
                          flush=True)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print(f"{'batch':>5} {'setting':8} {'steps_per_call':>14} {'steps/s':>8} {'(min-max)':>13} "
          f"{'ratio':>6} {'steps/call':>10}")
    base = args.variants[0]
    for batch in args.batch_sizes:
        for setting in args.settings:
            for variant in args.variants:
                runs = results[(batch, setting, variant)]
                rates = [x["steps_per_s"] for x in runs]
                ratio = statistics.median(
                    a["steps_per_s"] / b["steps_per_s"]
                    for a, b in zip(runs, results[(batch, setting, base)]))
                print(f"{batch:>5} {setting:8} {variant:>14} {statistics.median(rates):8.3f} "
                      f"({min(rates):.3f}-{max(rates):.3f}) {ratio:5.2f}x "
                      f"{statistics.median(x['median_call_steps'] for x in runs):>10g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
