"""A sweep of bad inputs, hostile files and hostile conditions against the gankit command.

Each case runs the real ``gankit`` command (the one beside this Python) in a subprocess under
a timeout and checks what a user should get: for a mistake, exit code 2 and one line on
stderr, no traceback, within the time bound; for a valid input, exit 0. Cases that must
answer before TensorFlow loads are bounded to a few seconds. It prints one line per case
and the counts, and exits 1 if any case did not hold.

    python benchmarks/hardening_sweep.py [--only SUBSTRING] [--keep DIR]

It makes its own fixtures in a temporary folder (tiny PNG folders, a tiny trained run, hostile
files), needs no data from outside, and takes a few minutes on 2 cores (most cases answer
before TensorFlow loads; those that train run a tiny recipe for a few steps).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
from tiny import tiny_recipe  # noqa: E402

GANKIT = str(Path(sys.executable).with_name("gankit"))
FAST = 8.0        # seconds: an answer that the input alone decides (before TensorFlow)
NO_TF_EXIT = 99   # what a FAST case exits with if it imports TensorFlow (see run_case)
SLOW = 120.0      # seconds: a case that loads TensorFlow or trains a few steps


@dataclass
class Case:
    name: str
    argv: list[str] | str                 # a list, or a shell line (run with bash -c)
    expect: str = "error"                 # error (exit 2, one line), ok (exit 0), any-clean
    bound: float = FAST
    env: dict = field(default_factory=dict)
    check: Callable[[subprocess.CompletedProcess], str | None] | None = None
    stdin: bytes | None = None
    progress: bool = False                # progress lines on stderr come before the error


@dataclass
class Outcome:
    case: Case
    held: bool
    why: str
    seconds: float
    rc: int | None


def run_case(case: Case, cwd: Path) -> Outcome:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **case.env}
    if case.bound <= FAST:   # must answer before TensorFlow: make importing it fail loudly
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(cwd / "no-tensorflow"),
                                                         env.get("PYTHONPATH")]))
    argv = case.argv if isinstance(case.argv, list) else ["bash", "-c", case.argv]
    start = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True,
                              timeout=max(case.bound, FAST) * 6, input=case.stdin)
    except subprocess.TimeoutExpired:
        return Outcome(case, False, "HANG (killed at 6x its bound)", time.monotonic() - start,
                       None)
    seconds = time.monotonic() - start
    err = proc.stderr.decode("utf-8", "replace")
    lines = [line for line in err.splitlines() if line.strip() and not _noise(line)]
    if case.progress:  # count the error lines; the progress lines before them are expected
        lines = [line for line in lines if line.startswith("gankit: ")]
    problems = []
    if "Traceback (most recent call last)" in err:
        problems.append("traceback")
    if case.expect == "error":
        if proc.returncode != 2:
            problems.append(f"exit {proc.returncode}, not 2")
        if len(lines) != 1:
            problems.append(f"{len(lines)} stderr lines, not 1")
    elif case.expect == "ok" and proc.returncode != 0:
        problems.append(f"exit {proc.returncode}, not 0")
    elif case.expect == "any-clean" and proc.returncode not in (0, 2):
        problems.append(f"exit {proc.returncode}")
    if proc.returncode == NO_TF_EXIT and case.bound <= FAST:
        problems.append("imported TensorFlow before answering")
    elif seconds > case.bound * 4:   # the machine is shared: only gross slowness counts
        problems.append(f"slow: {seconds:.1f} s > 4 x {case.bound:.0f} s")
    if case.check is not None:
        extra = case.check(proc)
        if extra:
            problems.append(extra)
    why = "; ".join(problems) if problems else (lines[-1][:150] if lines else "")
    return Outcome(case, not problems, why, seconds, proc.returncode)


def _noise(line: str) -> bool:
    """TensorFlow's and absl's start-up chatter, which is not gankit's message."""
    markers = ("oneDNN custom operations", "TF_ENABLE_ONEDNN_OPTS", "cpu_feature_guard",
               "This TensorFlow binary is optimized", "rebuild TensorFlow",
               "WARNING: All log messages before absl", "E0000", "I0000", "W0000",
               "Unable to register cu", "computation placer already registered",
               "could not open file to read NUMA", "successful NUMA node")
    return any(marker in line for marker in markers)


# --- fixtures ----------------------------------------------------------------------------

def write_pngs(folder: Path, count: int = 24, size: int = 24, seed: int = 0) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
            folder / f"{i:03d}.png")
    return folder


def tiny(images: Path, steps: int = 6, **train) -> dict:
    recipe = tiny_recipe("tiny", {"steps": steps, "batch_size": 4, "seed": 0,
                                  "sample_every": 3, "grid_every": 3, "grid_size": 2,
                                  "checkpoint_every": 3, "precision": "float32", **train},
                         strategy={"type": "gan"})
    recipe["dataset"]["path"] = str(images)
    return recipe


def write_yaml(path: Path, value) -> Path:
    path.write_text(yaml.safe_dump(value))
    return path


def build_fixtures(base: Path) -> dict[str, Path]:
    poison = base / "no-tensorflow" / "tensorflow"
    poison.mkdir(parents=True, exist_ok=True)
    (poison / "__init__.py").write_text(
        "import os, sys\nsys.stderr.write('TensorFlow imported\\n')\n"
        f"os._exit({NO_TF_EXIT})\n")
    f: dict[str, Path] = {}
    f["images"] = write_pngs(base / "images")
    f["recipe"] = write_yaml(base / "tiny.yaml", tiny(f["images"]))
    f["run"] = base / "run"
    proc = subprocess.run([GANKIT, "run", str(f["recipe"]), "--out", str(f["run"])],
                          capture_output=True, cwd=base)
    if proc.returncode != 0:
        raise SystemExit(f"the fixture run failed:\n{proc.stderr.decode()[-2000:]}")
    return f


def cases(base: Path, f: dict[str, Path]) -> list[Case]:
    images, recipe, run = str(f["images"]), str(f["recipe"]), str(f["run"])
    good = yaml.safe_load(Path(recipe).read_text())
    out: list[Case] = []

    def hostile_yaml(name: str, text: str | bytes, bound: float = FAST) -> None:
        path = base / f"{name}.yaml"
        (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
        out.append(Case(f"validate: {name}", [GANKIT, "validate", str(path)], bound=bound))

    # 1. recipe files
    laughs = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi"))
    hostile_yaml("billion_laughs", laughs)
    hostile_yaml("deep_list", "name: x\ntrain: " + "[" * 100000 + "]" * 100000 + "\n")
    hostile_yaml("deep_map", "name: x\ntrain:" + "".join(f"\n{' ' * i}k{i}:" for i in range(1, 3000))
                 + " 1\n")
    hostile_yaml("binary", bytes(range(256)) * 40)
    hostile_yaml("latin1", "name: caf\xe9\n".encode("latin-1"))
    hostile_yaml("empty", "")
    hostile_yaml("comment_only", "# nothing\n")
    hostile_yaml("top_level_list", "- a\n- b\n")
    hostile_yaml("top_level_scalar", "42\n")
    hostile_yaml("python_tag", "name: !!python/object/apply:os.system ['touch PWNED']\n")
    hostile_yaml("duplicate_keys", yaml.safe_dump(good) + "train: {steps: 3}\n")
    hostile_yaml("tabs", "name: x\ntrain:\n\tsteps: 3\n")
    hostile_yaml("int_keys", yaml.safe_dump({**good, 1: 2}))
    hostile_yaml("huge_int", yaml.safe_dump(good).replace("steps: 6", "steps: " + "9" * 5000))
    hostile_yaml("float_inf_steps", yaml.safe_dump(good).replace("steps: 6", "steps: .inf"))
    hostile_yaml("nan_minutes", yaml.safe_dump({**good, "train": {**good["train"],
                                                                   "max_minutes": float("nan")}}))
    hostile_yaml("huge_file", "name: x\n" + "# pad\n" * 3_000_000)
    hostile_yaml("unterminated", "name: 'x\ntrain: {steps: 3\n")
    hostile_yaml("merge_key", "base: &b {steps: 3}\ntrain:\n  <<: *b\n")
    hostile_yaml("bool_as_name", yaml.safe_dump({**good, "name": True}))
    hostile_yaml("name_with_slash", yaml.safe_dump({**good, "name": "../../etc/x"}))
    hostile_yaml("name_huge", yaml.safe_dump({**good, "name": "n" * 5000}))
    hostile_yaml("unknown_section", yaml.safe_dump({**good, "trian": {"steps": 3}}))
    hostile_yaml("section_is_list", yaml.safe_dump({**good, "train": [1, 2]}))
    hostile_yaml("component_type_int", yaml.safe_dump({**good, "generator": {"type": 3}}))
    hostile_yaml("component_unknown", yaml.safe_dump({**good, "generator": {"type": "nope"}}))
    hostile_yaml("plugin_colon_garbage", yaml.safe_dump({**good, "generator": {"type": ":::"}}))
    for key, value in [("steps", 0), ("steps", -5), ("steps", 10**30), ("batch_size", 0),
                       ("batch_size", 10**9), ("seed", -1), ("seed", 2**70),
                       ("max_minutes", -1), ("max_minutes", 1e308), ("sample_every", 0),
                       ("grid_size", 0), ("grid_size", 100000), ("keep_checkpoints", -1),
                       ("precision", "float8"), ("shuffle", "yes"), ("steps_per_call", 0),
                       ("steps_per_call", "fast"), ("checkpoint_every", 2.5)]:
        hostile_yaml(f"train.{key}={value}"[:60].replace("/", "_"),
                     yaml.safe_dump({**good, "train": {**good["train"], key: value}}))
    out.append(Case("validate: a directory", [GANKIT, "validate", str(base)]))
    out.append(Case("validate: missing", [GANKIT, "validate", str(base / "nope.yaml")]))
    fifo = base / "fifo.yaml"
    os.mkfifo(fifo)
    out.append(Case("validate: a FIFO", [GANKIT, "validate", str(fifo)]))
    out.append(Case("validate: /dev/zero", [GANKIT, "validate", "/dev/zero"]))
    out.append(Case("validate: /dev/urandom", [GANKIT, "validate", "/dev/urandom"]))
    out.append(Case("validate: the good recipe", [GANKIT, "validate", recipe], expect="ok"))

    # 2. --set
    for spec in ["a", "=1", "train.steps", "train.steps=abc", "train.steps=1e30",
                 "train=[]", "nope.key=1", "train.steps={{{", "." * 200 + "=1",
                 ".".join(["k"] * 5000) + "=1", "train.steps=" + "[" * 50000,
                 "train.steps=!!python/name:os.system"]:
        out.append(Case(f"--set {spec[:40]}", [GANKIT, "validate", recipe, "--set", spec]))
    out.append(Case("--set x5000", [GANKIT, "validate", recipe,
                                    *sum([["--set", "train.steps=3"] for _ in range(5000)], [])],
                    expect="ok"))

    # 3. new-plugin
    for name in ["", "../evil", "a b", "class", "1abc", "x" * 300, "UPPER", "gankit",
                 "a/b", "-x", "é"]:
        out.append(Case(f"new-plugin {name[:30]!r}", [GANKIT, "new-plugin", name, "--dir",
                                                      str(base / "plugins")]))
    (base / "plugins").mkdir(exist_ok=True)
    (base / "afile").write_text("x")
    out.append(Case("new-plugin --dir a file", [GANKIT, "new-plugin", "okname", "--dir",
                                                str(base / "afile")]))
    out.append(Case("new-plugin twice", f"{GANKIT} new-plugin twice --dir {base}/plugins "
                    f">/dev/null 2>&1; {GANKIT} new-plugin twice --dir {base}/plugins"))

    # 4. sample
    for args in [["-n", "0"], ["-n", "-1"], ["-n", str(10**9)], ["-n", "abc"],
                 ["--seed", "-1"], ["--seed", str(2**70)], ["--label", "frog"],
                 ["--per-class", "3"], ["--checkpoint", "999"], ["--checkpoint", "abc"],
                 ["--out", str(base)],
                 ["--out", run + "/run.json"], ["--best"],
                 ["--truncation", "0"], ["--truncation", "-1"], ["--truncation", "nan"],
                 ["--truncation", "inf"], ["--truncation", "1e400"], ["--truncation", "11"],
                 ["--truncation", "abc"], ["--truncation", ""],
                 ["--walk", "2", "--truncation", "0.001"]]:
        out.append(Case(f"sample {' '.join(a[:30] for a in args)}", [GANKIT, "sample", run, *args],
                        bound=SLOW))
    out.append(Case("sample --truncation 0.01 (the smallest)",
                    [GANKIT, "sample", run, "-n", "4", "--truncation", "0.01", "--out",
                     str(base / "t.png")], expect="ok", bound=SLOW))
    out.append(Case("evaluate a folder --truncation 1",
                    [GANKIT, "evaluate", images, "--metric", "fid", "--reference", images,
                     "--truncation", "1"]))
    out.append(Case("sample --out into a new folder (made)",
                    [GANKIT, "sample", run, "-n", "4", "--out", str(base / "nodir" / "x.png")],
                    expect="ok", bound=SLOW))
    out.append(Case("sample: not a run", [GANKIT, "sample", images]))
    out.append(Case("sample: missing", [GANKIT, "sample", str(base / "missing")]))
    out.append(Case("sample: a file", [GANKIT, "sample", recipe]))
    out.append(Case("sample: good", [GANKIT, "sample", run, "-n", "4", "--out",
                                     str(base / "s.png")], expect="ok", bound=SLOW))

    broken = base / "broken_run"
    shutil.copytree(run, broken)
    for ckpt in (broken / "checkpoints").iterdir():
        shutil.rmtree(ckpt)
    (broken / "generator.keras").write_bytes(b"PK\x03\x04 not a zip")
    out.append(Case("sample: truncated generator.keras", [GANKIT, "sample", str(broken)],
                    bound=SLOW))

    # 5. resume
    out.append(Case("resume: missing", [GANKIT, "resume", str(base / "missing")]))
    out.append(Case("resume: not a run", [GANKIT, "resume", images]))
    out.append(Case("resume: completed run, nothing to do", [GANKIT, "resume", run],
                    expect="any-clean", bound=SLOW))
    out.append(Case("resume --set train.batch_size=8 (changes the run)",
                    [GANKIT, "resume", run, "--set", "train.batch_size=8"], bound=SLOW))
    garbage_status = base / "garbage_status"
    shutil.copytree(run, garbage_status)
    (garbage_status / "run.json").write_text('{"status": "running", "step": "six"}')
    out.append(Case("resume: run.json step a string", [GANKIT, "resume", str(garbage_status)],
                    expect="any-clean", bound=SLOW))
    bad_recipe = base / "bad_recipe_run"
    shutil.copytree(run, bad_recipe)
    (bad_recipe / "recipe.yaml").write_text("[[[")
    out.append(Case("resume: recipe.yaml garbage", [GANKIT, "resume", str(bad_recipe)]))

    # 6. run
    out.append(Case("run: --out a file", [GANKIT, "run", recipe, "--out", recipe]))
    out.append(Case("run: --out existing run", [GANKIT, "run", recipe, "--out", run]))
    out.append(Case("run: --out under a file", [GANKIT, "run", recipe, "--out",
                                                recipe + "/sub"]))
    out.append(Case("run: --out /proc", [GANKIT, "run", recipe, "--out", "/proc/gankit"]))
    empty = base / "empty_images"
    empty.mkdir()
    out.append(Case("run: empty image folder", [GANKIT, "run", recipe, "--set",
                                                f"dataset.path={empty}", "--out",
                                                str(base / "r_empty")]))
    junk = base / "junk_images"
    junk.mkdir()
    (junk / "a.txt").write_text("x")
    (junk / "b.png").write_bytes(b"")
    out.append(Case("run: folder of junk", [GANKIT, "run", recipe, "--set",
                                            f"dataset.path={junk}", "--out",
                                            str(base / "r_junk")]))
    loop = base / "loop_images"
    loop.mkdir()
    os.symlink(loop, loop / "self")
    out.append(Case("run: folder with a symlink loop", [GANKIT, "run", recipe, "--set",
                                                        f"dataset.path={loop}", "--out",
                                                        str(base / "r_loop")]))
    out.append(Case("run: dataset.path missing", [GANKIT, "run", recipe, "--set",
                                                  f"dataset.path={base}/missing", "--out",
                                                  str(base / "r_missing")]))
    out.append(Case("run: dataset.path 100,000 characters", [GANKIT, "run", recipe, "--set",
                                                            "dataset.path=" + "x" * 100000,
                                                            "--out", str(base / "r_long")]))
    out.append(Case("run: cifar10 path not a tar", [GANKIT, "run", recipe, "--set",
                                                    f"dataset={{type: cifar10, path: {recipe}}}",
                                                    "--set", "generator.height=32",
                                                    "--set", "generator.width=32",
                                                    "--set", "discriminator.height=32",
                                                    "--set", "discriminator.width=32",
                                                    "--out", str(base / "r_notar")],
                    bound=SLOW))
    import tarfile
    tar = base / "evil.tar.gz"
    with tarfile.open(tar, "w:gz") as archive:
        member = tarfile.TarInfo("../../evil")
        payload = b"x" * 10
        member.size = len(payload)
        import io
        archive.addfile(member, io.BytesIO(payload))
    out.append(Case("run: cifar10 tar with ../ member", [GANKIT, "run", recipe, "--set",
                                                         f"dataset={{type: cifar10, path: {tar}}}",
                                                         "--set", "generator.height=32",
                                                         "--set", "generator.width=32",
                                                         "--set", "discriminator.height=32",
                                                         "--set", "discriminator.width=32",
                                                         "--out", str(base / "r_evil")],
                    bound=SLOW, check=lambda p: "evil file written" if (
                        base.parent / "evil").exists() else None))

    # 7. plugins and help
    out.append(Case("plugins", [GANKIT, "plugins"], expect="ok"))
    out.append(Case("plugins, stdout closed", f"{GANKIT} plugins >&-", expect="any-clean"))
    out.append(Case("plugins | head -1", f"{GANKIT} plugins | head -1", expect="ok"))
    out.append(Case("no command", [GANKIT], expect="error"))
    out.append(Case("unknown command", [GANKIT, "frobnicate"]))
    out.append(Case("--version", [GANKIT, "--version"], expect="ok"))

    # 8. sweep
    trials = base / "trials.yaml"
    trials.write_text("a: {what: x, set: {train.steps: 2}}\n")
    for name, text in [("list", "- a\n"), ("deep", "a: " + "[" * 50000), ("empty", ""),
                       ("slash_name", "a/b: {what: x, set: {}}\n"),
                       ("dotdot_name", "..: {what: x, set: {}}\n"),
                       ("bad_key", "a: {what: x, sett: {}}\n"),
                       ("set_not_map", "a: {what: x, set: 3}\n")]:
        path = base / f"trials_{name}.yaml"
        path.write_text(text)
        out.append(Case(f"sweep: trials {name}", [GANKIT, "sweep", recipe, "--trials", str(path),
                                                  "--minutes", "0.1", "--reference", images,
                                                  "--out", str(base / f"sw_{name}")]))
    for minutes in ["0", "-1", "nan", "inf", "1e9", "abc"]:
        out.append(Case(f"sweep: --minutes {minutes}", [GANKIT, "sweep", recipe, "--trials",
                                                        str(trials), "--minutes", minutes,
                                                        "--reference", images]))
    out.append(Case("sweep: --reference missing", [GANKIT, "sweep", recipe, "--trials",
                                                   str(trials), "--minutes", "1",
                                                   "--reference", str(base / "missing")]))
    out.append(Case("sweep: --holdout 1.5", [GANKIT, "sweep", recipe, "--trials", str(trials),
                                             "--minutes", "1", "--train", images,
                                             "--holdout", "1.5"]))
    out.append(Case("sweep: --out a file", [GANKIT, "sweep", recipe, "--trials", str(trials),
                                            "--minutes", "1", "--reference", images,
                                            "--out", recipe]))
    out.append(Case("sweep: --out a run dir", [GANKIT, "sweep", recipe, "--trials", str(trials),
                                               "--minutes", "1", "--reference", images,
                                               "--out", run]))

    # 9. train-classifier
    for args in [["--dataset", "{{{"], ["--dataset", "{type: nope}"],
                 ["--dataset", f"{{type: image_folder, path: {images}}}", "--out", "x.txt"],
                 ["--dataset", f"{{type: image_folder, path: {images}}}", "--out",
                  run + "/recipe.yaml"],
                 ["--dataset", f"{{type: image_folder, path: {images}}}", "--out", "c.keras",
                  "--epochs", "0"],
                 ["--dataset", f"{{type: image_folder, path: {images}}}", "--out", "c.keras",
                  "--holdout", "1"],
                 ["--dataset", f"{{type: image_folder, path: {images}}}", "--out", "c.keras",
                  "--width", "0"],
                 ["--dataset", f"{{type: image_folder, path: {images}}}", "--out", "c.keras",
                  "--batch-size", "-3"]]:
        if "--out" not in args:
            args = [*args, "--out", str(base / "c.keras")]
        out.append(Case(f"train-classifier {' '.join(a[:25] for a in args[:2])} "
                        f"{' '.join(args[4:])}", [GANKIT, "train-classifier", *args]))

    # 10. environment and conditions
    out.append(Case("validate: HOME unset", [GANKIT, "validate", recipe], expect="ok",
                    env={"HOME": ""}))
    out.append(Case("validate: LANG=C and a unicode path",
                    f"cp {recipe} {base}/réçipe.yaml && {GANKIT} validate {base}/réçipe.yaml",
                    expect="ok", env={"LANG": "C", "LC_ALL": "C"}))
    out.append(Case("validate: cwd deleted",
                    f"mkdir {base}/gone && cd {base}/gone && rmdir {base}/gone && "
                    f"{GANKIT} validate {recipe}", expect="any-clean"))
    out.append(Case("run: read-only cwd, default --out",
                    f"mkdir -p {base}/ro && cd {base}/ro && chattr +i . 2>/dev/null || "
                    f"chmod 555 .; {GANKIT} run {recipe}", bound=SLOW,
                    expect="any-clean"))
    # 11. a full disk (a 1 MiB tmpfs, filled), concurrent use and signals
    full = base / "full"
    full.mkdir(exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(full)],
                      capture_output=True).returncode == 0:
        subprocess.run(["dd", "if=/dev/zero", f"of={full}/fill", "bs=64k"], capture_output=True)
        out.append(Case("full disk: run --out", [GANKIT, "run", recipe, "--out",
                                                 str(full / "run")], bound=SLOW))
        out.append(Case("full disk: sample --out", [GANKIT, "sample", run, "-n", "4", "--out",
                                                    str(full / "s.png")], bound=SLOW,
                        check=lambda p: "a partial file was left" if any(
                            full.glob("s.png*")) else None))
        out.append(Case("full disk: export --out", [GANKIT, "export", run, "--format", "keras",
                                                    "--out", str(full / "g.keras")], bound=SLOW,
                        check=lambda p: "a partial export was left" if any(
                            full.glob("*g.keras*")) or any(full.glob(".tmp-export-*"))
                        else None))
        out.append(Case("full disk: new-plugin --dir", [GANKIT, "new-plugin", "fullp", "--dir",
                                                        str(full)],
                        check=lambda p: "a partial plugin was left" if (
                            full / "gankit-fullp").exists() else None))
        out.append(Case("full disk: train-classifier --out",
                        [GANKIT, "train-classifier", "--dataset",
                         f"{{type: image_folder, path: {base}/classes, labels: true}}",
                         "--out", str(full / "c.keras"), "--epochs", "1", "--width", "4"],
                        bound=SLOW, progress=True))
    write_pngs(base / "classes" / "a", 8, size=32)
    write_pngs(base / "classes" / "b", 8, size=32, seed=1)
    same = base / "same_out"
    out.append(Case("two runs at once, one --out",
                    f"({GANKIT} run {recipe} --out {same} 2>{base}/a.err; echo $? >{base}/a.rc)"
                    f" & ({GANKIT} run {recipe} --out {same} 2>{base}/b.err; "
                    f"echo $? >{base}/b.rc) & wait; "
                    f"sort {base}/a.rc {base}/b.rc | tr '\\n' ' ' | grep -qx '0 2 ' || "
                    f"{{ cat {base}/a.rc {base}/b.rc >&2; exit 1; }}", expect="ok", bound=SLOW))
    out.append(Case("two samples at once, one --out",
                    f"{GANKIT} sample {run} -n 16 --out {base}/same.png & "
                    f"{GANKIT} sample {run} -n 16 --out {base}/same.png & wait; "
                    f"python -c \"from PIL import Image; Image.open('{base}/same.png').verify()\"",
                    expect="ok", bound=SLOW))
    out.append(Case("SIGTERM mid-run, then resume",
                    f"{GANKIT} run {recipe} --set train.steps=100000 --out {base}/term & "
                    f"pid=$!; for i in $(seq 120); do ls {base}/term/checkpoints | grep -q ckpt && "
                    f"break; sleep 0.5; done; kill -TERM $pid; wait $pid; rc=$?; "
                    f"grep -q interrupted {base}/term/run.json || {{ echo \"rc $rc\" >&2; "
                    f"cat {base}/term/run.json >&2; exit 1; }}; "
                    f"{GANKIT} resume {base}/term --set train.steps=9 --force >/dev/null 2>&1",
                    expect="ok", bound=SLOW * 2))
    out.append(Case("SIGTERM mid-sample leaves no partial PNG",
                    f"{GANKIT} sample {run} -n 10000 --out {base}/int.png & pid=$!; sleep 6; "
                    f"kill -TERM $pid; wait $pid; ls {base}/int.png* 2>/dev/null | "
                    f"xargs -r python -c \"import sys; from PIL import Image; "
                    f"[Image.open(f).verify() for f in sys.argv[1:]]\"",
                    expect="ok", bound=SLOW))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run only cases whose name contains this")
    parser.add_argument("--keep", help="make the fixtures in this folder and keep them")
    args = parser.parse_args()
    base = Path(args.keep or tempfile.mkdtemp(prefix="gankit-sweep-"))
    base.mkdir(parents=True, exist_ok=True)
    print(f"fixtures in {base}; gankit {GANKIT}", flush=True)
    fixtures = build_fixtures(base)
    todo = [c for c in cases(base, fixtures) if not args.only or args.only in c.name]
    failed = 0
    for case in todo:
        outcome = run_case(case, base)
        failed += not outcome.held
        mark = "held" if outcome.held else "FAIL"
        print(f"{mark}  {outcome.seconds:5.1f}s  rc={outcome.rc}  {case.name}: {outcome.why}",
              flush=True)
    print(f"\n{len(todo)} cases: {len(todo) - failed} held, {failed} did not")
    subprocess.run(["umount", str(base / "full")], capture_output=True)
    if not args.keep:
        subprocess.run(["chmod", "-R", "u+w", str(base)], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
