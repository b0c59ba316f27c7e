"""Training on several devices or machines: ``train.distribute`` on ``tf.distribute``.

``train.distribute`` chooses one of:

- ``none``: one device, no ``tf.distribute`` (the default);
- ``mirrored``: every device of one machine (``tf.distribute.MirroredStrategy``), or the
  ``devices`` listed;
- ``multi_worker``: one process per machine, all training together
  (``tf.distribute.MultiWorkerMirroredStrategy``); the cluster and this process's place in
  it come from the ``TF_CONFIG`` environment variable.

What a replicated step keeps equal to one device at the same ``train.batch_size``:

- ``train.batch_size`` is the global batch; replica ``r`` of ``R`` takes columns
  ``r*n .. r*n+n-1`` (``n = batch_size / R``) of the global batch of the step, and a worker
  reads only the columns of its own replicas (the batch is a pure function of the step).
- Every random draw is the slice of the draw one device makes (:class:`ReplicaStepContext`),
  so latents, label noise and augmentation match one device's image for image.
- Losses are means over each replica's slice; :func:`reduce_gradients` averages the
  replicas' gradients into the gradient of the mean over the global batch, before the
  optimizer clips it, so clipping and the reported gradient norm see the global gradient.
- Metrics are averaged over the replicas (each is a mean over an equal slice).

Not equal to one device: batch-normalization statistics and any other per-batch statistic
of a model (computed over each replica's slice; Keras' ``BatchNormalization(synchronized=
True)`` computes them over the global batch), and a model's own random layers (dropout
draws each replica's masks from the model's seed state, not a slice of one device's).

Importing this module does not import TensorFlow; :func:`check_distribute` and
:func:`worker_role` run during recipe validation.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from gankit.errors import GankitError, RecipeError, did_you_mean
from gankit.params import Param, check_params
from gankit.interfaces.context import StepContext, step_context

TYPES = ("none", "mirrored", "multi_worker")
COMMUNICATIONS = ("auto", "ring", "nccl")

PARAMS: dict[str, dict[str, Param]] = {
    "none": {},
    "mirrored": {
        "devices": Param(list, None, nullable=True, item_type=str,
                         doc="the devices to train on, e.g. [/gpu:0, /gpu:1]; null: every GPU "
                             "of the machine (the CPU if it has none)"),
    },
    "multi_worker": {
        "communication": Param(str, "auto", choices=COMMUNICATIONS,
                               doc="how the workers exchange gradients: ring (gRPC), nccl "
                                   "(GPUs) or auto"),
    },
}
"""The keys each ``train.distribute`` type takes besides ``type``."""


# -- validation (no TensorFlow) ----------------------------------------------------------------

def check_distribute(value: Any, path: str = "train.distribute",
                     source: str | None = None) -> dict[str, Any]:
    """The normalised ``train.distribute``: ``{"type": ..., <that type's keys>}``.

    Accepts a type name (``mirrored``) or a mapping (``{type: mirrored, devices: [...]}``).

    Raises:
        RecipeError: an unknown type or key, or a malformed value.
    """
    def fail(message: str, key: str | None = None):
        raise RecipeError(message, path=f"{path}.{key}" if key else path, source=source)

    if isinstance(value, str):
        value = {"type": value}
    if not isinstance(value, dict):
        fail(f"expected one of {', '.join(TYPES)} or a mapping {{type: ..., ...}}, got "
             f"{type(value).__name__} {value!r}")
    kind = value.get("type")
    if kind is None:
        fail(f"missing key 'type'; expected one of {', '.join(TYPES)}")
    if kind not in TYPES:
        fail(f"unknown type {kind!r}{did_you_mean(str(kind), TYPES)}; valid types: "
             f"{', '.join(TYPES)}", "type")
    given = {k: v for k, v in value.items() if k != "type"}
    if given and not PARAMS[kind]:
        fail(f"type {kind} takes no other keys", str(next(iter(given))))
    config = check_params(PARAMS[kind], given, path, source=source)
    devices = config.get("devices")
    if devices is not None:
        if not devices:
            fail("expected at least one device (or null for every GPU)", "devices")
        for i, device in enumerate(devices):
            if not device.strip():
                fail("expected a device name such as /gpu:0, got an empty string",
                     f"devices[{i}]")
        if len(set(devices)) != len(devices):
            fail(f"a device is listed twice: {devices}", "devices")
    return {"type": kind, **config}


def check_train(train, source: str | None = None) -> None:
    """What ``train.distribute`` asks of the rest of ``train`` (the validated section).

    Raises:
        RecipeError: ``xla: on`` with a distribution, or a batch that the listed devices
            cannot share equally.
    """
    config = train.distribute
    if config["type"] == "none":
        return
    if train.xla == "on":
        raise RecipeError(f"xla: on compiles the whole step, which train.distribute: "
                          f"{config['type']} cannot do across replicas; use auto or off",
                          path="train.xla", source=source)
    calls = train.steps_per_call
    if isinstance(calls, int) and calls > 1:
        raise RecipeError(f"train.distribute: {config['type']} runs one step per call; set "
                          f"steps_per_call to 1 or auto", path="train.steps_per_call",
                          source=source)
    devices = config.get("devices")
    if devices and train.batch_size % len(devices):
        raise RecipeError(f"train.batch_size is the global batch and must divide equally "
                          f"among the {len(devices)} devices of train.distribute.devices; "
                          f"got {train.batch_size}", path="train.batch_size", source=source)


@dataclass(frozen=True)
class WorkerRole:
    """This process's place among the workers of a run."""

    index: int = 0
    """0 for the chief (the worker that writes the run directory)."""
    count: int = 1
    task: str = ""
    """``worker:1`` / ``chief:0`` from ``TF_CONFIG``; empty on one machine."""

    @property
    def is_chief(self) -> bool:
        return self.index == 0


def worker_role(config: Mapping[str, Any], environ: Mapping[str, str] | None = None
                ) -> WorkerRole:
    """This process's role for ``train.distribute`` (read from ``TF_CONFIG`` for
    ``multi_worker``; without TensorFlow).

    The chief is the ``chief`` task if the cluster has one, else ``worker`` 0.

    Raises:
        GankitError: ``TF_CONFIG`` is missing or malformed.
    """
    if config["type"] != "multi_worker":
        return WorkerRole()
    environ = os.environ if environ is None else environ
    raw = environ.get("TF_CONFIG")
    hint = "see docs/scaling.md"
    if not raw:
        raise GankitError(f"train.distribute is multi_worker but the TF_CONFIG environment "
                          f"variable is not set; set it on every worker ({hint})")
    try:
        tf_config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise GankitError(f"TF_CONFIG is not valid JSON ({exc.msg} at character {exc.pos}); "
                          f"{hint}") from None
    cluster = tf_config.get("cluster") if isinstance(tf_config, dict) else None
    task = tf_config.get("task") if isinstance(tf_config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise GankitError(f"TF_CONFIG must be a JSON object with 'cluster' and 'task'; {hint}")
    for name, addresses in cluster.items():
        if name not in ("chief", "worker"):
            raise GankitError(f"TF_CONFIG's cluster has a {name!r} job; multi_worker trains "
                              f"with 'chief' and 'worker' jobs only")
        if (not isinstance(addresses, list) or not addresses
                or not all(isinstance(a, str) and a for a in addresses)):
            raise GankitError(f"TF_CONFIG's cluster.{name} must be a list of host:port "
                              f"addresses; {hint}")
    if len(cluster.get("chief", [])) > 1:
        raise GankitError("TF_CONFIG's cluster may have one chief only")
    kind, index = task.get("type"), task.get("index", 0)
    if kind not in cluster:
        raise GankitError(f"TF_CONFIG's task.type is {kind!r}, which is not a job of its "
                          f"cluster ({', '.join(cluster) or 'none'})")
    if (not isinstance(index, int) or isinstance(index, bool)
            or not 0 <= index < len(cluster[kind])):
        raise GankitError(f"TF_CONFIG's task.index is {index!r}; the cluster's {kind} job has "
                          f"{len(cluster[kind])} task(s)")
    order = [("chief", i) for i in range(len(cluster.get("chief", [])))]
    order += [("worker", i) for i in range(len(cluster.get("worker", [])))]
    return WorkerRole(order.index((kind, index)), len(order), f"{kind}:{index}")


# -- gradients (called by gankit.training.updates) ------------------------------------------

def reduce_gradients(grads: list) -> tuple[list, list]:
    """``(global gradient, this replica's share for the optimizer)``.

    On one replica both are ``grads``. On several, the global gradient is the mean of the
    replicas' gradients (each of the mean loss over an equal slice, so the mean is the
    gradient of the mean over the global batch), the same on every replica. Keras' optimizer
    clips what it is given and then sums it over the replicas; the first replica's share is
    the global gradient and the others' are zeros, so the optimizer clips the global
    gradient and its sum is exactly that gradient.
    """
    import tensorflow as tf

    replica = tf.distribute.get_replica_context()
    if replica is None or replica.num_replicas_in_sync == 1:
        return grads, grads
    grads = replica.all_reduce(tf.distribute.ReduceOp.MEAN, grads)
    first = tf.equal(replica.replica_id_in_sync_group, 0)
    share = tf.cond(first, lambda: list(grads), lambda: [tf.zeros_like(g) for g in grads])
    return grads, share


# -- randomness --------------------------------------------------------------------------------

class ReplicaStepContext(StepContext):
    """The random stream of one replica: its slice of what one device draws.

    A draw whose first dimension is a multiple of the replica's batch ``n`` is taken per
    example: ``k*n`` rows are ``k`` blocks of ``n`` (generated images first, then real ones,
    as the strategy concatenates them). One device draws ``k*n*R`` rows, ``k`` blocks of the
    global batch; replica ``r`` keeps rows ``r*n .. r*n+n-1`` of each block. Other draws
    (scalars, or a first dimension that is not a multiple of ``n``) are the same on every
    replica, as on one device.
    """

    def __init__(self, seed: Any, step: Any, name: str, replica: Any, replicas: int,
                 per_replica: int) -> None:
        super().__init__(seed, step, name)
        self.replica = replica
        self.replicas = replicas
        self.per_replica = per_replica

    def child(self, name: str) -> "ReplicaStepContext":
        path = f"{self.name}/{name}" if self.name else name
        return ReplicaStepContext(self.key(name), self.step, path, self.replica, self.replicas,
                                  self.per_replica)

    def normal(self, name, shape, dtype="float32"):
        return self._slice(lambda s: StepContext.normal(self, name, s, dtype), shape)

    def uniform(self, name, shape, minval=0.0, maxval=1.0, dtype="float32"):
        return self._slice(lambda s: StepContext.uniform(self, name, s, minval, maxval, dtype),
                           shape)

    def integers(self, name, shape, maxval):
        return self._slice(lambda s: StepContext.integers(self, name, s, maxval), shape)

    def _slice(self, draw: Callable[[Any], Any], shape) -> Any:
        import tensorflow as tf

        shape = list(shape) if not tf.is_tensor(shape) else tf.unstack(shape)
        if not shape:
            return draw(shape)
        n, replicas = self.per_replica, self.replicas
        rows = tf.get_static_value(shape[0])
        if rows is not None and int(rows) % n:
            return draw(shape)
        rows = tf.cast(shape[0], tf.int32)
        rest = [tf.cast(d, tf.int32) for d in shape[1:]]
        whole = draw(tf.stack([rows * replicas, *rest]))
        blocks = tf.reshape(whole, tf.stack([rows // n, replicas, n, *rest]))
        mine = tf.gather(blocks, self.replica, axis=1)
        static = [tf.get_static_value(d) for d in shape]
        out = tf.reshape(mine, tf.stack([rows, *rest]))
        if all(d is not None for d in static):
            out = tf.ensure_shape(out, [int(d) for d in static])
        return out


# -- the distribution of a session -------------------------------------------------------------

class Distribution:
    """One device without ``tf.distribute`` (``train.distribute: none``): every method
    hands its argument through, so this path is the plain single-device step."""

    type = "none"
    strategy: Any = None
    num_replicas = 1

    def __init__(self, role: WorkerRole | None = None) -> None:
        self.role = role or WorkerRole()

    @property
    def replicated(self) -> bool:
        """True under a ``tf.distribute`` strategy (even one of a single replica)."""
        return self.strategy is not None

    def scope(self):
        """Where the models, optimizers and every other variable are created."""
        return contextlib.nullcontext()

    def context(self, seed: int, step: Any) -> StepContext:
        """The root random stream of ``step`` (inside the step, per replica)."""
        return step_context(seed, step)

    def run(self, train: Callable, step: Any, batch: Any) -> tuple[dict, Any]:
        """Run ``train(step, batch) -> (metrics, first image)`` on every replica; return the
        metrics averaged over the replicas and the first replica's image."""
        return train(step, batch)

    def batches(self, examples, **kwargs):
        """The ``(step, Batch)`` pairs of :func:`gankit.training.data.step_batches`; under
        a strategy, ``Batch`` is a per-replica value holding each replica's columns."""
        from gankit.training.data import step_batches

        return step_batches(examples, **kwargs)

    def local(self, value: Any) -> Any:
        """This process's first replica's part of a per-replica value."""
        return value

    @property
    def steps_per_call(self) -> int | None:
        """The steps per compiled call it can run (None: any)."""
        return None

    def device_names(self) -> list[str]:
        """The devices this process's replicas run on ([]: TensorFlow's default placement)."""
        return []

    def agree_on_start(self, step: int, precision: str = "") -> None:
        """Check that every worker resumed from the same step (and, where ``precision``
        is given, resolved ``train.precision`` to the same policy)."""

    def lost_worker(self, exc: BaseException) -> str | None:
        """A one-line reason if ``exc`` says another worker stopped or became unreachable."""
        return None


class ReplicatedDistribution(Distribution):
    """A ``tf.distribute`` strategy over ``num_replicas`` replicas.

    Raises:
        GankitError: ``batch_size`` does not divide equally among the replicas.
    """

    def __init__(self, strategy, type_: str, batch_size: int, role: WorkerRole) -> None:
        super().__init__(role)
        self.strategy = strategy
        self.type = type_
        self.num_replicas = int(strategy.num_replicas_in_sync)
        if batch_size % self.num_replicas:
            raise GankitError(f"train.batch_size is the global batch and must divide equally "
                              f"among the {self.num_replicas} replicas of train.distribute: "
                              f"{type_}; got {batch_size}")
        self.per_replica = batch_size // self.num_replicas

    def scope(self):
        return self.strategy.scope()

    def device_names(self) -> list[str]:
        return [str(d) for d in self.strategy.extended.worker_devices]

    @property
    def steps_per_call(self) -> int | None:
        return 1

    def context(self, seed: int, step: Any) -> StepContext:
        import tensorflow as tf

        root = step_context(seed, step)
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        return ReplicaStepContext(root.seed, root.step, "", replica, self.num_replicas,
                                  self.per_replica)

    def run(self, train, step, batch):
        import tensorflow as tf

        metrics, first = self.strategy.run(train, args=(step, batch))
        mean = tf.distribute.ReduceOp.MEAN
        metrics = {k: self.strategy.reduce(mean, v, axis=None) for k, v in metrics.items()}
        return metrics, self.local(first)

    def batches(self, examples, **kwargs):
        import tensorflow as tf

        from gankit.training.data import step_batches

        n = self.per_replica

        def for_worker(input_context):
            local = input_context.num_replicas_in_sync // input_context.num_input_pipelines
            first = input_context.input_pipeline_id * local
            # A worker reads only its replicas' columns of the global batch (they are
            # consecutive), then hands each replica its own: the strategy gives consecutive
            # elements to consecutive local replicas.
            data = step_batches(examples, columns=(first * n, (first + local) * n), **kwargs)
            # (batches_per_step, columns, ...), after a steps axis when steps are grouped
            axis = 1 if kwargs.get("calls") is None else 2

            def columns(t, j):
                return None if t is None else t[(slice(None),) * axis + (slice(j * n, j * n + n),)]

            def split(step, batch):
                parts = [tf.data.Dataset.from_tensors(
                    (step, type(batch)(*(columns(t, j) for t in batch)))) for j in range(local)]
                out = parts[0]
                for part in parts[1:]:
                    out = out.concatenate(part)
                return out

            return data if local == 1 else data.flat_map(split)

        return _LocalSteps(self, self.strategy.distribute_datasets_from_function(for_worker))

    def steps_function(self, session):
        """The trainer's compiled call under a strategy: ``(first, batches) -> (metrics,
        fakes, n)`` as :meth:`TrainingSession.steps_function` gives it, for one step per
        call (``batches`` per replica, with a steps axis of 1; the trainer's plan asks for
        one step per call under ``train.distribute``)."""
        import tensorflow as tf

        def first_step(batch):
            return type(batch)(*(None if t is None else t[0] for t in batch))

        def run_steps(first, batches):
            metrics, fake = session.train_step(first, self.strategy.run(first_step,
                                                                        args=(batches,)))
            return {k: v[None] for k, v in metrics.items()}, fake[None], tf.constant(1)

        return tf.function(run_steps, reduce_retracing=True)

    def local(self, value):
        return self.strategy.experimental_local_results(value)[0]

    def lost_worker(self, exc: BaseException) -> str | None:
        return _lost_worker(exc) if self.role.count > 1 else None

    def agree_on_start(self, step: int, precision: str = "") -> None:
        if self.role.count == 1:
            return
        import tensorflow as tf

        from gankit.training.precision import PRECISIONS

        @tf.function
        def gather(value):
            return self.strategy.gather(self.strategy.run(lambda: value[None]), axis=0)

        steps = gather(tf.constant(step, tf.int64)).numpy()
        if len(set(steps.tolist())) > 1:
            raise GankitError(f"the workers resumed from different steps ({min(steps)} to "
                              f"{max(steps)}): every worker must read the same run directory "
                              f"(a shared file system); see docs/scaling.md")
        code = PRECISIONS.index(precision) if precision in PRECISIONS else -1
        codes = set(gather(tf.constant(code, tf.int64)).numpy().tolist())
        if len(codes) > 1:
            chosen = ", ".join(PRECISIONS[c] if c >= 0 else "?" for c in sorted(codes))
            raise GankitError(f"the workers chose different precisions ({chosen}): their "
                              f"machines differ; set train.precision to one of them for "
                              f"every worker")


class _LocalSteps:
    """The distributed ``(steps, Batch)`` pipeline, with the steps (the same on every
    replica) as this process's plain tensor."""

    def __init__(self, distribution: ReplicatedDistribution, data) -> None:
        self.distribution = distribution
        self.data = data
        self.element_spec = data.element_spec

    def __iter__(self):
        for steps, batch in self.data:
            yield self.distribution.local(steps), batch


_PEER_ERRORS = ("UnavailableError", "CancelledError", "AbortedError", "DeadlineExceededError",
                "InternalError")


def _lost_worker(exc: BaseException) -> str | None:
    if type(exc).__name__ not in _PEER_ERRORS:
        return None
    text = " ".join(str(exc).split())
    if not any(word in text for word in ("Collective", "collective", "heartbeat", "unhealthy",
                                         "coordination", "Socket closed", "connect")):
        return None
    return text[:300]


def create(config: Mapping[str, Any], batch_size: int) -> Distribution:
    """The distribution ``train.distribute`` (normalised by :func:`check_distribute`) asks
    for. Creating a strategy initialises TensorFlow's devices (``multi_worker`` also starts
    this worker's server and waits for the others)."""
    if config["type"] == "none":
        return Distribution()
    import tensorflow as tf

    role = worker_role(config)
    if config["type"] == "mirrored":
        strategy = tf.distribute.MirroredStrategy(devices=config.get("devices"))
    else:
        implementation = {"auto": tf.distribute.experimental.CommunicationImplementation.AUTO,
                          "ring": tf.distribute.experimental.CommunicationImplementation.RING,
                          "nccl": tf.distribute.experimental.CommunicationImplementation.NCCL,
                          }[config["communication"]]
        strategy = tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=tf.distribute.experimental.CommunicationOptions(
                implementation=implementation))
    return ReplicatedDistribution(strategy, config["type"], batch_size, role)
