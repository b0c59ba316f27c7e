"""The search behind recipes/frog_fast.yaml: which recipe makes the best frogs in a fixed
number of CPU-minutes (docs/frog_fast.md has the results and how to read them).

Each trial is a base recipe plus ``--set`` overrides, trained with ``gankit run`` for
``--minutes`` of wall-clock (``train.max_minutes``) on ``--train`` (a folder of frogs), then
scored with ``gankit evaluate`` (FID and KID of ``-n`` generated images against
``--reference``, a folder of frogs the trial never trained on, in the offline classifier's
features: ``gankit train-classifier``). One trial runs at a time: they are timed, so give
the machine to the sweep.

    python benchmarks/frog_fast_sweep.py --train FROGS_A --reference FROGS_B \\
        --extractor cifar10_classifier.keras --minutes 5 --out sweep/

Results go to ``OUT/results.jsonl`` (one line per trial), and the table of all of them is
printed at the end (and by ``--table``). A trial already in the results is not run again,
so an interrupted sweep continues where it stopped; ``--only NAME`` runs some trials.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAST = "benchmarks/frog_fast_sweep_base.yaml"  # the sweep's starting point
FINAL = "recipes/frog_fast.yaml"  # what it found
ARTICLE = "recipes/frog_dcgan.yaml"

W32 = ["generator.base_filters=32", "discriminator.base_filters=32"]
TTUR = ["optimizers.discriminator.learning_rate=4.0e-4", "optimizers.generator.learning_rate=1.0e-4"]

#: name -> (base recipe, overrides, what the trial asks). The base trial is frog_fast.yaml
#: as committed; every other one changes one thing (or a few that belong together).
TRIALS: dict[str, tuple[str, list[str], str]] = {
    "article": (ARTICLE, [], "the article's recipe (batch 2, float32), as published"),
    "article_bf16": (ARTICLE, ["train.precision=mixed_bfloat16"],
                     "the article's recipe in bfloat16"),
    "frog_fast": (FINAL, [], "recipes/frog_fast.yaml as committed (the result)"),
    "fast": (FAST, [], "the sweep's base: DCGAN width 64, non-saturating loss, DiffAugment, "
                       "EMA 0.995, Adam 2e-4 (0.5, 0.999), batch 64, bfloat16"),
    "float32": (FAST, ["train.precision=float32"], "float32 instead of bfloat16"),
    "ema0.999": (FAST, ["ema.decay=0.999"], "EMA decay 0.999"),
    "ema0.99": (FAST, ["ema.decay=0.99"], "EMA decay 0.99"),
    "no_augment": (FAST, ["augmenter=none", "ema.decay=0.999"],
                   "without DiffAugment (and EMA 0.999: compare the trained G)"),
    "hinge": (FAST, ["loss=hinge"], "hinge loss"),
    "batch32": (FAST, ["train.batch_size=32"], "batch 32"),
    "batch128": (FAST, ["train.batch_size=128"], "batch 128"),
    "width32": (FAST, ["generator.base_filters=32", "discriminator.base_filters=32"],
                "half the width (base_filters 32)"),
    "width96": (FAST, ["generator.base_filters=96", "discriminator.base_filters=96"],
                "1.5x the width (base_filters 96)"),
    "lr1e-4": (FAST, ["optimizers.generator.learning_rate=1.0e-4",
                      "optimizers.discriminator.learning_rate=1.0e-4"], "learning rates 1e-4"),
    "lr4e-4": (FAST, ["optimizers.generator.learning_rate=4.0e-4",
                      "optimizers.discriminator.learning_rate=4.0e-4"], "learning rates 4e-4"),
    "ttur": (FAST, ["optimizers.discriminator.learning_rate=4.0e-4",
                    "optimizers.generator.learning_rate=1.0e-4"],
             "two time-scales: D 4e-4, G 1e-4"),
    "beta0": (FAST, ["optimizers.generator.beta_1=0.0", "optimizers.generator.beta_2=0.99",
                     "optimizers.discriminator.beta_1=0.0",
                     "optimizers.discriminator.beta_2=0.99"], "Adam betas 0 / 0.99"),
    "d_steps2": (FAST, ["strategy.d_steps=2"], "two discriminator updates per step"),
    "translation_only": (FAST, ["augmenter.policy=[translation]"], "DiffAugment translation only"),
    "color_translation": (FAST, ["augmenter.policy=[color, translation]"],
                          "DiffAugment color and translation (no cutout)"),
    "r1": (FAST, ["regularizers=[{type: r1, gamma: 0.1, every: 4}]"],
           "R1 penalty, gamma 0.1 every 4 steps"),
    "sn_d": (FAST, ["discriminator.spectral_norm=true", "loss=hinge"],
             "spectrally normalized discriminator (no batch norm), hinge loss"),
    "d_no_norm": (FAST, ["discriminator.norm=none"], "no batch norm in the discriminator"),
    "lsgan": (FAST, ["loss=least_squares"], "least-squares loss"),
    "resnet": (FAST, ["generator={type: resnet, latent_dim: 128, filters: 128}",
                      "discriminator={type: resnet, filters: 128, spectral_norm: true}",
                      "loss=hinge", "optimizers.generator.beta_1=0.0",
                      "optimizers.discriminator.beta_1=0.0", "optimizers.generator.beta_2=0.9",
                      "optimizers.discriminator.beta_2=0.9", "train.batch_size=32"],
               "SNGAN ResNet (128 channels), hinge, Adam 0/0.9, batch 32"),
    "wgan_gp": (FAST, ["loss=wasserstein", "discriminator.norm=layer",
                       "regularizers=[{type: gradient_penalty, weight: 10.0}]",
                       "strategy.d_steps=5", "optimizers.generator.learning_rate=1.0e-4",
                       "optimizers.discriminator.learning_rate=1.0e-4",
                       "optimizers.generator.beta_2=0.9", "optimizers.discriminator.beta_2=0.9",
                       "augmenter=none", "ema.decay=0.999"],
                "WGAN-GP as recipes/frog_wgan_gp.yaml (5 critic steps), in bf16 with EMA"),
    # round 2: half the width (the fastest base of round 1) with the other changes
    "w32_lr4e-4": (FAST, [*W32, "optimizers.generator.learning_rate=4.0e-4",
                          "optimizers.discriminator.learning_rate=4.0e-4"],
                   "width 32, learning rates 4e-4"),
    "w32_ttur": (FAST, [*W32, "optimizers.discriminator.learning_rate=4.0e-4",
                        "optimizers.generator.learning_rate=1.0e-4"],
                 "width 32, D 4e-4, G 1e-4"),
    "w32_batch128": (FAST, [*W32, "train.batch_size=128"], "width 32, batch 128"),
    "w32_batch32": (FAST, [*W32, "train.batch_size=32"], "width 32, batch 32"),
    "w32_d_steps2": (FAST, [*W32, "strategy.d_steps=2"], "width 32, two D updates per step"),
    "w32_ttur_ema_avg": (FAST, [*W32, *TTUR, "ema.statistics=average"],
                         "width 32, D 4e-4, G 1e-4, EMA averaging batch-norm statistics too"),
    "w48_ttur": (FAST, ["generator.base_filters=48", "discriminator.base_filters=48", *TTUR],
                 "base_filters 48, D 4e-4, G 1e-4"),
    "w32_ttur_batch128": (FAST, [*W32, *TTUR, "train.batch_size=128"],
                          "width 32, D 4e-4, G 1e-4, batch 128"),
    "w32_ttur_batch32": (FAST, [*W32, *TTUR, "train.batch_size=32"],
                         "width 32, D 4e-4, G 1e-4, batch 32"),
    "w48": (FAST, ["generator.base_filters=48", "discriminator.base_filters=48"],
            "base_filters 48"),
}


def _gankit(*args: str) -> list[str]:
    return [sys.executable, "-m", "gankit", *args]


def run_trial(name: str, args, out: Path) -> dict:
    recipe, overrides, what = TRIALS[name]
    run_dir = out / "runs" / name
    if _finished(run_dir, args.minutes):
        print(f"sweep: {name}: trained already; evaluating {run_dir}", flush=True)
    else:
        if run_dir.exists():  # a trial interrupted before its result: start it again
            shutil.rmtree(run_dir)
        dataset = f"dataset={{type: image_folder, path: {args.train}, scale: {args.scale(recipe)}}}"
        marks = [f"minutes: [{', '.join(f'{m:g}' for m in args.snapshot_minutes)}]"]
        if recipe == ARTICLE:  # the article's whole run is 1000 steps: keep that generator
            marks.append("steps: [1000]")
        callbacks = f"callbacks=[{{type: snapshot, {', '.join(marks)}}}]"
        sets = [dataset, f"train.max_minutes={args.minutes}", "train.steps=1000000",
                f"name=sweep-{name}",
                callbacks if args.snapshot_minutes or recipe == ARTICLE else "callbacks=[]",
                *overrides]
        command = _gankit("run", str(ROOT / recipe), "--out", str(run_dir), "--quiet")
        for s in sets:
            command += ["--set", s]
        print(f"sweep: {name}: training for {args.minutes} min ({what})", flush=True)
        log = out / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w") as f:
            done = subprocess.run(command, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
        if done.returncode != 0:
            raise SystemExit(f"sweep: {name}: gankit run exited {done.returncode}; see {log}")
    status = json.loads((run_dir / "run.json").read_text())
    ema = (run_dir / "generator_ema.keras").is_file()
    values = _evaluate(name, run_dir, [], args, out)
    raw = _evaluate(f"{name}-no_ema", run_dir, ["--no-ema"], args, out) if ema else values
    batch = _batch_size(run_dir)
    snapshots = {}  # a snapshot callback's generators: the same scores at earlier times
    low_high = ["--value-range", "0", "1"] if recipe == ARTICLE else []
    for folder in sorted((run_dir / "snapshots").glob("*/")):
        info = json.loads((folder / "snapshot.json").read_text())
        scores = {"step": info["step"], "seconds": info["seconds"]}
        for file, key in (("generator_ema.keras", "ema"), ("generator.keras", "no_ema")):
            if (folder / file).is_file():
                v = _evaluate(f"{name}-{folder.name}-{key}", folder / file, low_high, args, out)
                scores[key] = {"fid": v["fid"], "kid": v["kid"], "kid_std": v["kid_std"]}
        snapshots[folder.name] = scores
    return {"name": name, "what": what, "recipe": recipe, "overrides": overrides,
            "minutes": args.minutes, "steps": status["step"],
            "images_seen": status["step"] * batch, "train_seconds": status.get("seconds"),
            "fid": values["fid"], "kid": values["kid"], "kid_std": values["kid_std"],
            "ema": ema, "fid_no_ema": raw["fid"], "kid_no_ema": raw["kid"],
            "kid_std_no_ema": raw["kid_std"], "snapshots": snapshots,
            "n": args.n, "run_dir": str(run_dir), "finished": time.strftime("%Y-%m-%d %H:%M")}


def _evaluate(label: str, run_dir: Path, flags: list[str], args, out: Path) -> dict:
    """FID and KID of the run's generator (its EMA unless ``--no-ema`` is in ``flags``)."""
    result_file = out / "evals" / f"{label}.json"
    result_file.parent.mkdir(parents=True, exist_ok=True)
    command = _gankit("evaluate", str(run_dir), "--metric", "fid", "--metric", "kid",
                      "-n", str(args.n), "--reference", str(args.reference),
                      "--extractor", "keras_model", "--set", f"extractor.path={args.extractor}",
                      "--json", str(result_file), "--quiet", *flags)
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"sweep: {label}: gankit evaluate exited {done.returncode}: "
                         f"{done.stderr.strip()[-500:]}")
    return json.loads(result_file.read_text())["values"]


def _finished(run_dir: Path, minutes: float) -> bool:
    """Whether ``run_dir`` holds a trial that trained to its end with this budget (its
    evaluation was interrupted, or the sweep was stopped between training and scoring)."""
    import yaml

    try:
        status = json.loads((run_dir / "run.json").read_text())
        recipe = yaml.safe_load((run_dir / "recipe.yaml").read_text())
    except (OSError, ValueError):
        return False
    return (status.get("status") in ("stopped", "completed")
            and recipe["train"].get("max_minutes") == minutes
            and (run_dir / "generator.keras").is_file())


def _batch_size(run_dir: Path) -> int:
    import yaml

    return int(yaml.safe_load((run_dir / "recipe.yaml").read_text())["train"]["batch_size"])


def load(results: Path) -> list[dict]:
    if not results.exists():
        return []
    return [json.loads(line) for line in results.read_text().splitlines() if line.strip()]


def table(rows: list[dict]) -> str:
    lines = ["| trial | what changes | steps | images seen | FID (EMA) | KID (EMA) "
             "| FID (trained G) | KID (trained G) |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: min(r["fid"], r["fid_no_ema"])):
        ema = (f"{r['fid']:.2f} | {r['kid']:.3f} ± {r['kid_std']:.3f}" if r["ema"]
               else "– | –")
        lines.append(f"| `{r['name']}` | {r['what']} | {r['steps']} | {r['images_seen']:,} | "
                     f"{ema} | {r['fid_no_ema']:.2f} | "
                     f"{r['kid_no_ema']:.3f} ± {r['kid_std_no_ema']:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, help="folder of frogs to train on")
    parser.add_argument("--reference", type=Path, help="folder of held-out frogs to score against")
    parser.add_argument("--extractor", type=Path, help="the offline classifier (.keras)")
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget per trial")
    parser.add_argument("--snapshot-minutes", type=float, nargs="*", default=[],
                        metavar="M", help="also score the generators of these minutes "
                        "(a snapshot callback); the article's trials also keep step 1000")
    parser.add_argument("-n", type=int, default=2500, help="generated images per FID")
    parser.add_argument("--out", type=Path, default=Path("sweep"), help="results folder")
    parser.add_argument("--only", action="append", metavar="NAME", choices=sorted(TRIALS),
                        help="run only these trials (repeatable; default: all, in order)")
    parser.add_argument("--table", action="store_true", help="print the results table and stop")
    args = parser.parse_args(argv)
    results = args.out / "results.jsonl"
    if args.table:
        print(table(load(results)))
        return 0
    for flag in ("train", "reference", "extractor"):
        path = getattr(args, flag)
        if path is None or not path.exists():
            parser.error(f"--{flag} is required and must exist (got {path})")
    args.train, args.reference = args.train.resolve(), args.reference.resolve()
    args.extractor = args.extractor.resolve()
    # the article's recipe trains on [0, 1] images (its generator ends in a sigmoid)
    args.scale = lambda recipe: "[0.0, 1.0]" if recipe == ARTICLE else "[-1.0, 1.0]"
    args.out.mkdir(parents=True, exist_ok=True)
    done = {r["name"] for r in load(results)}
    for name in args.only or list(TRIALS):
        if name in done:
            print(f"sweep: {name}: already in {results}")
            continue
        row = run_trial(name, args, args.out)
        with open(results, "a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"sweep: {name}: {row['steps']} steps, FID {row['fid']:.2f} "
              f"(trained G: {row['fid_no_ema']:.2f})", flush=True)
    print(table(load(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
