"""``gankit export``: a trained generator as a SavedModel, ONNX, LiteRT or plain Keras file
that runs without gankit, with a model card (``model.json``) beside it.

The exported model takes the latent vectors (float32 ``(n, latent_dim)``) and, for a
class-conditional generator, the class indices (int32 ``(n,)``), and gives uint8 images
``(n, height, width, channels)``: the generator's value range is folded in, as
``gankit sample`` maps it (``round((x - low) / (high - low) * 255)``, clipped to 0..255).
The conversions are Keras' own (``Model.export``: ``tf_saved_model``, ``onnx`` through
tf2onnx, ``litert`` through TensorFlow's converter); gankit writes no converter.

Everything the arguments alone decide (the source, the format, the packages a format needs,
the output path) is checked before TensorFlow loads.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gankit._version import __version__
from gankit.errors import GankitError
from gankit.rundir.owned import refuse_owned_output

FORMATS = ("saved_model", "onnx", "litert", "keras")
"""What ``--format`` may name."""

_NEEDS = {"onnx": (("tf2onnx", "tf2onnx"), ("onnx", "onnx")), "litert": (), "saved_model": (),
          "keras": ()}
"""The packages each format's conversion imports, as (module, distribution)."""

_SUFFIX = {"saved_model": "", "onnx": ".onnx", "litert": ".tflite", "keras": ".keras"}

_HOW = {
    "saved_model": ("import numpy as np, tensorflow as tf",
                    "model = tf.saved_model.load('{path}')",
                    "images = model.serve({call}).numpy()  # uint8 {shape}"),
    "onnx": ("import numpy as np, onnxruntime as ort",
             "session = ort.InferenceSession('{path}')",
             "images = session.run(None, {feeds})[0]  # uint8 {shape}"),
    "litert": ("import numpy as np; from ai_edge_litert.interpreter import Interpreter",
               "run = Interpreter(model_path='{path}').get_signature_runner()",
               "images = next(iter(run({kwargs}).values()))  # uint8 {shape}"),
    "keras": ("import numpy as np, keras",
              "model = keras.saving.load_model('{path}')",
              "images = np.asarray(model({call}))  # uint8 {shape}"),
}


@dataclass(frozen=True)
class ExportPlan:
    """A checked export request."""

    source: Path
    format: str
    out: Path
    run: Any = None
    """The run directory (a :class:`gankit.rundir.run_dir.RunDir`), or None for a file."""
    sample_plan: Any = None
    """For a run: the :class:`gankit.app.sample.SamplePlan` that says which generator."""
    value_range: tuple[float, float] = (-1.0, 1.0)


def missing_packages(format: str) -> list[str]:
    """The distributions ``format`` needs that are not installed."""
    return [dist for module, dist in _NEEDS[format] if importlib.util.find_spec(module) is None]


def plan_export(source: str | Path, format: str, *, out: str | Path | None = None,
                use_ema: bool = True, best: bool = False, checkpoint: int | None = None,
                value_range: tuple[float, float] | None = None, registry=None) -> ExportPlan:
    """Check an export request without TensorFlow.

    Raises:
        GankitError: an unknown format, a missing package, a source that is neither a run
            directory nor a ``.keras`` file, a run without a generator yet, an output that
            exists or cannot be written, or one of the run's own files.
    """
    if format not in FORMATS:
        from gankit.errors import did_you_mean

        raise GankitError(f"--format {format!r} is not one of {', '.join(FORMATS)}"
                          f"{did_you_mean(format, FORMATS)}")
    missing = missing_packages(format)
    if missing:
        raise GankitError(f"--format {format} needs {' and '.join(missing)}, which "
                          f"{'is' if len(missing) == 1 else 'are'} not installed: "
                          f"pip install 'gankit[export]'")
    source = Path(source)
    if not source.exists():
        raise GankitError(f"{source} does not exist; expected a run directory or a .keras "
                          f"generator")
    run = sample_plan = None
    if source.is_dir():
        from gankit.app.sample import plan_sample
        from gankit.rundir.checkpoints import CheckpointStore
        from gankit.rundir.run_dir import RunDir

        run = RunDir(source)
        if not run.recipe_file.is_file():
            raise GankitError(f"{source} is not a gankit run directory (no recipe.yaml)")
        if not (best or checkpoint is not None or CheckpointStore(run.checkpoints).steps()
                or run.generator_in(run.path, False).is_file()):
            raise GankitError(f"{source} has no generator yet (no checkpoint and no "
                              f"generator.keras): train it first")
        scratch = Path(tempfile.gettempdir()) / "gankit-export-plan.png"
        sample_plan = plan_sample(source, 1, 0, checkpoint, scratch, registry, use_ema,
                                  best=best)
        value_range = tuple(float(v) for v in
                            sample_plan.recipe.create("dataset").value_range)
        name = f"{run.path.name}-generator{'_best' if best else ''}"
    else:
        if best or checkpoint is not None:
            raise GankitError("--best and --checkpoint need a run directory, not a .keras file")
        if source.suffix != ".keras":
            raise GankitError(f"{source} is not a .keras file or a run directory")
        name = source.stem
    value_range = tuple(value_range) if value_range is not None else (-1.0, 1.0)
    low, high = value_range
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise GankitError(f"--value-range needs two finite numbers, low < high; got "
                          f"{low} {high}")
    if out is not None:
        refuse_owned_output(out)
        target = Path(out)
        if format != "saved_model" and target.suffix != _SUFFIX[format]:
            raise GankitError(f"--out {target}: a {format} export is a {_SUFFIX[format]} file; "
                              f"name it so")
    else:
        folder = run.path / "export" if run is not None else source.parent
        target = folder / f"{name}-{format}{_SUFFIX[format]}"
    if target.exists():
        raise GankitError(f"{target} exists; remove it or choose another --out")
    parent = target.parent
    existing = next((p for p in (parent, *parent.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise GankitError(f"cannot write {target}: {existing} is not a directory")
    import os

    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise GankitError(f"cannot write {target}: {existing} is not writable; choose "
                          f"another --out")
    return ExportPlan(source, format, target, run, sample_plan, value_range)


def as_float32(model):
    """``model`` computing in float32: a generator trained under a mixed policy is rebuilt
    from its config with every layer's policy float32 and given the same (float32) weights,
    since ONNX and LiteRT runtimes lack bfloat16 kernels."""
    import keras

    def mixed(node) -> bool:
        if isinstance(node, dict):
            if node.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and str(
                    node.get("config", {}).get("name", "")).startswith("mixed_"):
                node["config"]["name"] = "float32"
                return True
            return any([mixed(v) for v in node.values()])
        if isinstance(node, list):
            return any([mixed(v) for v in node])
        return False

    config = keras.saving.serialize_keras_object(model)
    if not mixed(config):
        return model
    from gankit.plugin.keras_objects import custom_objects

    with keras.saving.custom_object_scope(custom_objects()):
        rebuilt = keras.saving.deserialize_keras_object(config)
    rebuilt.set_weights(model.get_weights())
    return rebuilt


def wrap(generator_model, value_range: tuple[float, float], latent_dim: int,
         num_classes: int):
    """A Keras model ``latents[, labels] -> uint8 images``, the value range folded in."""
    import keras
    from keras import ops

    latents = keras.Input((latent_dim,), dtype="float32", name="latent")
    inputs: Any = latents
    if num_classes:
        labels = keras.Input((), dtype="int32", name="label")
        inputs = [latents, labels]
    low, high = (float(v) for v in value_range)
    x = ops.cast(generator_model(inputs, training=False), "float32")
    x = (x - low) * (255.0 / (high - low))
    x = ops.cast(ops.clip(ops.round(x), 0.0, 255.0), "uint8")
    return keras.Model(inputs, x, name="gankit_generator")


def export(plan: ExportPlan) -> dict:
    """Write the exported model and its card; return the card."""
    model, info = _load(plan)
    model = as_float32(model)
    wrapped = wrap(model, plan.value_range, info["latent_dim"], info["num_classes"])
    probe = np.zeros((1, info["latent_dim"]), np.float32)
    wrapped([probe, np.zeros((1,), np.int32)] if info["num_classes"] else probe)  # built
    plan.out.parent.mkdir(parents=True, exist_ok=True)
    with _claimed(plan.out):
        return _write(plan, wrapped, info)


@contextlib.contextmanager
def _claimed(out: Path):
    """Hold ``out`` for this export: an ``flock`` on ``.NAME.lock`` beside it, so that a
    second export to the same ``--out`` is refused instead of replacing this one's file
    (or failing on its folder) at the end. The lock goes with the process, also a killed
    one; a lock file left behind is taken over by the next export.

    Raises:
        GankitError: another export holds ``out``, or ``out`` exists (an export that
            finished while this one was starting).
    """
    import os

    path = out.parent / f".{out.name}.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise GankitError(f"cannot write {out}: {exc.strerror or exc}; choose another "
                          f"--out") from None
    held = False
    try:
        try:
            import fcntl
        except ImportError:  # Windows: no flock; the check below still refuses most races
            fcntl = None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise GankitError(f"another gankit export is writing {out}; wait for it to "
                                  f"finish or choose another --out") from None
        held = True
        if out.exists() or out.is_symlink():
            raise GankitError(f"{out} exists; remove it or choose another --out")
        yield
    finally:
        if held:
            try:
                path.unlink()
            except OSError:
                pass
        os.close(fd)  # drops the flock


def _write(plan: ExportPlan, wrapped, info: dict) -> dict:
    """Export ``wrapped`` to ``plan.out`` and write its card beside it; return the card."""
    # Written beside the target under another name, then moved: an interrupted export
    # leaves no half-written file under the name the card gives.
    work = Path(tempfile.mkdtemp(prefix=".tmp-export-", dir=plan.out.parent))
    try:
        staged = work / plan.out.name
        if plan.format == "keras":
            try:
                wrapped.save(staged)
            except OSError as exc:
                raise GankitError(f"cannot write {plan.out}: {exc.strerror or exc}; choose "
                                  f"another --out") from None
        else:
            fmt = {"saved_model": "tf_saved_model"}.get(plan.format, plan.format)
            _quiet_export(wrapped, staged, fmt)
        if plan.format == "litert":
            _check_litert(staged, info)
        card = _card(plan, info, wrapped, staged)
        if plan.format == "keras":
            _needs(card, staged)
        (work / "card.json").write_text(json.dumps(card, indent=2) + "\n")
        staged.rename(plan.out)
        card_path = _card_path(plan.out)
        (work / "card.json").rename(card_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return card


def _check_litert(path: Path, info: dict) -> None:
    """Run the LiteRT file once in the plain interpreter (if installed): TensorFlow's
    converter falls back to "select TF ops" for some ops, which only a Flex-enabled runtime
    has, so such a file would fail where it is meant to run."""
    if importlib.util.find_spec("ai_edge_litert") is None:
        return
    import re

    from ai_edge_litert.interpreter import Interpreter

    feeds = {"latent": np.zeros((1, info["latent_dim"]), np.float32)}
    if info["num_classes"]:
        feeds["label"] = np.zeros((1,), np.int32)
    try:
        Interpreter(model_path=str(path)).get_signature_runner()(**feeds)
    except (RuntimeError, ValueError) as exc:
        ops = sorted(set(re.findall(r"\((Flex\w+)\)", str(exc))))
        what = f" ({', '.join(ops)})" if ops else ""
        raise GankitError(f"the LiteRT export needs TensorFlow ops{what} that the LiteRT "
                          f"interpreter lacks (only a runtime with the Flex delegate runs "
                          f"it); export this generator as saved_model or onnx") from None


def _card_path(out: Path) -> Path:
    return (out / "model.json") if out.is_dir() else out.with_name(out.name + ".model.json")


def _quiet_export(model, path: Path, fmt: str) -> None:
    import contextlib
    import io
    import logging
    import warnings

    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf2onnx's NumPy deprecations
        try:
            model.export(str(path), format=fmt, verbose=False)
        except Exception as exc:  # noqa: BLE001 - converters raise many types
            first = next((line for line in str(exc).splitlines() if line.strip()), "")
            raise GankitError(f"cannot export to {fmt}: {type(exc).__name__}: "
                              f"{first[:300]}") from None


def _load(plan: ExportPlan):
    """The generator model and what the card says about it."""
    info: dict[str, Any] = {"class_names": None, "step": None, "recipe": None,
                            "metrics": None, "ema": None}
    if plan.run is None:
        from gankit.plugin.keras_objects import load_keras_model

        model = load_keras_model(plan.source)
        shapes = model.inputs
        info["latent_dim"] = int(shapes[0].shape[-1])
        info["num_classes"] = 0 if len(shapes) == 1 else -1  # unknown count
        return model, info
    from gankit.app.sample import load_model

    sp = plan.sample_plan
    generator = sp.recipe.create("generator")
    ema = sp.use_ema and sp.recipe.ema is not None
    model = load_model(sp, generator)
    info.update(latent_dim=generator.latent_dim, num_classes=generator.num_classes,
                class_names=list(sp.class_names) if sp.class_names else None, ema=ema,
                recipe={"name": sp.recipe.name, "digest": sp.recipe.digest()})
    status = _status(plan.run)
    info["step"] = (sp.checkpoint if sp.checkpoint is not None else status.get("step"))
    info["metrics"] = _best_metrics(plan.run)
    return model, info


def _status(run) -> dict:
    from gankit.util.safe_read import UnsafeFileError, read_json

    try:
        data = read_json(run.path / "run.json")
    except (OSError, UnsafeFileError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _best_metrics(run) -> dict | None:
    from gankit.util.safe_read import UnsafeFileError, read_json

    try:
        data = read_json(run.best_dir / "best.json")
    except (OSError, UnsafeFileError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _card(plan: ExportPlan, info: dict, wrapped, staged: Path) -> dict:
    h, w, c = (int(d) for d in wrapped.outputs[0].shape[1:])
    conditional = info["num_classes"] != 0
    inputs = [{"name": "latent", "dtype": "float32", "shape": [None, info["latent_dim"]],
               "what": "latent vectors, standard normal"}]
    if conditional:
        inputs.append({"name": "label", "dtype": "int32", "shape": [None],
                       "what": "class indices into class_names"})
    shape = f"(n, {h}, {w}, {c})"
    name = plan.out.name
    call = "z, y" if conditional else "z"
    if plan.format == "saved_model":
        call = "latent=z, label=y" if conditional else "z"
    feeds = "{'latent': z, 'label': y}" if conditional else "{'latent': z}"
    kwargs = "latent=z, label=y" if conditional else "latent=z"
    lines = [line.format(path=name, call=f"[{call}]" if plan.format == "keras" and conditional
                         else call, feeds=feeds, kwargs=kwargs, shape=shape)
             for line in _HOW[plan.format]]
    draw = (f"z = np.random.default_rng(0).standard_normal((64, {info['latent_dim']}))"
            f".astype(np.float32)")
    if conditional:
        draw += f"; y = (np.arange(64) % {max(info['num_classes'], 1)}).astype(np.int32)"
    return {
        "gankit_version": __version__,
        "format": plan.format,
        "file": name,
        "source": str(plan.source),
        "recipe": info["recipe"],
        "step": info["step"],
        "ema": info["ema"],
        "latent_dim": info["latent_dim"],
        "num_classes": info["num_classes"] if info["num_classes"] >= 0 else None,
        "class_names": info["class_names"],
        "value_range_folded_in": list(plan.value_range),
        "inputs": inputs,
        "outputs": [{"name": "images", "dtype": "uint8", "shape": [None, h, w, c],
                     "layout": "NHWC"}],
        "metrics": info["metrics"],
        "usage": [lines[0], draw, *lines[1:]],
        "sha256": _digest(staged),
    }


def _needs(card: dict, staged: Path) -> None:
    """A ``.keras`` export of a generator with a plugin's own layers loads only where that
    plugin is installed (the other formats hold the layers' computation as ops): the card
    says which classes and distributions, and loads it through gankit, which finds them."""
    from gankit.plugin.keras_objects import distribution_of, saved_objects

    needed = saved_objects(staged)
    if not needed:
        return
    card["needs"] = [{"class": o.name, "saved_as": o.lookup_name, "module": o.module,
                      "distribution": distribution_of(o)} for o in needed]
    dists = sorted({n["distribution"] or n["module"] or n["class"] for n in card["needs"]})
    card["usage"][0] = "import numpy as np, gankit"
    card["usage"][2] = (f"model = gankit.load_keras_model('{card['file']}')  # its layers "
                        f"come from {', '.join(dists)}: pip install it; keras.saving."
                        f"load_model alone cannot find them")


def _digest(path: Path | None) -> str | None:
    if path is None or not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()
