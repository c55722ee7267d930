"""Nodes and the cloud instances behind them: `spec.providerID` read both ways.

On EKS (and any cluster run by the AWS cloud provider) a node's providerID is
`aws:///<availability-zone>/<instance-id>`; that is the one reliable link between what Kubernetes
sees (NotReady, pressure, the pods stranded on it) and what EC2 sees (status checks, scheduled
events, the Auto Scaling group that owns it). Node names are not: they are DNS names that a VPC
setting can change. Pure parsing here, one raw-JSON list call for the table.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from runbook_kit.k8s import _api

__all__ = ["instance_nodes", "node_for_instance", "parse_provider_id"]

_COLUMNS = [
    "node",
    "instance_id",
    "zone",
    "ready",
    "ready_reason",
    "since",
    "unschedulable",
    "taints",
    "pods",
]


def parse_provider_id(provider_id: str) -> tuple[str, str] | None:
    """`aws:///us-east-1a/i-0abc` -> ("us-east-1a", "i-0abc"); None for other clouds or malformed ids."""
    if not provider_id.startswith("aws://"):
        return None
    parts = [p for p in provider_id[len("aws://") :].split("/") if p]
    if not parts or not parts[-1].startswith("i-"):
        return None
    return (parts[-2] if len(parts) > 1 else "", parts[-1])


def node_rows(nodes: list[dict[str, Any]], pods: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per node with its instance (pure): Ready and why, cordon, taints, pods bound to it."""
    bound: dict[str, int] = {}
    for pod in pods:
        name = (pod.get("spec") or {}).get("nodeName")
        if name and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            bound[name] = bound.get(name, 0) + 1
    rows = []
    for n in nodes:
        meta, spec = n.get("metadata") or {}, n.get("spec") or {}
        parsed = parse_provider_id(spec.get("providerID") or "")
        ready: dict[str, Any] = next(
            (c for c in (n.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), {}
        )
        rows.append(
            {
                "node": meta.get("name"),
                "instance_id": parsed[1] if parsed else None,
                "zone": parsed[0] if parsed else None,
                "ready": ready.get("status", "Unknown"),
                "ready_reason": ready.get("reason", ""),
                "since": pd.to_datetime(ready.get("lastTransitionTime"), utc=True),
                "unschedulable": bool(spec.get("unschedulable")),
                "taints": ", ".join(f"{t.get('key')}:{t.get('effect')}" for t in spec.get("taints") or []),
                "pods": bound.get(meta.get("name", ""), 0),
            }
        )
    frame = pd.DataFrame(rows, columns=_COLUMNS)
    # NotReady first: the node an on-call engineer is looking for is at the top
    return frame.sort_values(
        ["ready", "node"], key=lambda s: s.eq("True") if s.name == "ready" else s
    ).reset_index(drop=True)


def instance_nodes(*, context: str = "", core: Any | None = None) -> pd.DataFrame:
    """Every node with the EC2 instance behind it (None when the node has no AWS providerID)."""
    api = _api.core(context, core)
    nodes = _api.list_items(api.list_node, op="list nodes")
    pods = _api.list_items(api.list_pod_for_all_namespaces, op="list pods")
    return node_rows(nodes, pods)


def node_for_instance(*, instance_id: str, context: str = "", core: Any | None = None) -> str | None:
    """The node backed by `instance_id` (None: no node of this cluster is)."""
    api = _api.core(context, core)
    for n in _api.list_items(api.list_node, op="list nodes"):
        parsed = parse_provider_id((n.get("spec") or {}).get("providerID") or "")
        if parsed and parsed[1] == instance_id:
            return str(n["metadata"]["name"])
    return None
