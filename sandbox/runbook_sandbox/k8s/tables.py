"""Server-side printing: `meta.k8s.io/v1 Table` responses, column for column as the API server prints.

kubectl asks for tables (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`) and prints whatever
columns come back; `-o wide` shows the priority-1 ones. The cell logic follows the API server's
printers (pkg/printers/internalversion): the pod STATUS is the last waiting/terminated reason,
RESTARTS reads `8 (2m13s ago)`, node STATUS gains `,SchedulingDisabled` when cordoned, and ages use
apimachinery's HumanDuration.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from runbook_sandbox.k8s.selectors import selector_string
from runbook_sandbox.k8s.store import parse_time

Column = tuple[str, str, int, str]  # name, type, priority, description
Row = list[Any]


def human_duration(seconds: float) -> str:
    """apimachinery's duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def since(value: str | None, at: dt.datetime) -> str:
    moment = parse_time(value)
    if moment is None:
        return "<unknown>"
    return human_duration((at - moment).total_seconds())


def _age(obj: dict[str, Any], at: dt.datetime) -> str:
    return since(obj["metadata"].get("creationTimestamp"), at)


_NAME: Column = ("Name", "string", 0, "Name must be unique within a namespace.")
_AGE: Column = (
    "Age",
    "string",
    0,
    "CreationTimestamp is a timestamp representing the server time when this object was created.",
)


# --- pods --------------------------------------------------------------------------------------

POD_COLUMNS: list[Column] = [
    _NAME,
    ("Ready", "string", 0, "The aggregate readiness state of this pod for accepting traffic."),
    ("Status", "string", 0, "The aggregate status of the containers in this pod."),
    (
        "Restarts",
        "string",
        0,
        "The number of times the containers in this pod have been restarted and when "
        "the last container in this pod has restarted.",
    ),
    _AGE,
    ("IP", "string", 1, "podIP address allocated to the pod. Routable at least within the cluster."),
    ("Node", "string", 1, "NodeName indicates in which node this pod is scheduled."),
    (
        "Nominated Node",
        "string",
        1,
        "nominatedNodeName is set when this pod preempts other pods on the node.",
    ),
    (
        "Readiness Gates",
        "string",
        1,
        "If specified, all readiness gates will be evaluated for pod readiness.",
    ),
]


def pod_row(pod: dict[str, Any], at: dt.datetime) -> Row:
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    total = len(pod["spec"].get("containers") or [])
    reason = status.get("reason") or status.get("phase") or "Unknown"
    restarts, ready, running = 0, 0, False
    last_restart: dt.datetime | None = None
    for cs in reversed(statuses):
        restarts += cs.get("restartCount", 0)
        terminated_before = (cs.get("lastState") or {}).get("terminated")
        if terminated_before:
            finished = parse_time(terminated_before.get("finishedAt"))
            if finished and (last_restart is None or finished > last_restart):
                last_restart = finished
        state = cs.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated"):
            t = state["terminated"]
            reason = t.get("reason") or (
                f"Signal:{t['signal']}" if t.get("signal") else f"ExitCode:{t.get('exitCode', 0)}"
            )
        elif cs.get("ready") and state.get("running"):
            running = True
            ready += 1
    if reason == "Completed" and running:
        reason = "Running"
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    restarts_text = str(restarts)
    if restarts and last_restart is not None:
        restarts_text = f"{restarts} ({human_duration((at - last_restart).total_seconds())} ago)"
    gates = pod["spec"].get("readinessGates") or []
    return [
        pod["metadata"]["name"],
        f"{ready}/{total}",
        reason,
        restarts_text,
        _age(pod, at),
        status.get("podIP") or "<none>",
        pod["spec"].get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        f"0/{len(gates)}" if gates else "<none>",
    ]


# --- nodes, namespaces -----------------------------------------------------------------------

NODE_COLUMNS: list[Column] = [
    _NAME,
    ("Status", "string", 0, "The status of the node"),
    ("Roles", "string", 0, "The roles of the node"),
    _AGE,
    ("Version", "string", 0, "Kubelet Version reported by the node."),
    ("Internal-IP", "string", 1, "List of addresses reachable to the node. Queried from cloud provider."),
    ("External-IP", "string", 1, "List of addresses reachable to the node. Queried from cloud provider."),
    (
        "OS-Image",
        "string",
        1,
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7).",
    ),
    ("Kernel-Version", "string", 1, "Kernel Version reported by the node from 'uname -r'."),
    (
        "Container-Runtime",
        "string",
        1,
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
    ),
]


def node_row(node: dict[str, Any], at: dt.datetime) -> Row:
    status = node.get("status") or {}
    ready = next((c["status"] for c in status.get("conditions") or [] if c["type"] == "Ready"), "Unknown")
    text = {"True": "Ready", "False": "NotReady"}.get(ready, "Unknown")
    if node["spec"].get("unschedulable"):
        text += ",SchedulingDisabled"
    roles = sorted(
        k.split("/", 1)[1]
        for k in (node["metadata"].get("labels") or {})
        if k.startswith("node-role.kubernetes.io/")
    )
    info = status.get("nodeInfo") or {}

    def address(kind: str) -> str:
        return next((a["address"] for a in status.get("addresses") or [] if a["type"] == kind), "<none>")

    return [
        node["metadata"]["name"],
        text,
        ",".join(roles) or "<none>",
        _age(node, at),
        info.get("kubeletVersion", ""),
        address("InternalIP"),
        address("ExternalIP"),
        info.get("osImage", "<unknown>"),
        info.get("kernelVersion", "<unknown>"),
        info.get("containerRuntimeVersion", "<unknown>"),
    ]


NAMESPACE_COLUMNS: list[Column] = [_NAME, ("Status", "string", 0, "The status of the namespace"), _AGE]


def namespace_row(ns: dict[str, Any], at: dt.datetime) -> Row:
    return [ns["metadata"]["name"], (ns.get("status") or {}).get("phase", "Active"), _age(ns, at)]


# --- workloads ---------------------------------------------------------------------------------

_WIDE_WORKLOAD: list[Column] = [
    ("Containers", "string", 1, "Names of each container in the template."),
    ("Images", "string", 1, "Images referenced by each container in the template."),
    ("Selector", "string", 1, "Label selector for pods."),
]
DEPLOYMENT_COLUMNS: list[Column] = [
    _NAME,
    ("Ready", "string", 0, "Number of the pod with ready state"),
    (
        "Up-to-date",
        "integer",
        0,
        "Total number of non-terminated pods targeted by this deployment that have "
        "the desired template spec.",
    ),
    (
        "Available",
        "integer",
        0,
        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
    ),
    _AGE,
    *_WIDE_WORKLOAD,
]
REPLICASET_COLUMNS: list[Column] = [
    _NAME,
    ("Desired", "integer", 0, "Replicas is the number of desired replicas."),
    ("Current", "integer", 0, "Replicas is the most recently observed number of replicas."),
    ("Ready", "integer", 0, "The number of ready replicas for this replica set."),
    _AGE,
    *_WIDE_WORKLOAD,
]


def _template_cells(obj: dict[str, Any]) -> list[str]:
    containers = obj["spec"]["template"]["spec"].get("containers") or []
    return [
        ",".join(c["name"] for c in containers),
        ",".join(c.get("image", "") for c in containers),
        selector_string(obj["spec"].get("selector")),
    ]


def deployment_row(d: dict[str, Any], at: dt.datetime) -> Row:
    status = d.get("status") or {}
    return [
        d["metadata"]["name"],
        f"{status.get('readyReplicas', 0)}/{d['spec'].get('replicas', 1)}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        _age(d, at),
        *_template_cells(d),
    ]


def replicaset_row(rs: dict[str, Any], at: dt.datetime) -> Row:
    status = rs.get("status") or {}
    return [
        rs["metadata"]["name"],
        rs["spec"].get("replicas", 0),
        status.get("replicas", 0),
        status.get("readyReplicas", 0),
        _age(rs, at),
        *_template_cells(rs),
    ]


DAEMONSET_COLUMNS: list[Column] = [
    _NAME,
    ("Desired", "integer", 0, "The total number of nodes that should be running the daemon pod."),
    ("Current", "integer", 0, "The number of nodes that are running at least 1 daemon pod."),
    ("Ready", "integer", 0, "The number of nodes that should be running the daemon pod and have one Ready."),
    ("Up-to-date", "integer", 0, "The total number of nodes that are running updated daemon pod"),
    (
        "Available",
        "integer",
        0,
        "The number of nodes that should be running the daemon pod and have one available.",
    ),
    (
        "Node Selector",
        "string",
        0,
        "NodeSelector is a selector which must be true for the pod to fit on a node.",
    ),
    _AGE,
    *_WIDE_WORKLOAD,
]


def daemonset_row(ds: dict[str, Any], at: dt.datetime) -> Row:
    s = ds.get("status") or {}
    selector = ds["spec"]["template"]["spec"].get("nodeSelector") or {}
    return [
        ds["metadata"]["name"],
        s.get("desiredNumberScheduled", 0),
        s.get("currentNumberScheduled", 0),
        s.get("numberReady", 0),
        s.get("updatedNumberScheduled", 0),
        s.get("numberAvailable", 0),
        ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>",
        _age(ds, at),
        *_template_cells(ds),
    ]


PDB_COLUMNS: list[Column] = [
    _NAME,
    ("Min Available", "string", 0, "The minimum number of pods that must be available."),
    ("Max Unavailable", "string", 0, "The maximum number of pods that may be unavailable."),
    ("Allowed Disruptions", "integer", 0, "Calculated number of pods that may be disrupted at this time."),
    _AGE,
]


def pdb_row(pdb: dict[str, Any], at: dt.datetime) -> Row:
    spec = pdb.get("spec") or {}
    return [
        pdb["metadata"]["name"],
        str(spec.get("minAvailable", "N/A")),
        str(spec.get("maxUnavailable", "N/A")),
        (pdb.get("status") or {}).get("disruptionsAllowed", 0),
        _age(pdb, at),
    ]


# --- events --------------------------------------------------------------------------------------

EVENT_COLUMNS: list[Column] = [
    ("Last Seen", "string", 0, "Time when last event from the event source was recorded."),
    ("Type", "string", 0, "Type of this event (Normal, Warning), new types could be added in the future."),
    (
        "Reason",
        "string",
        0,
        "A short, machine understandable string that gives the reason for the "
        "transition into the object's current status.",
    ),
    ("Object", "string", 0, "The object that this event is about."),
    ("Subobject", "string", 1, "The subobject that this event is about."),
    ("Source", "string", 1, "The component reporting this event."),
    ("Message", "string", 0, "A human-readable description of the status of this operation."),
    ("First Seen", "string", 1, "The first time this event was recorded."),
    ("Count", "integer", 1, "The number of times this event has occurred."),
    ("Name", "string", 1, "Name must be unique within a namespace."),
]


def event_row(ev: dict[str, Any], at: dt.datetime) -> Row:
    involved = ev.get("involvedObject") or {}
    source = ev.get("source") or {}
    source_text = source.get("component", "")
    if source.get("host"):
        source_text += f", {source['host']}"
    last = ev.get("lastTimestamp") or ev.get("eventTime")
    first = ev.get("firstTimestamp") or ev.get("eventTime")
    last_seen = since(last, at)
    if ev.get("count", 1) > 1:
        last_seen = f"{last_seen} (x{ev['count']} over {since(first, at)})"
    return [
        last_seen,
        ev.get("type", ""),
        ev.get("reason", ""),
        f"{involved.get('kind', '').lower()}/{involved.get('name', '')}",
        involved.get("fieldPath", ""),
        source_text,
        ev.get("message", ""),
        since(first, at),
        ev.get("count", 1),
        ev["metadata"]["name"],
    ]


JOB_COLUMNS: list[Column] = [
    _NAME,
    ("Status", "string", 0, "Status of the job."),
    ("Completions", "string", 0, "The completion status of the job."),
    ("Duration", "string", 0, "Time required to complete the job."),
    _AGE,
    *_WIDE_WORKLOAD,
]


def _job_status(job: dict[str, Any]) -> str:
    """The printer's precedence: Complete, Failed, Terminating, Suspended, FailureTarget, ..."""
    true = {c["type"] for c in (job.get("status") or {}).get("conditions") or [] if c.get("status") == "True"}
    if "Complete" in true:
        return "Complete"
    if "Failed" in true:
        return "Failed"
    if job["metadata"].get("deletionTimestamp"):
        return "Terminating"
    for kind in ("Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if kind in true:
            return kind
    return "Running"


def job_row(job: dict[str, Any], at: dt.datetime) -> Row:
    spec, status = job["spec"], job.get("status") or {}
    succeeded = status.get("succeeded", 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif int(spec.get("parallelism", 1)) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    started, ended = parse_time(status.get("startTime")), parse_time(status.get("completionTime"))
    duration = human_duration(((ended or at) - started).total_seconds()) if started else ""
    name = job["metadata"]["name"]
    return [name, _job_status(job), completions, duration, _age(job, at), *_template_cells(job)]


DEFAULT_COLUMNS: list[Column] = [_NAME, _AGE]


def default_row(obj: dict[str, Any], at: dt.datetime) -> Row:
    return [obj["metadata"]["name"], _age(obj, at)]


PRINTERS: dict[str, tuple[list[Column], Callable[[dict[str, Any], dt.datetime], Row]]] = {
    "pods": (POD_COLUMNS, pod_row),
    "nodes": (NODE_COLUMNS, node_row),
    "namespaces": (NAMESPACE_COLUMNS, namespace_row),
    "deployments": (DEPLOYMENT_COLUMNS, deployment_row),
    "replicasets": (REPLICASET_COLUMNS, replicaset_row),
    "daemonsets": (DAEMONSET_COLUMNS, daemonset_row),
    "events": (EVENT_COLUMNS, event_row),
    "poddisruptionbudgets": (PDB_COLUMNS, pdb_row),
    "jobs": (JOB_COLUMNS, job_row),
}


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def table(
    plural: str,
    items: list[dict[str, Any]],
    *,
    at: dt.datetime,
    list_meta: dict[str, Any],
    include_object: str = "PartialObjectMetadata",
) -> dict[str, Any]:
    columns, row_of = PRINTERS.get(plural, (DEFAULT_COLUMNS, default_row))
    rows = []
    for obj in items:
        row: dict[str, Any] = {"cells": row_of(obj, at)}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": [
            {
                "name": n,
                "type": t,
                "format": "name" if n == "Name" and p == 0 else "",
                "description": d,
                "priority": p,
            }
            for n, t, p, d in columns
        ],
        "rows": rows,
    }
