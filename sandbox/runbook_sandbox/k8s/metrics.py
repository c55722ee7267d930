"""metrics.k8s.io/v1beta1: PodMetrics and NodeMetrics computed from the app model, never stored.

A Job's pod is the exception: its containers are real processes, so their usage is measured (resident
memory of the process tree, CPU averaged since it started) and a finished one has none.

`kubectl top` and a runbook's "is it near its memory limit?" read these. A crash-looping container
reports a working set near its limit; healthy ones sit at their app's steady usage, with a small
per-pod jitter so a table of pods does not look synthetic.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any

from runbook_sandbox.k8s import apps, kubelet, localpods
from runbook_sandbox.k8s.store import Store, iso

NODE_OVERHEAD_MIB = 620.0
NODE_OVERHEAD_MILLI = 85.0


def _jitter(key: str) -> float:
    return 0.9 + (hashlib.sha256(key.encode()).digest()[0] / 255) * 0.2


Usage = Callable[[str, str], tuple[float, float] | None]  # (pod uid, container) -> (millicores, MiB)


def container_usage(
    pod: dict[str, Any], at: dt.datetime, local: Usage | None = None
) -> list[tuple[str, float, float]]:
    """(container, millicores, MiB) for each running-or-crashing container; a Job pod's containers are
    real processes, measured by `local` (runtime.Runtime.usage), never invented by the app model."""
    if localpods.is_local(pod):
        out = []
        for c in pod["spec"].get("containers") or []:
            measured = local(pod["metadata"]["uid"], c["name"]) if local else None
            if measured is not None:
                out.append((c["name"], *measured))
        return out
    tls = kubelet.timelines(pod, at)
    out = []
    for c in pod["spec"].get("containers") or []:
        tl = tls.get(c["name"])
        if tl is None:
            continue
        app = apps.app_for(c.get("image", ""))
        limit = apps.mib(((c.get("resources") or {}).get("limits") or {}).get("memory"))
        jitter = _jitter(f"{pod['metadata']['uid']}/{c['name']}")
        memory = apps.memory_mib(app=app, limit_mib=limit, tl=tl, at=at) * (1 if tl.crashing else jitter)
        cpu = app.cpu_millis * jitter * (2.5 if tl.crashing else 1)
        out.append((c["name"], cpu, memory))
    return out


def pod_metrics(pod: dict[str, Any], at: dt.datetime, local: Usage | None = None) -> dict[str, Any] | None:
    usage = container_usage(pod, at, local)
    if not usage:
        return None
    meta = pod["metadata"]
    return {
        "kind": "PodMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "creationTimestamp": iso(at),
            "labels": meta.get("labels") or {},
        },
        "timestamp": iso(at - dt.timedelta(seconds=7)),
        "window": "15.01s",
        "containers": [
            {"name": n, "usage": {"cpu": f"{int(cpu * 1e6)}n", "memory": f"{int(mem * 1024)}Ki"}}
            for n, cpu, mem in usage
        ],
    }


def node_metrics(store: Store, at: dt.datetime, local: Usage | None = None) -> list[dict[str, Any]]:
    totals: dict[str, list[float]] = {}
    for node in store.items("nodes"):
        totals[node["metadata"]["name"]] = [NODE_OVERHEAD_MILLI, NODE_OVERHEAD_MIB]
    for pod in store.items("pods"):
        node_name = pod["spec"].get("nodeName")
        if node_name in totals:
            for _, cpu, mem in container_usage(pod, at, local):
                totals[node_name][0] += cpu
                totals[node_name][1] += mem
    out = []
    for node in store.items("nodes"):
        name = node["metadata"]["name"]
        cpu, mem = totals[name]
        out.append(
            {
                "kind": "NodeMetrics",
                "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": {
                    "name": name,
                    "creationTimestamp": iso(at),
                    "labels": node["metadata"].get("labels", {}),
                },
                "timestamp": iso(at - dt.timedelta(seconds=9)),
                "window": "20.05s",
                "usage": {"cpu": f"{int(cpu * 1e6)}n", "memory": f"{int(mem * 1024)}Ki"},
            }
        )
    return out
