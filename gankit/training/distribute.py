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

Importing this module does not import TensorFlow. The ``train.distribute`` schema is in
:mod:`gankit.recipe.distribute` (recipe validation checks it) and the ``TF_CONFIG`` reading in
:mod:`gankit.training.cluster`.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Mapping

from gankit.errors import GankitError, RecipeError
from gankit.interfaces.context import StepContext, step_context

# the train.distribute schema and the cluster role live beside the other config (TF-free);
# imported here for the engine and for 0.4's import paths
from gankit.recipe.distribute import COMMUNICATIONS, PARAMS, TYPES, check_distribute, check_train  # noqa: F401
from gankit.training.cluster import WorkerRole, worker_role  # noqa: F401
from gankit.util.graph import plain_python

# -- gradients (called by gankit.training.updates) ------------------------------------------

@plain_python
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

    @plain_python
    def child(self, name: str) -> ReplicaStepContext:
        path = f"{self.name}/{name}" if self.name else name
        return ReplicaStepContext(self.key(name), self.step, path, self.replica, self.replicas,
                                  self.per_replica)

    @plain_python
    def normal(self, name, shape, dtype="float32"):
        return self._slice(lambda s: StepContext.normal(self, name, s, dtype), shape)

    @plain_python
    def uniform(self, name, shape, minval=0.0, maxval=1.0, dtype="float32"):
        return self._slice(lambda s: StepContext.uniform(self, name, s, minval, maxval, dtype),
                           shape)

    @plain_python
    def integers(self, name, shape, maxval):
        return self._slice(lambda s: StepContext.integers(self, name, s, maxval), shape)

    @plain_python
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

    @plain_python
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

    @plain_python
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
        if config.get("devices"):
            check_devices(config["devices"])
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


def check_devices(devices: list[str]) -> None:
    """Refuse devices that this machine does not have, before the first step: a
    MirroredStrategy over a missing device blocks forever inside its first compiled call
    (where no signal reaches Python), and one over a missing GPU trains on the CPU without
    a word.

    Raises:
        RecipeError: one line naming the missing device and the devices there are.
    """
    import tensorflow as tf

    present = tf.config.list_logical_devices()
    have = {(d.device_type.upper(), _index(d.name)) for d in present}
    for i, name in enumerate(devices):
        try:
            spec = tf.DeviceSpec.from_string(name)
        except (ValueError, TypeError) as exc:
            raise RecipeError(f"{name!r} is not a device name such as /gpu:0 or /cpu:0 "
                              f"({exc})", path=f"train.distribute.devices[{i}]") from None
        kind = (spec.device_type or "").upper()
        index = spec.device_index if spec.device_index is not None else 0
        if not kind or (kind, index) not in have:
            listed = ", ".join(f"/{d.device_type.lower()}:{_index(d.name)}" for d in present)
            raise RecipeError(f"this machine has no device {name} (TensorFlow sees: "
                              f"{listed or 'none'}); list only those, or null for every GPU",
                              path=f"train.distribute.devices[{i}]")


def _index(name: str) -> int:
    try:
        return int(name.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return 0
