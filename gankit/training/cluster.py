"""This process's place among the workers of a ``multi_worker`` run, read from ``TF_CONFIG``
without TensorFlow (kept apart from the replica code of :mod:`gankit.training.distribute`, as
Lightning keeps cluster environments apart from its strategies)."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from typing import Any, Mapping

from gankit.errors import GankitError
from gankit.util.safe_read import UnsafeFileError, loads_json


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
        tf_config = loads_json(raw, max_bytes=1024 * 1024, max_depth=8)
    except UnsafeFileError as exc:
        reason = str(exc).removeprefix("not JSON: ")
        raise GankitError(f"TF_CONFIG is not valid JSON ({reason}); {hint}") from None
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
        for i, address in enumerate(addresses):
            problem = _address_problem(address)
            if problem:
                raise GankitError(f"TF_CONFIG's cluster.{name}[{i}] is "
                                  f"{address[:80]!r}: {problem}; {hint}")
        if len(set(addresses)) != len(addresses):
            raise GankitError(f"TF_CONFIG's cluster.{name} lists an address twice; {hint}")
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


_HOST = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?")


def _address_problem(address: str) -> str | None:
    """Why ``address`` is not a ``host:port`` TensorFlow can serve on, or None."""
    host, sep, port = address.rpartition(":")
    if not sep or not host:
        return "expected host:port (e.g. 10.0.0.2:12345)"
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        return f"the port {port[:20]!r} is not a number from 1 to 65535"
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return f"{host[:60]!r} is not an IPv6 address"
        return None
    try:
        ipaddress.IPv4Address(host)
        return None
    except ValueError:
        pass
    if not _HOST.fullmatch(host):
        return f"{host[:60]!r} is not a host name or an IP address"
    return None
