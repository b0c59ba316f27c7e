"""This process's place among the workers of a ``multi_worker`` run, read from ``TF_CONFIG``
without TensorFlow (kept apart from the replica code of :mod:`gankit.training.distribute`, as
Lightning keeps cluster environments apart from its strategies)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Mapping

from gankit.errors import GankitError


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
