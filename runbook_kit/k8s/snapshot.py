"""A workload at one instant, read once: the evidence every view and the diagnosis share.

The crash-loop runbook used to display pods, events, logs, resources and history, then diagnose by
reading all of it again: the tables in the record were not what the finding used, and the cluster
got every call twice. `workload_snapshot` reads each thing once — the deployment, its ReplicaSets
(the rollout history), the pods, the pods' events, the previous logs of the crashing containers
(at most `max_pods` pods, `tail` lines each) and metrics.k8s.io usage — into a frozen
`WorkloadSnapshot`. The views (`pod_status(snap)`, `pod_events(snap, pod=...)`, ...) and
`diagnose_crashloop(snap)` are pure functions of it, like `pg.connection_snapshot`.

A read that cannot be done (events, logs, replica sets or metrics forbidden or not served) becomes a
gap in the record and in `snap.gaps`; only the pods (and a named deployment) are required.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
from collections import Counter
from collections.abc import Mapping
from typing import Any

from runbook_kit import record
from runbook_kit.errors import BackendError, ParameterError
from runbook_kit.k8s import _api
from runbook_kit.k8s.classify import crashing_containers
from runbook_kit.k8s.logs import read_log
from runbook_kit.k8s.resources import pod_metrics
from runbook_kit.k8s.rollout import replicasets_of, revision
from runbook_kit.k8s.status import list_pods
from runbook_kit.record import DEGRADING

__all__ = ["MAX_PODS_READ", "TAIL_LINES", "WorkloadSnapshot", "snapshot_from_objects", "workload_snapshot"]

MAX_PODS_READ = 5  # previous logs are read for at most this many crashing pods
TAIL_LINES = 200  # lines of each previous log

Usage = Mapping[tuple[str, str], tuple[float, float]]


@dataclasses.dataclass(frozen=True, kw_only=True)
class WorkloadSnapshot:
    """A deployment (or label selector) and everything the crash-loop runbook reads about it, once."""

    namespace: str
    deployment: str = ""  # the deployment's name ("" when none was given or found)
    selector: str = ""  # the label selector the pods were listed with
    context: str = ""
    taken_at: dt.datetime
    deployment_object: Mapping[str, Any] | None = None
    replicasets: tuple[Mapping[str, Any], ...] = ()  # of the deployment, oldest revision first
    pods: tuple[Mapping[str, Any], ...] = ()
    events: tuple[Mapping[str, Any], ...] = ()  # events whose object is one of the pods
    logs: Mapping[tuple[str, str], str] = dataclasses.field(default_factory=dict)  # previous logs
    log_errors: Mapping[tuple[str, str], str] = dataclasses.field(default_factory=dict)
    usage: Usage | None = None  # None: metrics.k8s.io not served or not permitted
    gaps: tuple[str, ...] = ()  # "what: why" of every read that could not be done

    @property
    def crashing(self) -> list[tuple[Mapping[str, Any], dict[str, Any]]]:
        """(pod, container status) of every crash-looping container."""
        return [(p, cs) for p in self.pods for cs in crashing_containers(p)]

    @property
    def where(self) -> str:
        if self.deployment:
            return f"{self.namespace}/{self.deployment}"
        return f"{self.namespace} ({self.selector or 'all pods'})"

    @property
    def revision(self) -> int | None:
        return revision(dict(self.deployment_object)) if self.deployment_object else None

    def counts(self) -> dict[str, Any]:
        return {
            "pods": len(self.pods),
            "crashing_containers": len(self.crashing),
            "restarts": sum(
                int(cs.get("restartCount") or 0)
                for p in self.pods
                for cs in (p.get("status") or {}).get("containerStatuses") or []
            ),
            "events": len(self.events),
            "previous_logs": len(self.logs),
            "replicasets": len(self.replicasets),
            "metrics": "unavailable" if self.usage is None else len(self.usage),
            "gaps": len(self.gaps),
        }

    def _summary(self) -> str:
        c = self.counts()
        rev = f", revision {self.revision}" if self.revision else ""
        return (
            f"{self.where}{rev} at {self.taken_at:%Y-%m-%d %H:%M:%S} UTC: {c['pods']} pods, "
            f"{c['crashing_containers']} crash-looping containers, {c['restarts']} restarts"
        )

    def _repr_html_(self) -> str:
        import pandas as pd

        gaps = "".join(f"<br>gap: {html.escape(g)}" for g in self.gaps)
        table = pd.DataFrame([self.counts()]).to_html(index=False)
        return f"<p><b>{html.escape(self._summary())}</b>{gaps}</p>{table}"

    def __repr__(self) -> str:
        c = self.counts()
        return (
            f"WorkloadSnapshot({self.where!r}, pods={c['pods']}, crashing={c['crashing_containers']}, "
            f"replicasets={c['replicasets']}, events={c['events']}, logs={c['previous_logs']}, "
            f"metrics={c['metrics']!r}, gaps={c['gaps']})"
        )


def snapshot_from_objects(
    *,
    namespace: str,
    pods: list[Mapping[str, Any]],
    deployment: Mapping[str, Any] | None = None,
    replicasets: list[Mapping[str, Any]] = (),  # type: ignore[assignment]
    events: list[Mapping[str, Any]] = (),  # type: ignore[assignment]
    logs: Mapping[tuple[str, str], str] | None = None,
    usage: Usage | None = None,
    selector: str = "",
    context: str = "",
    taken_at: dt.datetime | None = None,
    gaps: tuple[str, ...] = (),
    log_errors: Mapping[tuple[str, str], str] | None = None,
) -> WorkloadSnapshot:
    """A snapshot from plain API objects (dicts as the API serves them): for tests and replays."""
    names = {(p.get("metadata") or {}).get("name") for p in pods}
    return WorkloadSnapshot(
        namespace=namespace,
        deployment=((deployment or {}).get("metadata") or {}).get("name", ""),
        selector=selector,
        context=context,
        taken_at=taken_at or _api.now(),
        deployment_object=deployment,
        replicasets=tuple(sorted(replicasets, key=lambda rs: revision(dict(rs)))),
        pods=tuple(pods),
        events=tuple(e for e in events if (e.get("involvedObject") or {}).get("name") in names),
        logs=dict(logs or {}),
        log_errors=dict(log_errors or {}),
        usage=usage,
        gaps=gaps,
    )


def _owner_deployment(pods: list[dict[str, Any]], rss: list[dict[str, Any]]) -> str:
    """The deployment owning most of the pods' ReplicaSets (pods → RS → Deployment), from lists."""
    by_name = {rs["metadata"]["name"]: rs for rs in rss}
    owners = Counter(
        (_api.owner(by_name[ref["name"]], "Deployment") or {}).get("name", "")
        for p in pods
        if (ref := _api.owner(p, "ReplicaSet")) and ref["name"] in by_name
    )
    owners.pop("", None)
    return owners.most_common(1)[0][0] if owners else ""


def workload_snapshot(
    *,
    namespace: str,
    deployment: str = "",
    selector: str = "",
    context: str = "",
    max_pods: int = MAX_PODS_READ,
    tail: int = TAIL_LINES,
    core: Any | None = None,
    apps: Any | None = None,
    custom: Any | None = None,
) -> WorkloadSnapshot:
    """Read the workload once: deployment, replica sets, pods, their events, previous logs, usage.

    `deployment` (its matchLabels, plus `selector`) or `selector` alone choose the pods; with a
    selector only, the deployment is found from the pods' owners. Each API path is read once.
    """
    if namespace is None:  # a required parameter left unset in an interactive run: never "every namespace"
        raise ParameterError("namespace is not set: give the namespace of the workload")
    taken_at = _api.now()
    gaps: list[str] = []
    apps_api, core_api = _api.apps(context, apps), _api.core(context, core)
    dep: dict[str, Any] | None = None
    label_selector = selector
    if deployment:
        dep = _api.read_deployment(apps_api, namespace, deployment, context=context)
        labels = ((dep.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        label_selector = ",".join(filter(None, [_api.selector_string(labels), selector]))
    pods = list_pods(namespace=namespace, selector=label_selector, context=context, core=core_api)

    rss: list[dict[str, Any]] = []
    what = f"replica sets (rollout history) in {namespace}"
    with record.degrade(what, fix="get, list on replicasets (apps)") as step:
        if dep is not None:
            rss = replicasets_of(namespace=namespace, deployment=deployment, apps=apps_api, dep=dep)
        else:
            kwargs: dict[str, Any] = {"label_selector": label_selector} if label_selector else {}
            rss = sorted(
                _api.list_items(apps_api.list_namespaced_replica_set, namespace,
                                op=f"list replicasets in {namespace}", **kwargs),
                key=revision,
            )
            name = _owner_deployment(pods, rss)
            if name:
                dep = _api.read_deployment(apps_api, namespace, name, context=context)
                uid = (dep.get("metadata") or {}).get("uid")
                rss = [rs for rs in rss if (_api.owner(rs, "Deployment") or {}).get("uid") == uid]
    if step.gap:
        gaps.append(f"{step.gap['what']}: {step.gap['why']}")

    names = {p["metadata"]["name"] for p in pods}
    events: list[dict[str, Any]] = []
    if pods:
        with record.degrade(f"events of the pods in {namespace}", fix="get, list on events") as step:
            items = _api.list_items(
                core_api.list_namespaced_event, namespace, op=f"list pod events in {namespace}",
                field_selector="involvedObject.kind=Pod",
            )
            events = [e for e in items if (e.get("involvedObject") or {}).get("name") in names]
        if step.gap:
            gaps.append(f"{step.gap['what']}: {step.gap['why']}")

    logs: dict[tuple[str, str], str] = {}
    log_errors: dict[tuple[str, str], str] = {}
    restarted = [(p["metadata"]["name"], cs.get("name", "")) for p in pods for cs in crashing_containers(p)
                 if int(cs.get("restartCount") or 0) > 0]
    read_pods = list(dict.fromkeys(name for name, _ in restarted))[:max_pods]
    what = f"previous logs of the crashing containers in {namespace}"
    with record.degrade(what, fix="get on pods/log") as step:
        for name, container in restarted:
            if name not in read_pods:
                continue
            try:
                logs[(name, container)] = read_log(
                    namespace=namespace, pod=name, container=container, previous=True, tail=tail,
                    core=core_api,
                )
            except DEGRADING:
                raise  # the same permission or outage would fail for every pod: one gap
            except BackendError as exc:  # no previous container (yet): classified on status and events
                log_errors[(name, container)] = exc.message or exc.reason or str(exc)
    if step.gap:
        gaps.append(f"{step.gap['what']}: {step.gap['why']}")

    usage = pod_metrics(namespace=namespace, selector=label_selector, custom=custom, context=context)
    if usage is None and pods:
        what = f"container usage (metrics.k8s.io) in {namespace}"
        record.gap(
            what,
            why="metrics.k8s.io answered no pod metrics (not served, or not permitted): limits without usage",
            fix="install metrics-server (or another metrics.k8s.io provider) and grant get/list on "
            "pods.metrics.k8s.io",
        )
        gaps.append(f"{what}: not served or not permitted")

    return WorkloadSnapshot(
        namespace=namespace,
        deployment=((dep or {}).get("metadata") or {}).get("name", deployment),
        selector=label_selector,
        context=context,
        taken_at=taken_at,
        deployment_object=dep,
        replicasets=tuple(rss),
        pods=tuple(pods),
        events=tuple(events),
        logs=logs,
        log_errors=log_errors,
        usage=usage,
        gaps=tuple(gaps),
    )
