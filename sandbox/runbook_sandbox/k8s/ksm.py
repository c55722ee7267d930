"""kube-state-metrics-style series for Prometheus to scrape, at `GET /_sandbox/kube-state-metrics`.

Real clusters expose these through kube-state-metrics (a separate Deployment); here they are computed
from the API's own pods and ReplicaSets at scrape time, with kube-state-metrics' names and labels:

    kube_pod_owner{namespace, pod, owner_kind, owner_name, owner_is_controller}            1
    kube_replicaset_owner{namespace, replicaset, owner_kind, owner_name, owner_is_controller} 1
    kube_pod_container_status_waiting_reason{namespace, pod, uid, container, reason}      1
    kube_pod_container_status_last_terminated_reason{namespace, pod, uid, container, reason} 1
    kube_pod_container_status_restarts_total{namespace, pod, uid, container}               N

so that an alerting rule written for a real cluster (CrashLoopBackOff joined to its Deployment
through the owners) fires on the sandbox's crashloop scenario unchanged.
"""

from __future__ import annotations

import json
from typing import Any

from runbook_sandbox.k8s.api import Api, Request

PATH = "/_sandbox/kube-state-metrics"

_HELP = {
    "kube_pod_owner": ("gauge", "Information about the Pod's owner."),
    "kube_replicaset_owner": ("gauge", "Information about the ReplicaSet's owner."),
    "kube_pod_container_status_waiting_reason": ("gauge", "Why a container is waiting."),
    "kube_pod_container_status_last_terminated_reason": ("gauge", "Why a container last terminated."),
    "kube_pod_container_status_restarts_total": ("counter", "Restarts of a container."),
}


def _escape(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _line(name: str, labels: dict[str, Any], value: float) -> str:
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return f"{name}{{{body}}} {value:g}"


def _items(api: Api, path: str) -> list[dict[str, Any]]:
    response = api.handle(Request(method="GET", path=path, query={}))
    body = json.loads(response.body) if isinstance(response.body, bytes | str) else response.body
    return list((body or {}).get("items") or []) if response.status == 200 else []


def render(api: Api) -> str:
    series: dict[str, list[str]] = {name: [] for name in _HELP}
    for rs in _items(api, "/apis/apps/v1/replicasets"):
        meta = rs["metadata"]
        for owner in meta.get("ownerReferences") or []:
            series["kube_replicaset_owner"].append(
                _line(
                    "kube_replicaset_owner",
                    {
                        "namespace": meta.get("namespace", ""),
                        "replicaset": meta["name"],
                        "owner_kind": owner.get("kind"),
                        "owner_name": owner.get("name"),
                        "owner_is_controller": str(bool(owner.get("controller"))).lower(),
                    },
                    1,
                )
            )
    for pod in _items(api, "/api/v1/pods"):
        meta = pod["metadata"]
        ident = {"namespace": meta.get("namespace", ""), "pod": meta["name"]}
        for owner in meta.get("ownerReferences") or []:
            series["kube_pod_owner"].append(
                _line(
                    "kube_pod_owner",
                    {
                        **ident,
                        "owner_kind": owner.get("kind"),
                        "owner_name": owner.get("name"),
                        "owner_is_controller": str(bool(owner.get("controller"))).lower(),
                    },
                    1,
                )
            )
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            labels = {**ident, "uid": meta.get("uid", ""), "container": status["name"]}
            waiting = (status.get("state") or {}).get("waiting")
            if waiting and waiting.get("reason"):
                series["kube_pod_container_status_waiting_reason"].append(
                    _line(
                        "kube_pod_container_status_waiting_reason", {**labels, "reason": waiting["reason"]}, 1
                    )
                )
            terminated = (status.get("lastState") or {}).get("terminated")
            if terminated and terminated.get("reason"):
                series["kube_pod_container_status_last_terminated_reason"].append(
                    _line(
                        "kube_pod_container_status_last_terminated_reason",
                        {**labels, "reason": terminated["reason"]},
                        1,
                    )
                )
            series["kube_pod_container_status_restarts_total"].append(
                _line(
                    "kube_pod_container_status_restarts_total", labels, int(status.get("restartCount") or 0)
                )
            )
    out = []
    for name, (kind, help_) in _HELP.items():
        out += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}", *series[name]]
    return "\n".join(out) + "\n"
