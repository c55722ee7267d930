"""Pod-level operations shared by the controller, the API and the seeds: defaulting, binding to a
node, deleting with the kubelet's Killing event, and resource requests for scheduling.

They live apart from the control loop because the API server does the same things on a direct
request (a pod created with `nodeName`, a DELETE, an eviction) that the controller does on its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from runbook_sandbox.k8s import apps, events, kubelet, localpods
from runbook_sandbox.k8s.store import Store, iso


def requests_of(pod: dict[str, Any]) -> tuple[float, float]:
    """(millicores, MiB) requested by a pod's containers (limits stand in for missing requests)."""
    cpu = mem = 0.0
    for c in pod["spec"].get("containers") or []:
        res = c.get("resources") or {}
        req = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        cpu += apps.millicores(req.get("cpu")) or 0.0
        mem += apps.mib(req.get("memory")) or 0.0
    return cpu, mem


def node_ready(node: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in (node.get("status") or {}).get("conditions") or []
    )


def pod_ip(uid: str, node: dict[str, Any]) -> str:
    subnet = node["status"]["addresses"][0]["address"].split(".")[2]
    digest = hashlib.sha256(uid.encode()).digest()
    return f"10.0.{subnet}.{digest[0] % 200 + 20}"


def bind(pod: dict[str, Any], node: dict[str, Any], *, at: dt.datetime) -> dict[str, Any]:
    """The pod placed on `node` (what the scheduler's binding and the kubelet's first status write do)."""
    bound = dict(pod)
    bound["spec"] = dict(pod["spec"], nodeName=node["metadata"]["name"])
    host_ip = node["status"]["addresses"][0]["address"]
    ip = pod_ip(pod["metadata"]["uid"], node)
    bound["status"] = {
        "phase": "Pending",
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": iso(at),
    }
    bound["status"] = kubelet.pod_status(bound, at)
    return bound


def default_pod(pod: dict[str, Any]) -> dict[str, Any]:
    """API-server defaulting for the pod fields clients print (restartPolicy, dnsPolicy, ...)."""
    spec = pod["spec"]
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("priority", 0)
    spec.setdefault(
        "tolerations",
        [
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
            {
                "key": "node.kubernetes.io/unreachable",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
        ],
    )
    for c in spec.get("containers") or []:
        c.setdefault("resources", {})
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault(
            "imagePullPolicy", "Always" if c.get("image", "").endswith(":latest") else "IfNotPresent"
        )
    return pod


def delete_pod(
    store: Store,
    pod: dict[str, Any],
    *,
    at: dt.datetime,
    dry_run: bool = False,
    condition: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Delete at once (grace period elapsed instantly) with the kubelet's Killing event per container.

    A Job pod whose process still runs (localpods.py) is only marked (deletionTimestamp, and the
    eviction's DisruptionTarget `condition`): the kubelet ends its process (SIGTERM, SIGKILL after
    the grace period) and the pod is removed once it has terminated.
    """
    meta = pod["metadata"]
    running = localpods.is_local(pod) and not localpods.settled(pod) and pod["spec"].get("nodeName")
    if running and not dry_run:
        if meta.get("deletionTimestamp"):
            return pod
        grace = int(pod["spec"].get("terminationGracePeriodSeconds", 30))
        marked = dict(pod, metadata=dict(meta, deletionTimestamp=iso(at), deletionGracePeriodSeconds=grace))
        if condition is not None:
            status = dict(pod.get("status") or {})
            status["conditions"] = [condition, *(status.get("conditions") or [])]
            marked["status"] = status
        deleted = store.replace("pods", marked)
    else:
        deleted = store.delete("pods", meta["namespace"], meta["name"], dry_run=dry_run)
    if dry_run or not pod["spec"].get("nodeName"):
        return deleted
    for c in pod["spec"]["containers"]:
        events.record(
            store,
            pod,
            reason="Killing",
            message=f"Stopping container {c['name']}",
            component="kubelet",
            host=pod["spec"]["nodeName"],
            field_path=f"spec.containers{{{c['name']}}}",
            first=at,
            now=at,
        )
    return deleted
