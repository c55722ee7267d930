"""Workload status: the `kubectl get pods -o wide`, `get deploy,rs` and `describe` views as DataFrames.

Pods are read page by page as raw JSON and flattened in one pass into tuples (no per-pod pandas
work), so the 10,000-pod view stays within seconds and a few hundred MB. Columns are stable and
times are UTC, so later steps (diagnosis, plots, verify) and the record can rely on them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from runbook_kit.errors import ParameterError
from runbook_kit.k8s import _api
from runbook_kit.k8s._api import REVISION

if TYPE_CHECKING:  # pragma: no cover
    from runbook_kit.k8s.snapshot import WorkloadSnapshot

__all__ = [
    "POD_COLUMNS",
    "deployment_status",
    "event_rows",
    "most_restarted_pod",
    "pod_events",
    "pod_rows",
    "pod_status",
    "replicaset_status",
]

POD_COLUMNS = [
    "namespace",
    "pod",
    "status",
    "phase",
    "ready",
    "ready_containers",
    "containers",
    "restarts",
    "waiting_reason",
    "last_reason",
    "last_exit_code",
    "last_finished",
    "node",
    "ip",
    "age",
    "created",
    "owner",
]


def _pod_status_text(pod: dict[str, Any], statuses: list[dict[str, Any]], phase: str) -> str:
    """What kubectl prints in STATUS: a waiting/terminated reason beats the phase."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    reason = ""
    for cs in statuses:
        state = cs.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason"):
            reason = state["waiting"]["reason"]
        elif "terminated" in state and not reason:
            reason = state["terminated"].get("reason") or f"ExitCode:{state['terminated'].get('exitCode')}"
    return reason or (pod.get("status") or {}).get("reason") or phase


def pod_rows(pods: list[dict[str, Any]], *, at: Any = None) -> pd.DataFrame:
    """Flatten raw pod dicts into the status DataFrame (pure: plain data in, DataFrame out)."""
    at = at or _api.now()
    rows = []
    for pod in pods:
        meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
        statuses = status.get("containerStatuses") or []
        phase = status.get("phase") or "Pending"
        waiting = last_reason = ""
        last_exit: float | None = None
        last_finished = None
        restarts = 0
        ready = 0
        for cs in statuses:
            restarts += int(cs.get("restartCount") or 0)
            ready += bool(cs.get("ready"))
            w = (cs.get("state") or {}).get("waiting") or {}
            waiting = waiting or w.get("reason", "")
            term = (cs.get("lastState") or {}).get("terminated") or (cs.get("state") or {}).get("terminated")
            if term:
                finished = term.get("finishedAt")
                if last_finished is None or (finished and finished > last_finished):
                    last_finished, last_reason = finished, term.get("reason") or ""
                    last_exit = term.get("exitCode")
        n = len(spec.get("containers") or []) or len(statuses)
        created = meta.get("creationTimestamp")
        ref = _api.owner(pod)
        rows.append(
            (
                meta.get("namespace", ""),
                meta.get("name", ""),
                _pod_status_text(pod, statuses, phase),
                phase,
                f"{ready}/{n}",
                ready,
                n,
                restarts,
                waiting,
                last_reason,
                last_exit,
                last_finished,
                spec.get("nodeName") or "",
                status.get("podIP") or "",
                None,
                created,
                f"{ref['kind']}/{ref['name']}" if ref else "",
            )
        )
    df = pd.DataFrame.from_records(rows, columns=POD_COLUMNS)
    df["created"] = pd.to_datetime(df["created"], utc=True, format="ISO8601")
    df["last_finished"] = pd.to_datetime(df["last_finished"], utc=True, format="ISO8601")
    df["age"] = (pd.Timestamp(at) - df["created"]).dt.floor("s")
    df["last_exit_code"] = df["last_exit_code"].astype("Int64")
    return df


def _selector(namespace: str, deployment: str, selector: str, context: str, apps_api: Any) -> str:
    if not deployment:
        return selector
    dep = _api.read_deployment(_api.apps(context, apps_api), namespace, deployment, context=context)
    labels = ((dep.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(filter(None, [_api.selector_string(labels), selector]))


def select_pods(
    *, namespace: str, deployment: str, selector: str, context: str, core: Any, apps: Any
) -> tuple[str, list[dict[str, Any]]]:
    """(label selector, pods): the deployment's matchLabels plus `selector`, and the pods they select."""
    if namespace is None:  # a required parameter left unset in an interactive run: never "every namespace"
        raise ParameterError("namespace is not set: give the namespace of the workload")
    label_selector = _selector(namespace, deployment, selector, context, apps)
    return label_selector, list_pods(namespace=namespace, selector=label_selector, context=context, core=core)


def list_pods(
    *,
    namespace: str,
    selector: str = "",
    field_selector: str = "",
    context: str = "",
    core: Any | None = None,
) -> list[dict[str, Any]]:
    api = _api.core(context, core)
    kwargs: dict[str, Any] = {
        k: v for k, v in (("label_selector", selector), ("field_selector", field_selector)) if v
    }
    if namespace:
        pods = _api.list_items(api.list_namespaced_pod, namespace, op=f"list pods in {namespace}", **kwargs)
        if not pods:
            _api.namespace_exists(namespace, context=context, core_api=api)
        return pods
    return _api.list_items(api.list_pod_for_all_namespaces, op="list pods", **kwargs)


def pod_status(
    snap: WorkloadSnapshot | None = None,
    /,
    *,
    namespace: str | None = None,
    deployment: str = "",
    selector: str = "",
    context: str = "",
    core: Any | None = None,
    apps: Any | None = None,
) -> pd.DataFrame:
    """The pods of a namespace (optionally of a deployment or label selector), `get pods -o wide`.

    Given a `WorkloadSnapshot`, the view of its pods (no API call); otherwise a live read.
    """
    if snap is not None:
        frame = pod_rows([dict(p) for p in snap.pods], at=snap.taken_at)
        return frame.sort_values(["restarts", "pod"], ascending=[False, True], ignore_index=True)
    _, pods = select_pods(
        namespace=namespace,  # type: ignore[arg-type]  # select_pods refuses None readably
        deployment=deployment, selector=selector, context=context, core=core, apps=apps
    )
    return pod_rows(pods).sort_values(["restarts", "pod"], ascending=[False, True], ignore_index=True)


def most_restarted_pod(pods: pd.DataFrame | WorkloadSnapshot) -> str:
    """The pod with the most restarts in a `pod_status` frame or a snapshot; "" when there is none (pure)."""
    if pods is not None and not isinstance(pods, pd.DataFrame):
        pods = pod_status(pods)
    if pods is None or pods.empty:
        return ""
    return str(pods.sort_values(["restarts", "pod"], ascending=[False, True]).iloc[0]["pod"])


def deployment_status(
    snap: WorkloadSnapshot | None = None,
    /,
    *,
    namespace: str | None = None,
    deployment: str = "",
    context: str = "",
    apps: Any | None = None,
) -> pd.DataFrame:
    """Deployments with desired/updated/ready/available replicas, revision, generation and conditions.

    Given a `WorkloadSnapshot`, its deployment (no API call); otherwise a live read.
    """
    if snap is not None:
        return _deployment_rows([dict(snap.deployment_object)] if snap.deployment_object else [])
    namespace = _api.require_namespace(namespace)
    api = _api.apps(context, apps)
    if deployment:
        items = [_api.read_deployment(api, namespace, deployment, context=context)]
    else:
        items = _api.list_items(
            api.list_namespaced_deployment, namespace, op=f"list deployments in {namespace}"
        )
    return _deployment_rows(items)


def _deployment_rows(items: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for d in items:
        meta, spec, st = d.get("metadata") or {}, d.get("spec") or {}, d.get("status") or {}
        conditions = {c.get("type"): c for c in st.get("conditions") or []}
        progressing = conditions.get("Progressing") or {}
        rows.append(
            {
                "deployment": meta.get("name"),
                "replicas": spec.get("replicas", 1),
                "updated": st.get("updatedReplicas", 0),
                "ready": st.get("readyReplicas", 0),
                "available": st.get("availableReplicas", 0),
                "unavailable": st.get("unavailableReplicas", 0),
                "revision": (meta.get("annotations") or {}).get(REVISION, ""),
                "generation": meta.get("generation"),
                "observed_generation": st.get("observedGeneration"),
                "available_condition": (conditions.get("Available") or {}).get("status", ""),
                "progressing": f"{progressing.get('status', '')} {progressing.get('reason', '')}".strip(),
                "images": ", ".join(
                    c.get("image", "")
                    for c in ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
                ),
            }
        )
    return pd.DataFrame(rows)


def replicaset_status(
    snap: WorkloadSnapshot | None = None,
    /,
    *,
    namespace: str | None = None,
    deployment: str = "",
    context: str = "",
    apps: Any | None = None,
) -> pd.DataFrame:
    """ReplicaSets (of a deployment) with revision, desired/ready replicas, images and age.

    Given a `WorkloadSnapshot`, its replica sets (no API call); otherwise a live read.
    """
    from runbook_kit.k8s.rollout import replicasets_of

    if snap is not None:
        rss = [dict(rs) for rs in snap.replicasets]
    else:
        rss = replicasets_of(
            namespace=_api.require_namespace(namespace), deployment=deployment, context=context, apps=apps
        )
    rows = [
        {
            "replicaset": rs["metadata"]["name"],
            "revision": int((rs["metadata"].get("annotations") or {}).get(REVISION, 0) or 0),
            "desired": (rs.get("spec") or {}).get("replicas", 0),
            "current": (rs.get("status") or {}).get("replicas", 0),
            "ready": (rs.get("status") or {}).get("readyReplicas", 0),
            "images": ", ".join(
                c.get("image", "") for c in rs["spec"]["template"]["spec"].get("containers", [])
            ),
            "created": pd.Timestamp(rs["metadata"].get("creationTimestamp")),
        }
        for rs in rss
    ]
    return pd.DataFrame(rows).sort_values("revision", ignore_index=True) if rows else pd.DataFrame(rows)


def pod_events(
    snap: WorkloadSnapshot | None = None,
    /,
    *,
    namespace: str | None = None,
    pod: str = "",
    context: str = "",
    core: Any | None = None,
) -> pd.DataFrame:
    """`kubectl describe`'s Events: for a pod (or the namespace), oldest first, with counts.

    Given a `WorkloadSnapshot`, the events of `pod` (or of all its pods) it holds (no API call).
    """
    if snap is not None:
        return event_rows([
            dict(e) for e in snap.events if not pod or (e.get("involvedObject") or {}).get("name") == pod
        ])
    namespace = _api.require_namespace(namespace)
    api = _api.core(context, core)
    fields = f"involvedObject.name={pod}" if pod else ""
    kwargs: dict[str, Any] = {"field_selector": fields} if fields else {}
    items = _api.list_items(api.list_namespaced_event, namespace, op=f"list events in {namespace}", **kwargs)
    if not items:
        _api.namespace_exists(namespace, context=context, core_api=api)
    return event_rows(items)


def event_rows(items: list[dict[str, Any]]) -> pd.DataFrame:
    """Events as `describe` shows them, oldest first (pure)."""
    rows = []
    for e in items:
        obj = e.get("involvedObject") or {}
        last = (
            e.get("lastTimestamp") or e.get("eventTime") or (e.get("metadata") or {}).get("creationTimestamp")
        )
        rows.append(
            {
                "last_seen": last,
                "first_seen": e.get("firstTimestamp") or last,
                "type": e.get("type", ""),
                "reason": e.get("reason", ""),
                "object": f"{obj.get('kind', '')}/{obj.get('name', '')}",
                "count": e.get("count") or 1,
                "message": e.get("message", ""),
            }
        )
    df = pd.DataFrame(
        rows, columns=["last_seen", "first_seen", "type", "reason", "object", "count", "message"]
    )
    for col in ("last_seen", "first_seen"):
        df[col] = pd.to_datetime(df[col], utc=True, format="ISO8601")
    return df.sort_values("last_seen", ignore_index=True)
