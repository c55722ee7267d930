"""Nodes: conditions, pressure flags, cordon state, and allocatable against what pods request.

A crash loop or a pending pod is sometimes the node's fault (MemoryPressure evictions, a NotReady
node, a cordon left behind); this is the `kubectl describe nodes` summary an on-call engineer
needs before cordoning or draining, computed from raw JSON.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pandas as pd

from runbook_kit.k8s import _api
from runbook_kit.k8s.quantity import MI, cpu_cores, memory_bytes

__all__ = ["node_rows", "node_status"]

PRESSURE = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")


def node_rows(nodes: list[dict[str, Any]], pods: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per node with requested vs allocatable (pure)."""
    requested: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if not node or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        acc = requested[node]
        for c in pod["spec"].get("containers") or []:
            req = (c.get("resources") or {}).get("requests") or {}
            acc[0] += cpu_cores(req.get("cpu")) or 0.0
            acc[1] += memory_bytes(req.get("memory")) or 0.0
        acc[2] += 1
    rows = []
    for n in nodes:
        meta, spec, st = n.get("metadata") or {}, n.get("spec") or {}, n.get("status") or {}
        conditions = {c.get("type"): c.get("status") for c in st.get("conditions") or []}
        alloc = st.get("allocatable") or {}
        cpu_a, mem_a = cpu_cores(alloc.get("cpu")) or 0.0, memory_bytes(alloc.get("memory")) or 0.0
        cpu_r, mem_r, count = requested.get(meta.get("name", ""), [0.0, 0.0, 0])
        rows.append(
            {
                "node": meta.get("name"),
                "ready": conditions.get("Ready") == "True",
                "unschedulable": bool(spec.get("unschedulable")),
                "pressure": ", ".join(p for p in PRESSURE if conditions.get(p) == "True"),
                "pods": int(count),
                "pods_allocatable": int(alloc.get("pods", 0) or 0),
                "cpu_requested": round(cpu_r, 3),
                "cpu_allocatable": cpu_a,
                "cpu_requested_pct": round(100 * cpu_r / cpu_a, 1) if cpu_a else None,
                "memory_requested_mib": round(mem_r / MI),
                "memory_allocatable_mib": round(mem_a / MI),
                "memory_requested_pct": round(100 * mem_r / mem_a, 1) if mem_a else None,
                "zone": (meta.get("labels") or {}).get("topology.kubernetes.io/zone", ""),
                "taints": ", ".join(f"{t.get('key')}:{t.get('effect')}" for t in spec.get("taints") or []),
            }
        )
    return pd.DataFrame(rows)


def node_status(*, node: str = "", context: str = "", core: Any | None = None) -> pd.DataFrame:
    """Every node (or one): Ready, cordoned, pressure flags, pods and requests vs allocatable."""
    api = _api.core(context, core)
    if node:
        nodes = [_api.read(api.read_node, node, op=f"read node {node}")]
        pods = _api.list_items(
            api.list_pod_for_all_namespaces, op=f"list pods on {node}", field_selector=f"spec.nodeName={node}"
        )
    else:
        nodes = _api.list_items(api.list_node, op="list nodes")
        pods = _api.list_items(api.list_pod_for_all_namespaces, op="list pods")
    return node_rows(nodes, pods)
