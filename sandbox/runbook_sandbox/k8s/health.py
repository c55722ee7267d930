"""The services' own health endpoints: `GET /_sandbox/health/<namespace>/<deployment>`.

A real service answers its health check from its own state; here the state is the deployment's, so
the check turns with the incident: while pods of the deployment crash-loop or the rollout is not
available the service answers 503 `{"status": "degraded", ...}`, and 200 `{"status": "ok"}` once a
rollback (or a memory raise) has converged. verify_resolution points `health_urls` at it.
"""

from __future__ import annotations

from typing import Any

from runbook_sandbox.k8s.selectors import selector_from_match

__all__ = ["health"]


def health(store: Any, namespace: str, deployment: str) -> tuple[int, dict[str, Any]]:
    dep = store.get("deployments", namespace, deployment)
    if dep is None:
        return 404, {"status": "unknown", "service": f"{namespace}/{deployment}"}
    wanted = int((dep.get("spec") or {}).get("replicas", 1))
    selected = selector_from_match((dep.get("spec") or {}).get("selector"))
    pods = [p for p in store.items("pods", namespace) if selected(p)]
    statuses = [
        (p["metadata"]["name"], c)
        for p in pods
        for c in (p.get("status") or {}).get("containerStatuses") or []
    ]
    crashing = sorted(
        {
            name
            for name, c in statuses
            if ((c.get("state") or {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff"
        }
    )
    ready = sum(
        1
        for p in pods
        if all(c.get("ready") for c in (p.get("status") or {}).get("containerStatuses") or [])
        and (p.get("status") or {}).get("containerStatuses")
    )
    body = {
        "service": f"{namespace}/{deployment}",
        "ready": ready,
        "replicas": wanted,
        "crashlooping": crashing,
    }
    if crashing or ready < wanted:
        return 503, {"status": "degraded", **body}
    return 200, {"status": "ok", **body}
