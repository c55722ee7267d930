"""What deleting a Job does to its pods: the propagationPolicy of the DeleteOptions.

Orphan (batch/v1's default when the client sends none, as the real API server does for Jobs): the
pods stay, their ownerReference to the Job removed, and their processes run on. Background (what
kubectl sends): the Job goes at once, the garbage collector deletes its pods on the next pass.
Foreground: the pods are deleted first (running processes get SIGTERM, then SIGKILL after the grace
period), then the Job.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from runbook_sandbox.k8s import workloads
from runbook_sandbox.k8s.pods import delete_pod
from runbook_sandbox.k8s.status import bad_request
from runbook_sandbox.k8s.store import Store


def propagation(query: dict[str, str], body: Any) -> str:
    """The DeleteOptions' propagationPolicy ("" when the client sent none)."""
    options = body if isinstance(body, dict) else {}
    policy = query.get("propagationPolicy") or options.get("propagationPolicy")
    if options.get("orphanDependents") is True:
        policy = policy or "Orphan"
    if policy not in (None, "Orphan", "Background", "Foreground"):
        raise bad_request(
            f'propagationPolicy "{policy}" is not supported; use Orphan, Background or Foreground'
        )
    return str(policy or "")


def delete_job_pods(store: Store, job: dict[str, Any], *, policy: str, at: dt.datetime) -> None:
    uid = job["metadata"]["uid"]
    pods = [
        p for p in store.items("pods", job["metadata"]["namespace"]) if workloads.controller_uid(p) == uid
    ]
    for pod in pods:
        if policy == "Orphan":
            refs = [r for r in pod["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
            meta = dict(pod["metadata"], ownerReferences=refs)
            if not refs:
                meta.pop("ownerReferences")
            store.replace("pods", dict(pod, metadata=meta))
        elif policy == "Foreground":
            delete_pod(store, pod, at=at)
