"""Requests and limits per container, next to usage from metrics.k8s.io (`kubectl top`) when served.

metrics-server is an add-on: many clusters (and some contexts' permissions) do not serve
metrics.k8s.io. Its absence is reported as such — a `metrics` column saying "unavailable" and one
info finding — rather than failing the runbook step, because limits alone still answer most
OOM questions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from runbook_kit import record
from runbook_kit.errors import BackendError
from runbook_kit.k8s import _api
from runbook_kit.k8s.quantity import MI, cpu_cores, memory_bytes
from runbook_kit.k8s.status import select_pods

if TYPE_CHECKING:  # pragma: no cover
    from runbook_kit.k8s.snapshot import WorkloadSnapshot

__all__ = ["container_resources", "pod_metrics"]

COLUMNS = [
    "pod",
    "container",
    "cpu_request",
    "cpu_limit",
    "memory_request",
    "memory_limit",
    "memory_limit_mib",
    "cpu_usage",
    "memory_usage_mib",
    "memory_pct_of_limit",
    "metrics",
]


def pod_metrics(
    *, namespace: str, selector: str = "", context: str = "", custom: Any | None = None
) -> dict[tuple[str, str], tuple[float, float]] | None:
    """{(pod, container): (cpu cores, memory bytes)} from metrics.k8s.io, or None when not served."""
    api = _api.custom(context, custom)
    kwargs: dict[str, Any] = {"label_selector": selector} if selector else {}
    try:
        items = _api.list_items(
            api.list_namespaced_custom_object,
            "metrics.k8s.io",
            "v1beta1",
            namespace,
            "pods",
            op=f"read pod metrics in {namespace}",
            **kwargs,
        )
    except BackendError:
        return None
    usage: dict[tuple[str, str], tuple[float, float]] = {}
    for item in items:
        for c in item.get("containers") or []:
            u = c.get("usage") or {}
            usage[(item["metadata"]["name"], c.get("name", ""))] = (
                cpu_cores(u.get("cpu")) or 0.0,
                memory_bytes(u.get("memory")) or 0.0,
            )
    return usage


def resource_rows(
    pods: list[dict[str, Any]], usage: dict[tuple[str, str], tuple[float, float]] | None
) -> pd.DataFrame:
    """Requests/limits per container joined with usage (pure)."""
    rows = []
    for pod in pods:
        name = pod["metadata"]["name"]
        for c in (pod.get("spec") or {}).get("containers") or []:
            res = c.get("resources") or {}
            req, lim = res.get("requests") or {}, res.get("limits") or {}
            limit_b = memory_bytes(lim.get("memory"))
            used = usage.get((name, c.get("name", ""))) if usage is not None else None
            mem_used = used[1] if used else None
            rows.append(
                {
                    "pod": name,
                    "container": c.get("name", ""),
                    "cpu_request": req.get("cpu", ""),
                    "cpu_limit": lim.get("cpu", ""),
                    "memory_request": req.get("memory", ""),
                    "memory_limit": lim.get("memory", ""),
                    "memory_limit_mib": limit_b / MI if limit_b else None,
                    "cpu_usage": used[0] if used else None,
                    "memory_usage_mib": mem_used / MI if mem_used is not None else None,
                    "memory_pct_of_limit": round(100 * mem_used / limit_b, 1)
                    if mem_used and limit_b
                    else None,
                    "metrics": "unavailable" if usage is None else ("ok" if used else "no sample"),
                }
            )
    return pd.DataFrame(rows, columns=COLUMNS)


def container_resources(
    snap: WorkloadSnapshot | None = None,
    /,
    *,
    namespace: str | None = None,
    deployment: str = "",
    selector: str = "",
    context: str = "",
    core: Any | None = None,
    apps: Any | None = None,
    custom: Any | None = None,
) -> pd.DataFrame:
    """Requests/limits per container and, where metrics.k8s.io is served, current usage (`top`).

    Given a `WorkloadSnapshot`, its pods and the usage it read (no API call, no second gap).
    """
    if snap is not None:
        return resource_rows([dict(p) for p in snap.pods], None if snap.usage is None else dict(snap.usage))
    namespace = _api.require_namespace(namespace)
    label_selector, pods = select_pods(
        namespace=namespace, deployment=deployment, selector=selector, context=context, core=core, apps=apps
    )
    usage = pod_metrics(namespace=namespace, selector=label_selector, context=context, custom=custom)
    if usage is None:
        record.gap(
            f"container usage (metrics.k8s.io) in {namespace}",
            why="metrics.k8s.io answered no pod metrics (not served, or not permitted): limits without usage",
            fix="install metrics-server (or another metrics.k8s.io provider) and grant get/list on "
            "pods.metrics.k8s.io",
        )
    return resource_rows(pods, usage)
