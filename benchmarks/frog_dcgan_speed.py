"""Training speed of the frog DCGAN: gankit's compiled step against the article's loop.

One run measures, on this machine:

* ``gankit``: a ``Trainer`` built from ``recipes/frog_dcgan.yaml`` with an in-memory dataset
  of random images (registered through the plugin hook, like any plugin's), driven as
  ``Trainer.run`` drives it: ``Trainer._dataset`` feeds ``Trainer.step_function()`` and the
  metrics are read back as Python floats after every step.
* ``transcription``: the article's loop made Keras-3-correct -- ``generator.predict``, then
  ``discriminator.train_on_batch`` on fakes + reals labelled 1/0 + 0.05 * uniform noise, then
  ``gan.train_on_batch`` with the discriminator frozen -- compiled with Keras' defaults.
* ``gankit:prec=mixed_bfloat16``: the same with ``train.precision: mixed_bfloat16`` (bfloat16
  arithmetic with float32 weights; fast on CPUs with AMX or AVX-512 BF16 units, which the
  script reports from ``/proc/cpuinfo``).
* the float32 and bfloat16 matrix-multiply rates of ``tf.linalg.matmul`` on all cores.

Neither loop writes images or weights while timed. Each configuration runs in its own worker
process; the workers take turns, one timed round each, so that a busy moment on a shared
machine hits every configuration alike. Warm-up steps (tracing, XLA compilation) are not
timed. Reported: medians over the rounds, and each ratio as the median of the per-round
ratios to the transcription.

FLOPs of a step are counted from the layer shapes, Dense, Conv2D and Conv2DTranspose only
(bias adds, activations and optimizer updates are left out). A layer's forward pass costs
``2 * MACs`` per image; its weight gradient as much again; its input gradient as much again
where one is needed. One step is: the generator forward on B latents (the fakes); the
discriminator forward, weight gradient and input gradient (all layers but the first) on 2B
images; the generator forward on B new latents, the discriminator forward and input gradient
(every layer) on those B fakes, and the generator weight gradient and input gradient (all
layers but the first). With the article's models that is about 32 GFLOP per image.

The configurations timed are a list of variants (``DEFAULT_VARIANTS``, ``QUICK_VARIANTS``, or
``--variants``), each ``kind[:key=value,...]`` with the keys of ``VARIANT_KEYS``; a new
``train`` setting is timed by adding its key there and a variant to the lists.

Usage::

    python benchmarks/frog_dcgan_speed.py            # 9 minutes for batch 2 and 20, more for 64
    python benchmarks/frog_dcgan_speed.py --quick    # about 2 minutes: rougher, fewer variants
    python benchmarks/frog_dcgan_speed.py --batch-sizes 2 --variants transcription \\
        gankit:xla=off "gankit:xla=off,env=TF_ENABLE_ONEDNN_OPTS:0"
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

LATENT_DIM = 32
IMAGES = 240  # the synthetic dataset; a multiple of both default batch sizes
# (issue, variant, batch, speed-up over the transcription at least)
TARGETS = [
    ("issue 3", "gankit", 2, 1.25),
    ("issue 3", "gankit", 20, 1.15),
    ("issue 10", "gankit", 2, 1.3),
    ("issue 10", "gankit:prec=mixed_bfloat16", 2, 2.0),
    ("issue 10", "gankit:prec=mixed_bfloat16", 20, 3.0),
]
TARGET_MATMUL_FRACTION = 0.90  # issue 3: the share of the float32 matmul rate at batch 20
CPU_UNITS = ("amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2")  # /proc/cpuinfo flags
DEFAULT_RECIPE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "recipes",
                              "frog_dcgan.yaml")

VARIANT_KEYS = {
    "xla": "gankit: train.xla, auto|on|off (default: auto)",
    "prec": "gankit: train.precision, auto|float32|mixed_bfloat16|mixed_float16 (default: "
            "float32, the article's recipe)",
    "det": "gankit: train.deterministic, on|off (default: on)",
    "intra": "tf.config.threading intra-op threads",
    "inter": "tf.config.threading inter-op threads",
    "grappler": "a tf.config.optimizer experimental option, NAME:on|off",
    "env": "an environment variable of the worker, NAME:VALUE",
}
DEFAULT_VARIANTS = ("transcription", "gankit", "gankit:prec=mixed_bfloat16", "gankit:xla=off",
                    "gankit:xla=on", "gankit:det=off")
QUICK_VARIANTS = ("transcription", "gankit", "gankit:prec=mixed_bfloat16")


@dataclass(frozen=True)
class Variant:
    """One thing to time, written ``kind[:key=value,...]``, e.g. ``gankit:xla=on,det=off``."""

    kind: str
    options: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Variant:
        kind, _, rest = text.partition(":")
        if kind not in ("gankit", "transcription"):
            raise argparse.ArgumentTypeError(
                f"unknown variant '{kind}' in '{text}'; expected gankit or transcription")
        options = []
        for item in filter(None, rest.split(",")):
            key, sep, value = item.partition("=")
            if not sep or key not in VARIANT_KEYS:
                raise argparse.ArgumentTypeError(
                    f"bad option '{item}' in '{text}'; expected KEY=VALUE with KEY one of "
                    f"{', '.join(VARIANT_KEYS)}")
            options.append((key, value))
        return cls(kind, tuple(options))

    def get(self, key: str, default: str | None = None) -> str | None:
        return dict(self.options).get(key, default)

    def __str__(self) -> str:
        return self.kind + (":" + ",".join(f"{k}={v}" for k, v in self.options)
                            if self.options else "")


# --- the worker: one configuration in its own process ----------------------------------------

def _random_images_plugin():
    """A plugin module registering an in-memory dataset of seeded random images."""
    import types

    import numpy as np

    import gankit
    from gankit import Dataset, Param

    class RandomImages(Dataset):
        """Uniform random images in [0, 1) (a stand-in for the CIFAR-10 frogs)."""

        name = "random_images"
        params = {"count": Param(int, IMAGES, min=1, doc="number of images"),
                  "seed": Param(int, 0, min=0, doc="seed of the pixels")}
        image_shape = (32, 32, 3)
        value_range = (0.0, 1.0)

        def load(self):
            rng = np.random.default_rng(self.config["seed"])
            return rng.uniform(0, 1, (self.config["count"], *self.image_shape)).astype("float32")

    plugin = types.ModuleType("gankit_benchmark_data")
    plugin.gankit_register_components = gankit.hookimpl(lambda register: register(RandomImages))
    return plugin


class GankitLoop:
    """The session's compiled step fed by ``step_batches``, as ``Trainer.run`` runs it."""

    def __init__(self, variant: Variant, batch: int, total_steps: int, workdir: str,
                 recipe_file: str | None = None):
        from gankit.plugin.manager import load_plugins
        from gankit.recipe.validation import load_raw, validate
        from gankit.rundir.run_dir import RunDir
        from gankit.training.data import step_batches
        from gankit.training.loop import Trainer

        plugins = load_plugins(extra=[("benchmark", _random_images_plugin())])
        if plugins.errors:
            raise RuntimeError("; ".join(plugins.errors))
        recipe_file = recipe_file or DEFAULT_RECIPE
        raw = load_raw(recipe_file)
        raw.pop("callbacks", None)  # a snapshot callback has nothing to do here
        raw.pop("metrics", None)
        raw["dataset"] = {"type": "random_images"}
        raw["train"].update(steps=total_steps, batch_size=batch, xla=variant.get("xla", "auto"),
                            deterministic=variant.get("det", "on") == "on",
                            precision=variant.get("prec", raw["train"].get("precision", "auto")),
                            max_minutes=None)
        recipe = validate(raw, plugins.registry, source=f"{recipe_file} (benchmark)")
        self.trainer = Trainer(recipe, RunDir(workdir).create(), progress=False).prepare()
        session = self.trainer.session
        self.step_fn = session.step_function()
        self.batches = iter(step_batches(self.trainer.examples, batch_size=batch,
                                         batches_per_step=session.batches_per_step, seed=0,
                                         shuffle=False, start=0, stop=total_steps))
        self.models = (session.generator, session.discriminator)

    def run(self, steps: int) -> None:
        for _ in range(steps):
            step, real = next(self.batches)
            values, first_fake = self.step_fn(step, real)
            {k: float(v) for k, v in values.items()}


class ArticleLoop:
    """The article's ``predict`` + ``train_on_batch`` loop, Keras-3-correct, minus file writes."""

    def __init__(self, variant: Variant, batch: int, total_steps: int, workdir: str):
        import keras
        import numpy as np

        from gankit_dcgan.discriminator import FrogDCGANDiscriminator
        from gankit_dcgan.generator import FrogDCGANGenerator

        keras.utils.set_random_seed(0)
        self.np, self.batch = np, batch
        self.x_train = np.random.default_rng(0).uniform(
            0, 1, (IMAGES, 32, 32, 3)).astype("float32")
        self.generator = FrogDCGANGenerator(latent_dim=LATENT_DIM).build()
        self.discriminator = FrogDCGANDiscriminator().build()

        def rmsprop(lr):  # RMSprop(lr=lr, clipvalue=1.0, decay=1e-8) in Keras 3 spelling
            return keras.optimizers.RMSprop(
                learning_rate=keras.optimizers.schedules.InverseTimeDecay(lr, 1, 1e-8),
                clipvalue=1.0)

        self.discriminator.compile(optimizer=rmsprop(8e-4), loss="binary_crossentropy")
        # Keras 3 reads `trainable` when a model runs: freeze it to build the gan, then switch
        # it around each update (the article sets it once, which Keras 2 baked in at compile).
        self.discriminator.trainable = False
        gan_input = keras.Input(shape=(LATENT_DIM,))
        self.gan = keras.Model(gan_input, self.discriminator(self.generator(gan_input)))
        self.gan.compile(optimizer=rmsprop(4e-4), loss="binary_crossentropy")
        self.start = 0
        self.models = (self.generator, self.discriminator)
        self._check_what_trains()

    def _step(self):
        np, batch_size = self.np, self.batch
        random_latent_vectors = np.random.normal(size=(batch_size, LATENT_DIM))
        generated_images = self.generator.predict(random_latent_vectors, verbose=0)
        stop = self.start + batch_size
        real_images = self.x_train[self.start:stop]
        combined_images = np.concatenate([generated_images, real_images])
        labels = np.concatenate([np.ones((batch_size, 1)), np.zeros((batch_size, 1))])
        labels += 0.05 * np.random.random(labels.shape)
        self.discriminator.trainable = True
        d_loss = self.discriminator.train_on_batch(combined_images, labels)
        random_latent_vectors = np.random.normal(size=(batch_size, LATENT_DIM))
        misleading_targets = np.zeros((batch_size, 1))
        self.discriminator.trainable = False
        a_loss = self.gan.train_on_batch(random_latent_vectors, misleading_targets)
        self.start += batch_size
        if self.start > len(self.x_train) - batch_size:
            self.start = 0
        return d_loss, a_loss

    def _check_what_trains(self):
        """One untimed step of each update: the discriminator's changes only the discriminator,
        the gan's only the generator -- the `trainable` switching does what the article means."""
        np, gen, disc = self.np, self.generator, self.discriminator
        same = lambda a, b: all(np.array_equal(x, y) for x, y in zip(a, b))  # noqa: E731
        g0, d0 = gen.get_weights(), disc.get_weights()
        disc.trainable = True
        disc.train_on_batch(self.x_train[:2 * self.batch], np.zeros((2 * self.batch, 1)))
        g1, d1 = gen.get_weights(), disc.get_weights()
        disc.trainable = False
        self.gan.train_on_batch(np.random.normal(size=(self.batch, LATENT_DIM)),
                                np.zeros((self.batch, 1)))
        g2, d2 = gen.get_weights(), disc.get_weights()
        if not (same(g0, g1) and not same(d0, d1)):
            raise AssertionError("discriminator.train_on_batch did not train only the "
                                 "discriminator")
        if not (same(d1, d2) and not same(g1, g2)):
            raise AssertionError("gan.train_on_batch did not train only the generator")

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self._step()


def step_flops(generator, discriminator, batch: int) -> float:
    """Floating-point operations of one training step, from the layer shapes (see the top)."""
    def forward_flops(model) -> list[float]:
        flops = []
        for layer in model.layers:
            kind = type(layer).__name__
            if kind in ("Dense", "Conv2D"):
                positions = layer.output.shape[1:-1]
            elif kind == "Conv2DTranspose":  # every input position meets the whole kernel
                positions = layer.input.shape[1:-1]
            else:
                continue
            macs = 1
            for size in (*positions, *layer.kernel.shape):
                macs *= size
            flops.append(2.0 * macs)
        return flops

    g, d = forward_flops(generator), forward_flops(discriminator)
    fwd_g, fwd_d = sum(g), sum(d)
    d_step = batch * fwd_g + 2 * batch * (fwd_d + fwd_d + (fwd_d - d[0]))
    g_step = batch * (fwd_g + fwd_d + fwd_d + fwd_g + (fwd_g - g[0]))
    return d_step + g_step


def _matmul_rate(size: int, repeats: int, dtype: str = "float32") -> float:
    import tensorflow as tf

    a = tf.cast(tf.random.normal([size, size], seed=1), dtype)
    b = tf.cast(tf.random.normal([size, size], seed=2), dtype)
    matmul = tf.function(lambda a, b: tf.linalg.matmul(a, b))
    matmul(a, b).numpy()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        matmul(a, b).numpy()
        times.append(time.perf_counter() - t0)
    return 2.0 * size ** 3 / statistics.median(times) / 1e9


def conv_kernel_times(batch: int, repeats: int = 3, dtype: str = "float32") -> list[dict]:
    """Each convolution pass of a training step timed alone (no bias, no activation), in
    ``dtype``.

    Returns one row per layer and pass (``forward``, ``input grad``, ``weight grad``) with
    its FLOPs, median seconds, and how many times one training step at ``batch`` runs it
    (the counting convention at the top of this file).
    """
    import tensorflow as tf

    from gankit_dcgan.discriminator import FrogDCGANDiscriminator
    from gankit_dcgan.generator import FrogDCGANGenerator

    def passes(layer, n):
        """(name, function, flops) of each pass of ``layer`` on ``n`` images."""
        x_shape = (n, *layer.input.shape[1:])
        y_shape = (n, *layer.output.shape[1:])
        kernel = tf.cast(tf.random.normal(layer.kernel.shape), dtype)
        strides = (1, *layer.strides, 1)
        padding = layer.padding.upper()
        transposed = type(layer).__name__ == "Conv2DTranspose"
        if transposed:  # the forward pass is a convolution's input gradient, and so on
            x_shape, y_shape = y_shape, x_shape
        x, dy = tf.cast(tf.random.normal(x_shape), dtype), tf.cast(tf.random.normal(y_shape), dtype)
        conv = lambda: tf.nn.conv2d(x, kernel, strides, padding)  # noqa: E731
        data = lambda: tf.raw_ops.Conv2DBackpropInput(  # noqa: E731
            input_sizes=x_shape, filter=kernel, out_backprop=dy, strides=strides,
            padding=padding)
        weights = lambda: tf.raw_ops.Conv2DBackpropFilter(  # noqa: E731
            input=x, filter_sizes=kernel.shape, out_backprop=dy, strides=strides,
            padding=padding)
        macs = 1
        for size in (*y_shape[1:-1], *kernel.shape):
            macs *= size
        flops = 2.0 * n * macs
        if transposed:
            return [("forward", data, flops), ("input grad", conv, flops),
                    ("weight grad", weights, flops)]
        return [("forward", conv, flops), ("input grad", data, flops),
                ("weight grad", weights, flops)]

    def median_seconds(fn):
        compiled = tf.function(fn)
        compiled().numpy()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            compiled().numpy()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    generator = FrogDCGANGenerator(latent_dim=LATENT_DIM).build()
    discriminator = FrogDCGANDiscriminator().build()
    rows = []
    for model, uses in ((generator, {batch: {"forward": 2, "input grad": 1, "weight grad": 1}}),
                        (discriminator, {2 * batch: {"forward": 1, "input grad": 1,
                                                     "weight grad": 1},
                                         batch: {"forward": 1, "input grad": 1}})):
        convs = [layer for layer in model.layers
                 if type(layer).__name__ in ("Conv2D", "Conv2DTranspose")]
        for position, layer in enumerate(convs):
            for n, counts in uses.items():
                for name, fn, flops in passes(layer, n):
                    count = counts.get(name, 0)
                    if model is discriminator and position == 0 and n == 2 * batch \
                            and name == "input grad":
                        count = 0  # the D step needs no gradient with respect to the images
                    if count:
                        rows.append({"model": model.name.split("_")[-1], "layer": layer.name,
                                     "kernel": list(layer.kernel.shape), "images": n,
                                     "pass": name, "count": count, "flops": flops,
                                     "seconds": median_seconds(fn)})
    return rows


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def worker(spec: dict) -> None:
    """Serve one configuration: JSON commands on stdin, JSON answers on the original stdout."""
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever else is printed (Keras, TensorFlow) goes to the log
    import tensorflow as tf

    loop, info = None, {}
    if spec["variant"] != "matmul":
        variant = Variant.parse(spec["variant"])
        if variant.get("intra"):
            tf.config.threading.set_intra_op_parallelism_threads(int(variant.get("intra")))
        if variant.get("inter"):
            tf.config.threading.set_inter_op_parallelism_threads(int(variant.get("inter")))
        for key, value in variant.options:
            if key == "grappler":
                name, _, state = value.partition(":")
                tf.config.optimizer.set_experimental_options({name: state == "on"})
        with tempfile.TemporaryDirectory() as workdir:
            if variant.kind == "gankit":
                loop = GankitLoop(variant, spec["batch"], spec["total_steps"],
                                  os.path.join(workdir, "run"), spec.get("recipe"))
            else:
                loop = ArticleLoop(variant, spec["batch"], spec["total_steps"],
                                   os.path.join(workdir, "run"))
        info["flops"] = step_flops(*loop.models, spec["batch"])
    answers.write(json.dumps(info) + "\n")
    for line in sys.stdin:
        command = json.loads(line)
        if command["cmd"] == "matmul":
            rate = _matmul_rate(command["size"], command["repeats"], command["dtype"])
            answers.write(json.dumps({"gflops": rate}) + "\n")
        elif command["cmd"] == "convs":
            rows = conv_kernel_times(command["batch"], dtype=command["dtype"])
            answers.write(json.dumps({"rows": rows}) + "\n")
        else:
            t0, c0 = time.perf_counter(), _cpu_seconds()
            loop.run(command["steps"])
            answers.write(json.dumps({"seconds": time.perf_counter() - t0,
                                      "cpu": _cpu_seconds() - c0}) + "\n")


# --- the parent: start workers, take turns, report ---------------------------------------------

@dataclass
class Worker:
    variant: str
    batch: int
    process: subprocess.Popen
    info: dict = field(default_factory=dict)
    warmup: float = 0.0
    rates: list = field(default_factory=list)
    cpu: list = field(default_factory=list)

    @classmethod
    def start(cls, variant: str, batch: int, total_steps: int, log,
              recipe: str | None = None) -> Worker:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
        if variant != "matmul":
            for key, value in Variant.parse(variant).options:
                if key == "env":
                    name, _, text = value.partition(":")
                    env[name] = text
        spec = json.dumps({"variant": variant, "batch": batch, "total_steps": total_steps,
                           "recipe": recipe})
        process = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", spec],
                                   env=env, text=True, stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=log)
        return cls(variant, batch, process)

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the worker for {self.variant} at batch {self.batch} died; "
                               f"its log follows")
        return json.loads(line)

    def ready(self) -> None:
        self.info = self._read()

    def ask(self, command: dict) -> dict:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self._read()

    def stop(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def _machine() -> dict:
    from importlib import metadata

    cpu, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in lines
                   if line.startswith("model name"))
        flags = set(next(line.split(":", 1)[1].split() for line in lines
                         if line.startswith("flags")))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "units": {u: u in flags for u in CPU_UNITS},
            "python": platform.python_version(),
            "tensorflow": metadata.version("tensorflow"), "keras": metadata.version("keras"),
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default")}


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def measure(args) -> tuple[dict[int, list[Worker]], dict[str, list[float]],
                           dict[str, dict[str, float]], dict[int, list[dict]]]:
    """Run every variant at every batch size, taking turns; also the float32 and bfloat16
    matmul rates each round (while the variants' workers are alive) and alone (before the
    first and after the last variant worker, with no other worker process alive), and
    (with ``args.convs``) each convolution pass alone."""
    results: dict[int, list[Worker]] = {}
    matmul: dict[str, list[float]] = {"float32": [], "bfloat16": []}
    alone: dict[str, dict[str, float]] = {}
    convs: dict[int, list[dict]] = {}
    with tempfile.TemporaryFile("w+") as log:
        workers: list[Worker] = []
        try:
            mm = Worker.start("matmul", 0, 0, log)
            workers.append(mm)
            mm.ready()
            alone["before"] = _probe_alone(mm, args.matmul_size)
            for batch in args.batch_sizes:
                steps = args.steps_at[batch]
                group = [Worker.start(str(v), batch, args.warmup + args.repeats * steps + 1, log,
                                      args.recipe)
                         for v in args.variants]
                workers += group
                for w in group:  # one at a time: building, tracing and compiling are not timed
                    w.ready()
                    t0 = time.perf_counter()
                    w.ask({"cmd": "run", "steps": args.warmup})
                    w.warmup = time.perf_counter() - t0
                for r in range(args.repeats):
                    for w in group[r % len(group):] + group[:r % len(group)]:
                        answer = w.ask({"cmd": "run", "steps": steps})
                        w.rates.append(steps / answer["seconds"])
                        w.cpu.append(answer["cpu"] / steps)
                    for dtype, rates in matmul.items():
                        rates.append(mm.ask({"cmd": "matmul", "size": args.matmul_size,
                                             "repeats": 3, "dtype": dtype})["gflops"])
                    print(f"  batch {batch}, round {r + 1}/{args.repeats}: "
                          + ", ".join(f"{w.variant} {w.rates[-1]:.3f}" for w in group)
                          + f" steps/s; matmul {matmul['float32'][-1]:.0f} GFLOP/s, bfloat16 "
                          + f"{matmul['bfloat16'][-1]:.0f}", flush=True)
                for w in group:
                    w.stop()
                results[batch] = group
                if args.convs:
                    dtypes = sorted({"float32", *map(_variant_dtype, map(str, args.variants))},
                                    reverse=True)
                    convs[batch] = {dtype: mm.ask({"cmd": "convs", "batch": batch,
                                                   "dtype": dtype})["rows"]
                                    for dtype in dtypes}
            alone["after"] = _probe_alone(mm, args.matmul_size)
            mm.stop()
        except BaseException:
            for w in workers:
                if w.process.poll() is None:
                    w.process.kill()
            log.seek(0)
            sys.stderr.write(log.read()[-6000:])
            raise
    return results, matmul, alone, convs


def _probe_alone(mm: Worker, size: int) -> dict[str, float]:
    """The matmul rates with no other worker process alive (the machine's peak here)."""
    return {dtype: mm.ask({"cmd": "matmul", "size": size, "repeats": 5, "dtype": dtype})["gflops"]
            for dtype in ("float32", "bfloat16")}


def _variant_dtype(variant: str) -> str:
    """The dtype a variant's convolutions run in (which matmul rate it is compared with)."""
    if variant == "transcription":
        return "float32"
    precision = Variant.parse(variant).get("prec", "float32")
    if precision == "auto":
        from gankit.training.precision import choose_for

        precision = choose_for("auto", []).policy  # what auto picks on this CPU
    return {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}.get(precision, "float32")


def report(results: dict[int, list[Worker]], matmul: dict[str, list[float]],
           alone: dict[str, dict[str, float]], convs: dict[int, list[dict]], args) -> dict:
    """Print the table and the targets; return everything as plain data.

    The share of the matmul rate (``of matmul``) is taken against the rate measured alone
    (no other worker process alive): the machine's peak for that dtype here."""
    during = {dtype: statistics.median(values) for dtype, values in matmul.items()}
    rates = {dtype: max(probe[dtype] for probe in alone.values()) for dtype in during}
    rate = rates["float32"]
    print()
    for dtype, values in matmul.items():
        print(f"{dtype} matmul {args.matmul_size}x{args.matmul_size}, alone: "
              + ", ".join(f"{when} {probe[dtype]:.1f}" for when, probe in alone.items())
              + f" GFLOP/s; between rounds (the other workers idle): median "
              f"{during[dtype]:.1f} (min {min(values):.1f}, max {max(values):.1f}, "
              f"{len(values)} rounds)")
    print("steps/s: median over rounds (min-max). vs article: median of the per-round ratios "
          "to the transcription.\nCPU s/step: process CPU time per step (about cores x "
          "seconds per step when nothing else runs). warm-up s: the untimed first steps.\n"
          "of matmul: GFLOP/s against the matmul rate in the dtype the variant computes in.\n")
    header = (f"{'batch':>5}  {'variant':<28} {'steps/s':>7} {'(min-max)':>13} "
              f"{'vs article':>10} {'CPU s/step':>10} {'warm-up s':>9} {'GFLOP/step':>10} "
              f"{'GFLOP/s':>7} {'of matmul':>9}")
    print(header)
    print("-" * len(header))
    rows = []
    for batch, group in results.items():
        base = next((w for w in group if w.variant == "transcription"), None)
        for w in group:
            med = statistics.median(w.rates)
            gflop = w.info["flops"] / 1e9
            ratio = statistics.median(a / b for a, b in zip(w.rates, base.rates)) if base else None
            own = rates.get(_variant_dtype(w.variant), rate)
            rows.append({"batch": batch, "variant": w.variant, "steps_per_s": med,
                         "rates": w.rates, "ratio": ratio, "cpu_s_per_step": w.cpu,
                         "warmup_s": w.warmup, "gflop_per_step": gflop,
                         "gflop_per_s": med * gflop, "of_matmul": med * gflop / own})
            spread = f"({min(w.rates):.2f}-{max(w.rates):.2f})"
            shown = f"{ratio:.2f}x" if ratio else "-"
            print(f"{batch:>5}  {w.variant:<28} {med:>7.3f} {spread:>13} {shown:>10} "
                  f"{statistics.median(w.cpu):>10.2f} {w.warmup:>9.1f} {gflop:>10.1f} "
                  f"{med * gflop:>7.1f} {med * gflop / own:>9.0%}")
    print()
    by_key = {(row["variant"], row["batch"]): row for row in rows}
    for issue, variant, batch, target in TARGETS:
        row = by_key.get((variant, batch))
        if row is None or row["ratio"] is None:
            continue
        verdict = "met" if row["ratio"] >= target else "NOT met"
        print(f"target ({issue}) batch {batch}: {variant} >= {target:.2f}x the transcription: "
              f"{row['ratio']:.2f}x, {verdict}")
    row = by_key.get(("gankit", 20))
    if row is not None:
        verdict = "met" if row["of_matmul"] >= TARGET_MATMUL_FRACTION else "NOT met"
        print(f"target (issue 3) batch 20: gankit >= {TARGET_MATMUL_FRACTION:.0%} of the "
              f"float32 matmul rate: {row['of_matmul']:.0%}, {verdict}")
    for batch, by_dtype in convs.items():
        for dtype, conv_rows in by_dtype.items():
            _report_convs(batch, conv_rows, dtype, rates.get(dtype, rate),
                          [w for w in results.get(batch, []) if _variant_dtype(w.variant) == dtype])
    return {"matmul_gflops": matmul, "matmul_alone_gflops": alone, "rows": rows,
            "convolutions": convs}


def _report_convs(batch: int, rows: list[dict], dtype: str, rate: float,
                  group: list[Worker]) -> None:
    print(f"\n{dtype} convolutions alone at batch {batch} (oneDNN kernels, no bias or "
          f"activation; % of the {rate:.0f} GFLOP/s {dtype} matmul rate):")
    print(f"  {'layer':<38} {'images':>6} {'pass':<11} {'GFLOP':>6} {'ms':>7} {'GFLOP/s':>7} "
          f"{'%':>5}")
    for row in rows:
        if row["model"] != "generator":
            continue
        gflops = row["flops"] / row["seconds"] / 1e9
        name = f"{row['layer']} {'x'.join(map(str, row['kernel']))}"
        print(f"  {name:<38} {row['images']:>6} {row['pass']:<11} {row['flops'] / 1e9:>6.1f} "
              f"{row['seconds'] * 1e3:>7.1f} {gflops:>7.0f} {gflops / rate:>5.0%}")
    d_rows = [r for r in rows if r["model"] != "generator"]
    d_flops = sum(r["flops"] * r["count"] for r in d_rows)
    d_seconds = sum(r["seconds"] * r["count"] for r in d_rows)
    print(f"  {'discriminator, every pass of a step':<38} {'':>6} {'':<11} {d_flops / 1e9:>6.1f} "
          f"{d_seconds * 1e3:>7.1f} {d_flops / d_seconds / 1e9:>7.0f} "
          f"{d_flops / d_seconds / 1e9 / rate:>5.0%}")
    flops = sum(r["flops"] * r["count"] for r in rows)
    seconds = sum(r["seconds"] * r["count"] for r in rows)
    print(f"  one step's convolution passes, timed one at a time, add up to {seconds:.3f} s "
          f"({flops / 1e9:.1f} GFLOP at {flops / seconds / 1e9:.0f} GFLOP/s)")
    for w in group:
        print(f"  a whole {w.variant} step takes {1 / statistics.median(w.rates):.3f} s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Time the frog DCGAN under gankit and under the article's loop.",
        epilog="Variant options: " + "; ".join(f"{k}: {v}" for k, v in VARIANT_KEYS.items()))
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[2, 20, 64], metavar="B")
    parser.add_argument("--steps", type=int, nargs="+", default=[8, 2, 1], metavar="N",
                        help="timed steps per round, one number per batch size (default: 8 2 1)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps (default: 2)")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds (default: 7)")
    parser.add_argument("--variants", type=Variant.parse, nargs="+", metavar="VARIANT",
                        help="what to time (default: " + " ".join(DEFAULT_VARIANTS) + "); "
                             "'gankit' alone is the recipe's defaults, xla auto and determinism on")
    parser.add_argument("--matmul-size", type=int, default=4096, metavar="N")
    parser.add_argument("--recipe", help="time the gankit variants on this recipe's models and "
                                         "settings instead of recipes/frog_dcgan.yaml (its "
                                         "dataset replaced by random images of 32x32x3; the "
                                         "transcription is always the article's)")
    parser.add_argument("--quick", action="store_true",
                        help="3 rounds of 4 and 1 steps, 1 warm-up step, and only "
                             + " and ".join(QUICK_VARIANTS) + " unless --variants is given")
    parser.add_argument("--no-convs", dest="convs", action="store_false",
                        help="skip timing each convolution pass alone")
    parser.add_argument("--json", metavar="FILE", help="also write every measurement here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return 0
    if args.quick:
        args.repeats, args.steps, args.warmup = 3, [4, 1], 1
        if args.batch_sizes == parser.get_default("batch_sizes"):
            args.batch_sizes = [2, 20]
    if args.variants is None:
        args.variants = [Variant.parse(v) for v in (QUICK_VARIANTS if args.quick
                                                     else DEFAULT_VARIANTS)]
    padded = args.steps + args.steps[-1:] * len(args.batch_sizes)
    args.steps_at = dict(zip(args.batch_sizes, padded))

    machine = _machine()
    print(f"machine: {machine['cpu']}, {machine['cores']} cores; Python {machine['python']}, "
          f"TensorFlow {machine['tensorflow']}, Keras {machine['keras']}; "
          f"TF_ENABLE_ONEDNN_OPTS={machine['onednn']}")
    print("CPU units (/proc/cpuinfo flags): "
          + ", ".join(f"{unit} {'yes' if present else 'no'}"
                      for unit, present in machine["units"].items()))
    print(f"command: python {' '.join(sys.argv)}")
    print(f"gankit variants train: {args.recipe or 'recipes/frog_dcgan.yaml'}")
    print(f"rounds: {args.repeats}; warm-up steps: {args.warmup}; timed steps per round: "
          + ", ".join(f"{n} at batch {b}" for b, n in args.steps_at.items()))
    print(f"load average (1, 5, 15 min) at start: {_load()}", flush=True)
    t0 = time.perf_counter()
    results, matmul, alone, convs = measure(args)
    summary = report(results, matmul, alone, convs, args)
    print(f"load average at end: {_load()}; total time {time.perf_counter() - t0:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "argv": sys.argv, **summary}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
