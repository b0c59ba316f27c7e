"""``gankit sweep``: tune a recipe for your own data and machine, one timed trial at a time.

A sweep is a base recipe and a file of trials, each a few overrides of it (or of another
recipe). Every trial trains for the same minutes of wall-clock (``train.max_minutes``) in
its own run directory, one at a time, with the machine to itself; then both of its
generators (the EMA copy and the trained one) are scored with FID and KID against real
images it never trained on, and a grid of each is drawn. The results are a table
(``results.csv``, every score in ``scores.csv``) and a page with every trial's grids
(``index.html``), rewritten after each trial. docs/sweep.md is the user's guide;
docs/frog_fast.md shows a sweep's results.

Stopping a sweep (Ctrl-C, SIGTERM) stops the trial that is training. Running the same
command again continues: finished trials are kept, a trial that finished training but not
scoring is scored, and a trial stopped while training is trained again from its start (a
timed trial cannot be resumed fairly). Everything the command line and the files decide is
checked before TensorFlow loads and before anything trains.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from gankit.errors import GankitError, RecipeError, did_you_mean
from gankit.rundir.run_dir import RunDir
from gankit.util import atomic
from gankit.util.safe_read import UnsafeFileError, read_json

STATE_FILE = "sweep.json"
RESULTS_CSV = "results.csv"
SCORES_CSV = "scores.csv"
SETTINGS_CSV = "settings.csv"
PAGE = "index.html"
LOCK_FILE = ".sweep.lock"
MAX_TRIALS = 1000
MAX_STATE_BYTES = 64 << 20
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
METRICS = ("fid", "kid")
GRID_N = 64
TRIAL_KEYS = {"what", "recipe", "set"}
#: settings of the sweep that its results depend on: a second invocation must match them
CONFIG_KEYS = ("minutes", "n", "reference", "train", "holdout", "extractor",
               "extractor_overrides", "snapshot_minutes", "seed")


@dataclass
class Trial:
    """One trial: a recipe and overrides, resolved and validated."""
    name: str
    what: str
    recipe_path: Path
    overrides: list[str]
    resolved: dict[str, Any] = field(default_factory=dict)
    digest: str = ""
    batch_size: int = 0
    value_range: tuple[float, float] = (-1.0, 1.0)
    ema: bool = False
    seed: int | None = None
    fingerprint: str = ""  # the whole resolved recipe's digest (``digest`` leaves out the steps)
    setting: str = ""   # the same without train.seed: the seeds of one setting share it


@dataclass
class SweepPlan:
    """Everything ``gankit sweep`` checked before TensorFlow loads."""
    base: Path
    trials_file: Path
    out: Path
    trials: list[Trial]
    config: dict[str, Any]
    reference: Path
    extractor: str
    extractor_overrides: list[str]
    n: int
    snapshot_minutes: list[float]
    split: tuple[list[Path], list[Path]] | None = None  # --holdout: (train, held-out) files


# --- planning: everything before TensorFlow ----------------------------------------------

def load_trials(path: str | Path) -> list[tuple[str, dict[str, Any]]]:
    """Read a trials file: a mapping of trial names to ``{what, recipe, set}`` (all optional;
    ``set`` a mapping of dotted keys to YAML values, or a list of ``KEY=VALUE`` strings)."""
    from gankit.recipe.strict_yaml import load_raw

    source = f"--trials {path}"
    try:
        raw = load_raw(path)
    except RecipeError as err:
        err.source = source
        raise
    if len(raw) > MAX_TRIALS:
        raise RecipeError(f"at most {MAX_TRIALS} trials, got {len(raw)}", source=source)
    out = []
    for name, body in raw.items():
        name = str(name)
        if not NAME.fullmatch(name):
            raise RecipeError("a trial name is 1-64 letters, digits, '_', '.' or '-' (starting "
                              "with a letter or digit)", path=name, source=source)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise RecipeError("expected a mapping with 'what', 'recipe' and 'set' (all "
                              "optional), e.g. {what: half width, set: {generator.base_filters: "
                              "32}}", path=name, source=source)
        unknown = sorted(set(map(str, body)) - TRIAL_KEYS)
        if unknown:
            raise RecipeError(f"unknown key{did_you_mean(unknown[0], TRIAL_KEYS)}; a trial has "
                              f"'what', 'recipe' and 'set'", path=f"{name}.{unknown[0]}",
                              source=source)
        for key in ("what", "recipe"):
            if key in body and not isinstance(body[key], str):
                raise RecipeError("expected a string", path=f"{name}.{key}", source=source)
        out.append((name, body))
    if not out:
        raise RecipeError("no trials: name at least one, e.g. 'base: {}' for the base recipe "
                          "as it is", source=source)
    return out


def _overrides(name: str, body: dict[str, Any], source: str) -> list[str]:
    from gankit.recipe.strict_yaml import dump_yaml

    value = body.get("set", {})
    if value is None:
        return []
    if isinstance(value, list):
        if not all(isinstance(v, str) and "=" in v for v in value):
            raise RecipeError("a list of 'set' items is of KEY=VALUE strings, as --set takes",
                              path=f"{name}.set", source=source)
        return list(value)
    if not isinstance(value, dict):
        raise RecipeError("expected a mapping of dotted keys to values, e.g. "
                          "{train.batch_size: 32}", path=f"{name}.set", source=source)
    items = []
    for key, v in value.items():
        text = dump_yaml(v).strip()
        if text.endswith("\n..."):
            text = text[:-4].strip()
        # a block-style dump of a mapping or a list does not fit on a --set line
        text = json.dumps(v) if "\n" in text else text
        items.append(f"{key}={text}")
    return items


def default_out(base: str | Path) -> Path:
    """Where a sweep of ``base`` goes without ``--out``: ``sweeps/<its stem>``."""
    return Path("sweeps") / Path(base).stem


def plan_sweep(base: str, trials_file: str, *, minutes: float, reference: str | None,
               train: str | None = None, holdout: float | None = None,
               out: str | None = None, n: int = 2500, extractor: str = "keras_model",
               extractor_overrides: Sequence[str] = (), snapshot_minutes: Sequence[float] = (),
               only: Sequence[str] = (), rerun: Sequence[str] = (), seed: int = 0,
               registry: Any = None) -> SweepPlan:
    """Check a ``gankit sweep`` request without TensorFlow: the trials file, every trial's
    recipe as it will train, the data folders, the extractor and the output folder.

    Raises:
        GankitError: one line naming the argument, the trial or the recipe key.
    """
    from gankit.app.evaluate import plan_evaluation
    from gankit.recipe.validation import apply_overrides, load_raw, overridden_keys, validate

    if registry is None:
        from gankit.plugin.manager import default_plugins
        registry = default_plugins().registry
    if not (isinstance(minutes, (int, float)) and math.isfinite(minutes)
            and 0 < minutes <= 7 * 24 * 60):
        raise GankitError(f"--minutes must be above 0 and at most {7 * 24 * 60} (a week), "
                          f"got {minutes:g}")
    marks = sorted(float(m) for m in snapshot_minutes)
    for m in marks:
        if not (math.isfinite(m) and 0 < m < minutes):
            raise GankitError(f"--snapshot-minutes: each mark must be above 0 and below "
                              f"--minutes {minutes:g}, got {m:g}")
    if len(set(marks)) != len(marks):
        raise GankitError(f"--snapshot-minutes: a mark is listed twice: {marks}")
    base_path = Path(base)
    load_raw(base_path)  # a missing or malformed base: one line naming it
    trials_path = Path(trials_file)
    entries = load_trials(trials_path)
    names = [name for name, _ in entries]
    for flag, chosen in (("--only", only), ("--rerun", rerun)):
        for name in chosen:
            if name not in names:
                raise GankitError(f"{flag} {name}: no such trial in {trials_path}"
                                  f"{did_you_mean(name, names)}")

    # the data: a training folder (optionally split), and the held-out reference
    split = None
    train_folder = Path(train).expanduser().resolve() if train else None
    if train_folder is not None:
        _image_files(train_folder, "--train")
    if holdout is not None:
        if not (math.isfinite(holdout) and 0 < holdout < 1):
            raise GankitError(f"--holdout must be between 0 and 1 (the share of --train's "
                              f"images kept out to score against), got {holdout:g}")
        if train_folder is None:
            raise GankitError("--holdout splits the images of --train (a folder): give --train")
        if reference:
            raise GankitError("--holdout and --reference exclude each other: --holdout makes "
                              "the reference from --train's images")
        files = _image_files(train_folder, "--train")
        keep = len(files) - max(1, round(len(files) * holdout))
        if keep < 2 or len(files) - keep < 2:
            raise GankitError(f"--holdout {holdout:g} of {len(files)} images leaves "
                              f"{keep} to train on and {len(files) - keep} to score against; "
                              f"each needs at least 2")
        split = (files[:keep], files[keep:])
    elif reference is None:
        raise GankitError("give --reference FOLDER (real images the trials never train on) or "
                          "--train FOLDER --holdout FRACTION")
    out_path = Path(out) if out else default_out(base_path)
    out_path = out_path.expanduser().absolute()
    if out_path.exists() and not out_path.is_dir():
        raise GankitError(f"--out {out_path}: exists and is not a folder")
    if RunDir(out_path).recipe_file.is_file() or RunDir(out_path).status_file.is_file():
        raise GankitError(f"--out {out_path}: is a run directory; a sweep needs a folder of "
                          f"its own")
    parent = _existing_ancestor(out_path)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise GankitError(f"--out {out_path}: cannot write in {parent}; choose another --out")
    data_dir = out_path / "data"
    if split is not None:
        train_folder, reference_path = data_dir / "train", data_dir / "holdout"
    else:
        reference_path = Path(reference).expanduser().resolve()
        _image_files(reference_path, "--reference")
    n_reference = len(split[1]) if split else len(_image_files(reference_path, "--reference"))

    # the extractor and the metrics, checked as gankit evaluate checks them
    check_source = str(train_folder if split is None and train_folder else
                       (split[0][0].parent if split else reference_path))
    plan_evaluation(check_source, list(METRICS), reference=str(check_source),
                    extractor=extractor, overrides=list(extractor_overrides), n=None,
                    seed=seed, default_json=False, registry=registry)
    if not 2 <= n <= 1_000_000:
        raise GankitError(f"-n must be between 2 and 1,000,000, got {n}")

    trials = []
    for name, body in entries:
        source = f"--trials {trials_path}: {name}"
        recipe_path = base_path
        if body.get("recipe"):
            recipe_path = Path(os.path.expanduser(body["recipe"]))
            if not recipe_path.is_absolute():
                recipe_path = trials_path.resolve().parent / recipe_path
        overrides = _overrides(name, body, source)
        try:
            raw = load_raw(recipe_path)
            sets = []
            if train_folder is not None:
                sets.append(f"dataset={json.dumps(_folder_dataset(raw, train_folder))}")
            sets.append(f"train.max_minutes={minutes!r}")
            raw = apply_overrides(raw, sets, source="gankit sweep")
            raw = apply_overrides(raw, overrides, source=source)
            if marks:
                raw["callbacks"] = [c for c in (raw.get("callbacks") or [])
                                    if _type_of(c) != "snapshot"]
                raw["callbacks"].append({"type": "snapshot", "minutes": marks})
            if split is not None:
                _make_split_folders(data_dir, split, dry=True)
            recipe = validate(raw, registry, source=str(recipe_path),
                              default_name=recipe_path.stem,
                              base_dir=recipe_path.resolve().parent,
                              cwd_keys=overridden_keys(overrides) - {"dataset"})
        except RecipeError as err:
            err.source = f"{source}{': ' + err.source if err.source else ''}"
            raise
        trial = Trial(name, str(body.get("what") or ("the base recipe" if not overrides and
                                                      recipe_path == base_path else
                                                      ", ".join(overrides))),
                      recipe_path, overrides)
        trial.resolved = recipe.to_dict()
        trial.digest = recipe.digest()
        trial.seed = recipe.train.seed
        trial.fingerprint = _fingerprint(trial.resolved)
        trial.setting = setting_digest(trial.resolved)
        trial.batch_size = recipe.train.batch_size
        trial.ema = recipe.ema is not None
        try:
            trial.value_range = tuple(float(v) for v in recipe.create("dataset").value_range)
        except GankitError:  # a dataset that cannot be built here: its declared scale
            trial.value_range = _folder_range(raw)
        trials.append(trial)
    n_eff = min(n, n_reference) if n_reference >= 2 else n
    config = {"minutes": float(minutes), "n": n_eff, "reference": str(reference_path),
              "train": str(Path(train).expanduser().resolve()) if train else None,
              "holdout": holdout, "extractor": extractor,
              "extractor_overrides": list(extractor_overrides), "snapshot_minutes": marks,
              "seed": seed}
    return SweepPlan(base_path, trials_path, out_path, trials, config, reference_path,
                     extractor, list(extractor_overrides), n_eff, marks, split)


def _fingerprint(resolved: dict[str, Any], *, drop_seed: bool = False) -> str:
    recipe = json.loads(json.dumps(resolved, default=str))
    if drop_seed and isinstance(recipe.get("train"), dict):
        recipe["train"].pop("seed", None)
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def setting_digest(resolved: dict[str, Any]) -> str:
    """A digest of a resolved recipe without its ``train.seed``: trials that differ only in
    their seed share it, and the results group them (``settings.csv``)."""
    return _fingerprint(resolved, drop_seed=True)[:16]


def _changed(row: dict[str, Any], trial: Trial) -> bool:
    """A recorded trial's recipe is not the trial's now. Rows of gankit 0.5.0 and later carry
    the whole recipe's fingerprint (a change of ``train.steps`` counts); older ones only the
    recipe's digest, which leaves the steps out."""
    if isinstance(row.get("fingerprint"), str):
        return row["fingerprint"] != trial.fingerprint
    return row.get("digest") != trial.digest


def _folder_dataset(raw: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The recipe's dataset made to read ``folder``: an image_folder keeps its other keys;
    another dataset becomes an image_folder with its scale and size."""
    dataset = raw.get("dataset")
    if isinstance(dataset, str):
        dataset = {"type": dataset}
    dataset = dataset if isinstance(dataset, dict) else {}
    if dataset.get("type") == "image_folder":
        return {**dataset, "path": str(folder)}
    return {"type": "image_folder", "path": str(folder),
            **{k: dataset[k] for k in ("scale", "height", "width") if k in dataset}}


def _folder_range(raw: dict[str, Any]) -> tuple[float, float]:
    dataset = raw.get("dataset")
    scale = dataset.get("scale") if isinstance(dataset, dict) else None
    try:
        return (float(scale[0]), float(scale[1]))
    except (TypeError, ValueError, IndexError, KeyError):
        return (-1.0, 1.0)


def _type_of(component: Any) -> str | None:
    if isinstance(component, str):
        return component
    return component.get("type") if isinstance(component, dict) else None


def _image_files(folder: Path, flag: str) -> list[Path]:
    if not folder.exists():
        raise GankitError(f"{flag} {folder}: does not exist; expected a folder of "
                          f".png/.jpg/.jpeg images")
    if not folder.is_dir():
        raise GankitError(f"{flag} {folder}: is not a folder of images")
    try:
        files = sorted(p for p in folder.iterdir()
                       if p.name.lower().endswith(IMAGE_EXTENSIONS) and p.is_file())
    except OSError as exc:
        raise GankitError(f"{flag} {folder}: cannot read it: {exc.strerror or exc}") from None
    if len(files) < 2:
        raise GankitError(f"{flag} {folder}: has {len(files)} .png/.jpg/.jpeg image(s); "
                          f"a sweep needs at least 2")
    return files


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _make_split_folders(data_dir: Path, split: tuple[list[Path], list[Path]],
                        dry: bool = False) -> None:
    """``data/train`` and ``data/holdout``: links to the images of each part. An existing
    split must be the same one (the trials so far trained on it)."""
    for part, files in zip(("train", "holdout"), split):
        folder = data_dir / part
        wanted = sorted(f.name for f in files)
        if folder.is_dir():
            have = sorted(p.name for p in folder.iterdir())
            if have != wanted:
                raise GankitError(f"{folder} holds another split than --holdout makes now "
                                  f"({len(have)} files, expected {len(wanted)}); give "
                                  f"another --out")
            continue
        if dry:
            continue
        tmp = data_dir / f".{part}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for f in files:
            os.symlink(f.resolve(), tmp / f.name)
        atomic.swap_folder(tmp, folder)


# --- running -------------------------------------------------------------------------------

class _Lock:
    """An OS lock on ``OUT/.sweep.lock``: one sweep at a time in a folder."""

    def __init__(self, out: Path):
        self.path = out / LOCK_FILE

    def __enter__(self):
        import fcntl

        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            other = os.read(self.fd, 64).decode(errors="replace").strip() or "?"
            os.close(self.fd)
            raise GankitError(f"{self.path.parent} is in use by another gankit sweep (pid "
                              f"{other}); wait for it or give another --out") from None
        os.ftruncate(self.fd, 0)
        os.write(self.fd, str(os.getpid()).encode())
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


def read_state(out: Path) -> dict[str, Any] | None:
    path = out / STATE_FILE
    if not path.exists():
        return None
    try:
        if path.is_symlink() or not path.is_file():
            raise ValueError("not a regular file")
        if path.stat().st_size > MAX_STATE_BYTES:
            raise ValueError("too large")
        state = json.loads(path.read_text(encoding="utf-8"))
        if not (isinstance(state, dict) and isinstance(state.get("config"), dict)
                and isinstance(state.get("trials"), dict)):
            raise ValueError("not a sweep's state")
        for row in state["trials"].values():
            if not isinstance(row, dict):
                raise ValueError("a trial's entry is not a mapping")
    except (OSError, ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise GankitError(f"{path}: is damaged ({exc}); move it away to start the sweep "
                          f"afresh, or give another --out") from None
    return state


def run_sweep(plan: SweepPlan, *, only: Sequence[str] = (), rerun: Sequence[str] = (),
              quiet: bool = False) -> int:
    """Train and score the trials of ``plan`` that have no result yet; returns the exit code
    (0, or 1 if a trial failed)."""
    from gankit._version import __version__
    from gankit.recipe.strict_yaml import dump_yaml
    from gankit.util import machine

    out = plan.out
    out.mkdir(parents=True, exist_ok=True)
    with _Lock(out):
        state = read_state(out) or {"config": plan.config, "trials": {}}
        old = {k: state["config"].get(k) for k in CONFIG_KEYS}
        if old != {k: plan.config.get(k) for k in CONFIG_KEYS}:
            changed = [f"{k}: {old[k]!r} -> {plan.config.get(k)!r}" for k in CONFIG_KEYS
                       if old[k] != plan.config.get(k)]
            raise GankitError(f"{out} holds a sweep with other settings ({'; '.join(changed)}); "
                              f"its trials would not compare: give another --out")
        for trial in plan.trials:
            row = state["trials"].get(trial.name)
            if row and _changed(row, trial) and trial.name not in rerun \
                    and row.get("status") == "scored":
                raise GankitError(f"trial {trial.name} changed since it ran (its recipe is not "
                                  f"the one in {out / 'runs' / trial.name}); give it a new "
                                  f"name, or pass --rerun {trial.name}")
            if row and not _changed(row, trial) and not row.get("setting"):
                row.update(setting=trial.setting, seed=trial.seed)  # scored by an older gankit
        if plan.split is not None:
            _make_split_folders(out / "data", plan.split)
        state["gankit_version"] = __version__
        state["machine"] = machine.cpu().describe()
        state["isa_cap"] = os.environ.get("ONEDNN_MAX_CPU_ISA")
        state["base"] = str(plan.base.resolve())
        state["trials_file"] = str(plan.trials_file.resolve())
        chosen = [t for t in plan.trials if not only or t.name in only]
        failed = 0
        for index, trial in enumerate(chosen, 1):
            row = state["trials"].get(trial.name)
            if trial.name in rerun and row:
                state["trials"].pop(trial.name)
                row = None
                if (out / "runs" / trial.name).exists():
                    _discard(out / "runs" / trial.name)
            if row and row.get("status") == "scored":
                _say(quiet, f"sweep: [{index}/{len(chosen)}] {trial.name}: done already "
                            f"(FID {_best(row):.2f})")
                continue
            (out / "recipes").mkdir(exist_ok=True)
            recipe_file = out / "recipes" / f"{trial.name}.yaml"
            atomic.write_text(recipe_file, f"# trial {trial.name} of gankit sweep: "
                              f"{trial.what}\n" + dump_yaml(trial.resolved))
            run_dir = out / "runs" / trial.name
            if not _trained(run_dir, trial):
                if run_dir.exists():
                    _say(quiet, f"sweep: {trial.name}: {run_dir} did not finish training; "
                                f"training it again from the start")
                    _discard(run_dir)
                _say(quiet, f"sweep: [{index}/{len(chosen)}] {trial.name}: training for "
                            f"{plan.config['minutes']:g} min ({trial.what})")
                code, last = _train(recipe_file, run_dir, out / "logs" / f"{trial.name}.log")
                if code == 130 or code == -signal.SIGINT:
                    raise KeyboardInterrupt
                if code != 0:
                    failed += 1
                    state["trials"][trial.name] = _failed(trial, f"gankit run exited {code}: "
                                                                 f"{last}")
                    _write_outputs(out, state, plan)
                    print(f"sweep: {trial.name}: failed (gankit run exited {code}: {last}); "
                          f"see {out / 'logs' / (trial.name + '.log')}", file=sys.stderr)
                    continue
            _say(quiet, f"sweep: {trial.name}: scoring {plan.n} images of each generator")
            try:
                row = _score(trial, run_dir, plan)
            except GankitError as err:  # recorded; the next sweep scores it again
                failed += 1
                state["trials"][trial.name] = _failed(trial, f"scoring: {err}"[:500])
                _write_outputs(out, state, plan)
                print(f"sweep: {trial.name}: scoring failed: {err}", file=sys.stderr)
                continue
            state["trials"][trial.name] = row
            _write_outputs(out, state, plan)
            ema = f"EMA {row['scores']['end']['ema']['fid']:.2f}, " if trial.ema else ""
            _say(quiet, f"sweep: {trial.name}: {row['steps']} steps; FID {ema}trained G "
                        f"{row['scores']['end']['trained']['fid']:.2f}")
        _write_outputs(out, state, plan)
    if not quiet:
        print(report(state, plan.trials))
    print(f"results: {out / RESULTS_CSV}\npage:    {out / PAGE}")
    return 1 if failed else 0


def _failed(trial: Trial, error: str) -> dict[str, Any]:
    """The row of a trial that failed: the next sweep tries it again."""
    return {"name": trial.name, "what": trial.what, "digest": trial.digest,
            "fingerprint": trial.fingerprint, "status": "failed", "error": error}


def _say(quiet: bool, message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _trained(run_dir: Path, trial: Trial) -> bool:
    """``run_dir`` holds this trial trained to its end (the sweep stopped while scoring)."""
    run = RunDir(run_dir)
    try:
        status = read_json(run.status_file, expect=dict)
        stored = run.recipe_file.read_text()
    except (OSError, ValueError, RecursionError):
        return False
    from gankit.recipe.strict_yaml import parse_yaml

    try:
        same = parse_yaml(stored, str(run.recipe_file)) == trial.resolved
    except RecipeError:
        return False
    return (same and isinstance(status, dict)
            and status.get("status") in ("stopped", "completed")
            and run.generator_file.is_file())


def _train(recipe_file: Path, run_dir: Path, log: Path) -> tuple[int, str]:
    """``gankit run`` in a process of its own (its timing is not the sweep's), its output to
    ``log``.

    The child runs in a session of its own, so a Ctrl-C at the terminal reaches the sweep
    only, and the sweep passes each SIGINT and SIGTERM on once: the run stops as a run stops
    (a second signal stops it at once). A sweep killed with SIGKILL leaves its trial to end
    at its budget; the next sweep refuses to touch it while it runs (its run directory's
    lock)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "gankit", "run", str(recipe_file), "--out", str(run_dir),
               "--quiet"]
    stopping: list[int] = []
    with open(log, "w") as f:
        child = subprocess.Popen(command, stdout=f, stderr=subprocess.STDOUT,
                                 start_new_session=True)

        def forward(signum, frame):
            stopping.append(signum)
            try:
                child.send_signal(signum)
            except ProcessLookupError:
                pass

        previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            code = child.wait()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
    if stopping:
        raise KeyboardInterrupt
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return code, (lines[-1][:300] if lines else "no output")


def _discard(run_dir: Path) -> None:
    """Remove a trial's unfinished run directory, unless a process still trains in it."""
    if RunDir(run_dir).lock_file.exists():
        with RunDir(run_dir).lock():  # held by a live run: one line naming its pid
            shutil.rmtree(run_dir)
    else:
        shutil.rmtree(run_dir)


def _score(trial: Trial, run_dir: Path, plan: SweepPlan) -> dict[str, Any]:
    """FID and KID of the trial's generators (EMA and trained, at the end and at every
    snapshot), and a grid of each."""
    run = RunDir(run_dir)
    try:
        status = read_json(run.status_file, expect=dict)
    except (OSError, UnsafeFileError) as exc:
        raise GankitError(f"{run.status_file}: cannot be read ({exc}); train the trial again "
                          f"with --rerun {trial.name}") from None
    scores: dict[str, dict[str, Any]] = {"end": {"step": status.get("step"),
                                                 "seconds": status.get("seconds")}}
    kinds = (("ema", True), ("trained", False)) if trial.ema else (("trained", False),)
    for key, use_ema in kinds:
        scores["end"][key] = _evaluate(str(run_dir), plan, f"{trial.name}-{key}",
                                       use_ema=use_ema)
        _grid(run_dir, plan.out / "grids" / f"{trial.name}-{key}.png", use_ema)
    for folder in sorted(run.snapshots.glob("*/")):
        try:
            info = read_json(folder / "snapshot.json", expect=dict)
        except (OSError, ValueError):
            continue
        at = {"step": info.get("step"), "seconds": info.get("seconds")}
        for key, file in (("ema", RunDir.generator_in(folder, ema=True)),
                          ("trained", RunDir.generator_in(folder))):
            if file.is_file():
                at[key] = _evaluate(str(file), plan,
                                    f"{trial.name}-{folder.name}-{key}",
                                    value_range=trial.value_range)
        scores[folder.name] = at
    return {"name": trial.name, "what": trial.what, "digest": trial.digest,
            "fingerprint": trial.fingerprint, "setting": trial.setting, "seed": trial.seed,
            "status": "scored", "recipe": str(trial.recipe_path), "overrides": trial.overrides,
            "steps": status.get("step"), "batch_size": trial.batch_size,
            "images_seen": (status.get("step") or 0) * trial.batch_size,
            "train_seconds": status.get("seconds"), "ema": trial.ema, "scores": scores,
            "run_dir": str(run_dir), "finished": time.strftime("%Y-%m-%d %H:%M:%S")}


def _evaluate(source: str, plan: SweepPlan, label: str, *, use_ema: bool = True,
              value_range: tuple[float, float] | None = None) -> dict[str, float]:
    from gankit.app.evaluate import plan_evaluation
    from gankit.evaluation.features import evaluate

    json_path = plan.out / "evals" / f"{label}.json"
    json_path.parent.mkdir(exist_ok=True)
    e = plan_evaluation(source, list(METRICS), reference=str(plan.reference),
                        extractor=plan.extractor, overrides=plan.extractor_overrides,
                        n=plan.n, seed=plan.config["seed"],
                        value_range=value_range, json_path=str(json_path), use_ema=use_ema)
    result = evaluate(e.source, e.reference, e.extractor, e.metrics, e.n, e.seed,
                      progress=False)
    atomic.write_text(json_path, result.to_json())
    return {k: float(v) for k, v in result.values.items()}


def _grid(run_dir: Path, out: Path, use_ema: bool) -> None:
    from gankit.app.sample import draw, plan_sample

    out.parent.mkdir(exist_ok=True)
    draw(plan_sample(run_dir, n=GRID_N, seed=0, out=out, use_ema=use_ema))


# --- results ---------------------------------------------------------------------------------

def _best(row: dict[str, Any]) -> float:
    end = _scores(row).get("end", {})
    values = [end[k].get("fid") for k in ("ema", "trained") if isinstance(end.get(k), dict)]
    values = [v for v in values if _is_number(v)]
    return min(values) if values else math.inf


def _ordered(state: dict[str, Any], trials: Sequence[Trial] = ()) -> list[dict[str, Any]]:
    rows = list(state["trials"].values())
    return sorted(rows, key=lambda r: (r.get("status") != "scored", _best(r)))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _scores(row: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A trial's scores by time point, leaving out what a hand-edited sweep.json garbled."""
    scores = row.get("scores")
    if not isinstance(scores, dict):
        return {}
    return {str(at): v for at, v in scores.items() if isinstance(v, dict)}


def _fmt(end: dict[str, Any], key: str, metric: str) -> str:
    value = end.get(key, {}).get(metric) if isinstance(end.get(key), dict) else None
    return f"{value:.4g}" if _is_number(value) else ""


CSV_COLUMNS = ["trial", "what", "status", "steps", "images_seen", "train_seconds", "fid_ema",
               "kid_ema", "kid_std_ema", "fid_trained", "kid_trained", "kid_std_trained",
               "run_dir", "error"]


def results_csv(state: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in _ordered(state):
        end = _scores(r).get("end", {})
        writer.writerow([r.get("name"), r.get("what"), r.get("status"), r.get("steps", ""),
                         r.get("images_seen", ""), _num(r.get("train_seconds")),
                         _fmt(end, "ema", "fid"), _fmt(end, "ema", "kid"),
                         _fmt(end, "ema", "kid_std"), _fmt(end, "trained", "fid"),
                         _fmt(end, "trained", "kid"), _fmt(end, "trained", "kid_std"),
                         r.get("run_dir", ""), r.get("error", "")])
    return buffer.getvalue()


def scores_csv(state: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["trial", "at", "step", "seconds", "generator", "fid", "kid", "kid_std"])
    for r in _ordered(state):
        for at, values in _scores(r).items():
            for key in ("ema", "trained"):
                if isinstance(values.get(key), dict):
                    writer.writerow([r.get("name"), at, values.get("step"),
                                     _num(values.get("seconds")), key,
                                     _fmt(values, key, "fid"), _fmt(values, key, "kid"),
                                     _fmt(values, key, "kid_std")])
    return buffer.getvalue()


def settings(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The scored trials grouped by setting (trials that differ only in ``train.seed``), each
    with the median, least and greatest FID of each generator over its seeds; best first (the
    lower of the two medians). A trial recorded without a setting is a group of its own."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in _ordered(state):
        if r.get("status") != "scored":
            continue
        setting = r.get("setting")
        key = setting if isinstance(setting, str) and setting else f"trial {r.get('name')}"
        groups.setdefault(key, []).append(r)
    result = []
    for key, rows in groups.items():
        rows = sorted(rows, key=lambda r: r["seed"] if _is_number(r.get("seed")) else math.inf)
        entry: dict[str, Any] = {"setting": key, "trials": [r.get("name") for r in rows],
                                 "seeds": [r.get("seed") for r in rows],
                                 "what": rows[0].get("what", "")}
        for generator in ("ema", "trained"):
            values = []
            for r in rows:
                score = _scores(r).get("end", {}).get(generator)
                if isinstance(score, dict) and _is_number(score.get("fid")):
                    values.append(float(score["fid"]))
            entry[generator] = ({"median": statistics.median(values), "min": min(values),
                                 "max": max(values), "n": len(values)} if values else None)
        result.append(entry)
    return sorted(result, key=lambda e: min([e[g]["median"] for g in ("ema", "trained")
                                             if e[g]] or [math.inf]))


SETTINGS_COLUMNS = ["setting", "trials", "seeds", "n", "what", "median_fid_ema", "min_fid_ema",
                    "max_fid_ema", "median_fid_trained", "min_fid_trained", "max_fid_trained"]


def settings_csv(state: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SETTINGS_COLUMNS)
    for e in settings(state):
        cells = []
        for generator in ("ema", "trained"):
            stats = e[generator] or {}
            cells += [f"{stats[k]:.4g}" if k in stats else "" for k in ("median", "min", "max")]
        writer.writerow([e["trials"][0], " ".join(map(str, e["trials"])),
                         " ".join("" if s is None else str(s) for s in e["seeds"]),
                         len(e["trials"]), e["what"], *cells])
    return buffer.getvalue()


def _spread(stats: dict[str, Any] | None) -> str:
    if not stats:
        return "–"
    if stats["n"] == 1:
        return f"{stats['median']:.2f}"
    return f"{stats['median']:.2f} ({stats['min']:.2f}–{stats['max']:.2f})"


def settings_table(state: dict[str, Any]) -> str:
    """The settings tried with several seeds, as a Markdown table: the median FID of each
    generator over the seeds, and its range. Empty when no setting has two seeds."""
    groups = [e for e in settings(state) if len(e["trials"]) > 1]
    if not groups:
        return ""
    lines = ["| setting | trials (seed) | FID (EMA), median (range) "
             "| FID (trained G), median (range) |", "|---|---|---:|---:|"]
    for e in groups:
        trials = ", ".join(f"`{_cell(name)}` ({_cell(seed)})"
                           for name, seed in zip(e["trials"], e["seeds"]))
        lines.append(f"| {_cell(e['what'])} | {trials} | {_spread(e['ema'])} "
                     f"| {_spread(e['trained'])} |")
    return "\n".join(lines)


def report(state: dict[str, Any], trials: Sequence[Trial] = ()) -> str:
    """What the sweep prints at the end and ``--table`` prints: the trials' table, then, where
    a setting ran with several seeds, the medians over its seeds."""
    by_setting = settings_table(state)
    return table(state, trials) + (f"\n\nBy setting, over its seeds:\n\n{by_setting}"
                                   if by_setting else "")


def _num(value: Any) -> str:
    return f"{value:.1f}" if _is_number(value) else ""


def _cell(text: Any) -> str:
    """``text`` as one Markdown table cell: one line, its pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def table(state: dict[str, Any], trials: Sequence[Trial] = ()) -> str:
    """The results as a Markdown table, best first (the lower of the two FIDs)."""
    lines = ["| trial | what changes | steps | images seen | FID (EMA) | KID (EMA) "
             "| FID (trained G) | KID (trained G) |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in _ordered(state, trials):
        what = _cell(r.get("what", ""))
        if r.get("status") != "scored":
            lines.append(f"| `{r.get('name')}` | {what} | {r.get('status')} | | | | | |")
            continue
        try:
            end = r["scores"]["end"]
            ema = (f"{end['ema']['fid']:.2f} | {end['ema']['kid']:.3f} ± "
                   f"{end['ema']['kid_std']:.3f}" if "ema" in end else "– | –")
            t = end["trained"]
            lines.append(f"| `{r['name']}` | {what} | {r['steps']:,} | {r['images_seen']:,} | "
                         f"{ema} | {t['fid']:.2f} | {t['kid']:.3f} ± {t['kid_std']:.3f} |")
        except (KeyError, TypeError, ValueError):   # a hand-edited sweep.json
            lines.append(f"| `{_cell(r.get('name'))}` | {what} | damaged entry | | | | | |")
    return "\n".join(lines)


def page(state: dict[str, Any]) -> str:
    """``index.html``: the table and every trial's grids (files in ``grids/``)."""
    esc = html.escape
    rows = []
    for r in _ordered(state):
        end = _scores(r).get("end", {})
        grids = "".join(
            f'<figure><img src="grids/{esc(str(r.get("name")))}-{key}.png" alt="{key} grid of '
            f'{esc(str(r.get("name")))}" width="256"><figcaption>{label} FID {_fmt(end, key, "fid")}'
            f'</figcaption></figure>'
            for key, label in (("ema", "EMA"), ("trained", "trained G"))
            if isinstance(end.get(key), dict))
        rows.append(f"<tr><td><code>{esc(str(r.get('name')))}</code></td>"
                    f"<td>{esc(str(r.get('what', '')))}</td><td>{esc(str(r.get('status')))}"
                    f"{': ' + esc(str(r['error'])) if r.get('error') else ''}</td>"
                    f"<td>{esc(str(r.get('steps', '')))}</td>"
                    f"<td>{esc(_fmt(end, 'ema', 'fid'))}</td>"
                    f"<td>{esc(_fmt(end, 'trained', 'fid'))}</td><td>{grids}</td></tr>")
    config = state.get("config", {})
    by_setting = "".join(
        f"<tr><td>{esc(str(e['what']))}</td><td>"
        + ", ".join(f"<code>{esc(str(name))}</code> ({esc(str(seed))})"
                    for name, seed in zip(e["trials"], e["seeds"]))
        + f"</td><td>{esc(_spread(e['ema']))}</td><td>{esc(_spread(e['trained']))}</td></tr>"
        for e in settings(state) if len(e["trials"]) > 1)
    if by_setting:
        by_setting = ("<h2>By setting, over its seeds</h2><table><tr><th>setting</th>"
                      "<th>trials (seed)</th><th>FID (EMA), median (range)</th>"
                      "<th>FID (trained G), median (range)</th></tr>" + by_setting
                      + "</table>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src 'self' file:; style-src 'unsafe-inline'">
<title>gankit sweep</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top}}figure{{display:inline-block;margin:0 8px 0 0}}
img{{image-rendering:pixelated}}</style></head><body>
<h1>gankit sweep</h1>
<p>{esc(str(len(state.get('trials', {}))))} trials of {esc(str(config.get('minutes')))} minutes each,
scored with FID and KID of {esc(str(config.get('n')))} images against {esc(str(config.get('reference')))}
(extractor {esc(str(config.get('extractor')))}); lower is better. Machine: {esc(str(state.get('machine', '')))};
gankit {esc(str(state.get('gankit_version', '')))}.</p>
<table><tr><th>trial</th><th>what</th><th>status</th><th>steps</th><th>FID (EMA)</th>
<th>FID (trained G)</th><th>grids (seed 0)</th></tr>
{''.join(rows)}
</table>{by_setting}</body></html>
"""


def _write_outputs(out: Path, state: dict[str, Any], plan: SweepPlan) -> None:
    atomic.write_text(out / STATE_FILE, json.dumps(state, indent=1, default=str) + "\n")
    atomic.write_text(out / RESULTS_CSV, results_csv(state))
    atomic.write_text(out / SCORES_CSV, scores_csv(state))
    atomic.write_text(out / SETTINGS_CSV, settings_csv(state))
    atomic.write_text(out / PAGE, page(state))
