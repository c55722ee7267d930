"""pods/log, pods/eviction and the /scale subresource.

These are the three subresources incident runbooks lean on: the previous container's log (why did
it die?), eviction (drain a node without breaking a PodDisruptionBudget) and scale (shed or add
capacity). Their failure answers matter as much as their successes: no previous container is a 400,
a budget that would be broken is a 429 with the real message.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from runbook_sandbox.k8s import apps, kubelet, logs, patch, workloads
from runbook_sandbox.k8s.controller import Controller
from runbook_sandbox.k8s.pods import delete_pod
from runbook_sandbox.k8s.selectors import selector_from_match, selector_string
from runbook_sandbox.k8s.status import ApiError, bad_request, conflict, status_body
from runbook_sandbox.k8s.store import Store, clone, iso


def pod_log(store: Store, *, namespace: str, name: str, query: dict[str, str], at: dt.datetime) -> str:
    pod = store.require("pods", namespace, name)
    containers = [c["name"] for c in pod["spec"]["containers"]]
    container = query.get("container")
    if not container:
        if len(containers) > 1:
            raise bad_request(
                f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
            )
        container = containers[0]
    if container not in containers:
        raise bad_request(f"container {container} is not valid for pod {name}")
    spec = next(c for c in pod["spec"]["containers"] if c["name"] == container)
    tl = kubelet.timelines(pod, at).get(container)
    previous = logs.parse_bool(query, "previous")
    if tl is None:
        if previous:
            raise bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
        raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating')
    app = apps.app_for(spec.get("image", ""))
    limit = apps.mib(((spec.get("resources") or {}).get("limits") or {}).get("memory"))
    if previous:
        run = tl.previous
        if run is None:
            raise bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
        crashed = True
    else:
        run = tl.current
        crashed = tl.waiting_since is not None
    lines = logs.lines_for_run(
        app=app, run=run, pod=name, image=spec.get("image", ""), limit_mib=limit, at=at, crashed=crashed
    )
    return logs.render(lines, query, at=at)


def eviction(
    store: Store,
    controller: Controller,
    *,
    namespace: str,
    name: str,
    body: dict[str, Any],
    dry_run: bool,
    at: dt.datetime,
) -> dict[str, Any]:
    """POST pods/{name}/eviction: delete the pod unless a PodDisruptionBudget forbids it (429)."""
    with store.lock:
        pod = store.require("pods", namespace, name)
        budgets = [
            pdb
            for pdb in store.items("poddisruptionbudgets", namespace)
            if selector_from_match((pdb.get("spec") or {}).get("selector"))(pod)
        ]
        if len(budgets) > 1:
            raise ApiError(
                500,
                "This pod has more than one PodDisruptionBudget, which the eviction subresource "
                "does not support.",
            )
        if budgets and (pod.get("status") or {}).get("phase") == "Running":
            pdb = budgets[0]
            health = workloads.pdb_health(pdb, store.items("pods", namespace), is_ready=kubelet.is_ready)
            unhealthy_ok = not kubelet.is_ready(pod) and health["currentHealthy"] >= health["desiredHealthy"]
            if not unhealthy_ok and health["disruptionsAllowed"] <= 0:
                raise ApiError(
                    429,
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                    details={
                        "causes": [
                            {
                                "reason": "DisruptionBudget",
                                "message": f"The disruption budget {pdb['metadata']['name']} needs "
                                f"{health['desiredHealthy']} healthy pods and has "
                                f"{health['currentHealthy']} currently",
                            }
                        ]
                    },
                )
        disruption = {
            "type": "DisruptionTarget",
            "status": "True",
            "lastProbeTime": None,
            "lastTransitionTime": iso(at),
            "reason": "EvictionByEvictionAPI",
            "message": "Eviction API: evicting",
        }
        delete_pod(store, pod, at=at, dry_run=dry_run, condition=disruption)
        if not dry_run:
            controller.settled.discard(pod["metadata"]["uid"])
            controller.poke()
    return status_body(code=201, success=True)


def eviction_dry_run(body: dict[str, Any]) -> bool:
    options = body.get("deleteOptions") or {}
    return "All" in (options.get("dryRun") or [])


def scale_of(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": obj["spec"].get("replicas", 1)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": selector_string(obj["spec"].get("selector")),
        },
    }


def scale_write(
    store: Store,
    *,
    plural: str,
    namespace: str,
    name: str,
    method: str,
    body: Any,
    content_type: str,
    dry_run: bool,
) -> dict[str, Any]:
    with store.lock:
        obj = store.require(plural, namespace, name)
        current = scale_of(obj)
        if method == "PATCH":
            wanted = patch.apply(current, body, content_type)
        else:
            wanted = body if isinstance(body, dict) else {}
            rv = (wanted.get("metadata") or {}).get("resourceVersion")
            if rv and rv != obj["metadata"]["resourceVersion"]:
                raise conflict(plural=plural, group="apps", name=name)
        replicas = (wanted.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            from runbook_sandbox.k8s.status import invalid

            raise invalid(
                kind="Scale",
                group="autoscaling",
                name=name,
                causes=[
                    (
                        "spec.replicas",
                        "FieldValueInvalid",
                        f"Invalid value: {json.dumps(replicas)}: must be greater than or equal to 0",
                    )
                ],
            )
        updated = clone(obj)
        updated["spec"]["replicas"] = replicas
        stored = store.replace(plural, updated, dry_run=dry_run)
        return scale_of(stored)
