"""What a kubelet would report for a pod: status, container states and pod events, as of a moment.

The status is a pure function of the stored pod (spec, node, start time) and the clock, computed
through the app model's container timeline. The controller calls it every tick and stores the result
only when it changed, so resourceVersions move when, and only when, something a client can see
changed (a restart, entering back-off, becoming ready).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from runbook_sandbox.k8s import apps
from runbook_sandbox.k8s.store import iso, parse_time

START_DELAY = dt.timedelta(seconds=0.3)  # pod start -> first container start (pull from cache, create)


@dataclass(frozen=True)
class PodEvent:
    reason: str
    type: str
    message: str
    count: int
    first: dt.datetime
    last: dt.datetime
    component: str = "kubelet"
    field_path: str = ""


def _digest(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


def _limit_mib(container: dict[str, Any]) -> float | None:
    return apps.mib(((container.get("resources") or {}).get("limits") or {}).get("memory"))


def timelines(pod: dict[str, Any], at: dt.datetime) -> dict[str, apps.ContainerTimeline]:
    start = parse_time((pod.get("status") or {}).get("startTime"))
    if start is None or not pod["spec"].get("nodeName"):
        return {}
    first = start + START_DELAY
    if at < first:
        return {}
    return {
        c["name"]: apps.container_timeline(
            app=apps.app_for(c.get("image", "")), limit_mib=_limit_mib(c), first_start=first, at=at
        )
        for c in pod["spec"]["containers"]
    }


def qos_class(pod: dict[str, Any]) -> str:
    containers = pod["spec"]["containers"]
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("limits") or r.get("requests") for r in resources):
        return "BestEffort"
    for r in resources:
        limits, requests = r.get("limits") or {}, r.get("requests") or {}
        if set(limits) < {"cpu", "memory"} or any(requests.get(k, limits[k]) != limits[k] for k in limits):
            return "Burstable"
    return "Guaranteed"


def _terminated(run: apps.Run, *, uid: str, name: str) -> dict[str, Any]:
    assert run.finished is not None
    return {
        "terminated": {
            "exitCode": 137,
            "reason": "OOMKilled",
            "startedAt": iso(run.started),
            "finishedAt": iso(run.finished),
            "containerID": f"containerd://{_digest(uid, name, str(run.index))}",
        }
    }


def container_status(
    pod: dict[str, Any], container: dict[str, Any], tl: apps.ContainerTimeline | None, at: dt.datetime
) -> dict[str, Any]:
    uid, name, image = pod["metadata"]["uid"], container["name"], container.get("image", "")
    status: dict[str, Any] = {
        "name": name,
        "image": image,
        "imageID": "",
        "ready": False,
        "started": False,
        "restartCount": 0,
        "lastState": {},
    }
    if tl is None:
        status["state"] = {"waiting": {"reason": "ContainerCreating"}}
        return status
    app = apps.app_for(image)
    status["imageID"] = f"{image.rsplit(':', 1)[0]}@sha256:{_digest(image)}"
    status["restartCount"] = tl.restart_count
    previous = tl.previous
    if previous is not None:
        status["lastState"] = _terminated(previous, uid=uid, name=name)
    if tl.waiting_since is not None:
        backoff = apps.go_duration(tl.current.backoff)
        status["containerID"] = f"containerd://{_digest(uid, name, str(tl.current.index))}"
        status["state"] = {
            "waiting": {
                "reason": "CrashLoopBackOff",
                "message": f"back-off {backoff} restarting failed container={name} "
                f"pod={pod['metadata']['name']}_{pod['metadata']['namespace']}({uid})",
            }
        }
        return status
    run = tl.current
    status["containerID"] = f"containerd://{_digest(uid, name, str(run.index))}"
    status["state"] = {"running": {"startedAt": iso(run.started)}}
    status["started"] = True
    status["ready"] = not tl.crashing and at >= run.started + dt.timedelta(seconds=app.ready_after)
    return status


def pod_status(pod: dict[str, Any], at: dt.datetime) -> dict[str, Any]:
    """The status a kubelet reports now (keeps the scheduler's fields: podIP, hostIP, startTime)."""
    old = pod.get("status") or {}
    status: dict[str, Any] = {
        k: old[k] for k in ("hostIP", "hostIPs", "podIP", "podIPs", "startTime") if k in old
    }
    created = pod["metadata"]["creationTimestamp"]
    status["qosClass"] = qos_class(pod)
    if not pod["spec"].get("nodeName"):
        status["phase"] = "Pending"
        status["conditions"] = [c for c in old.get("conditions") or [] if c["type"] == "PodScheduled"] or [
            {
                "type": "PodScheduled",
                "status": "False",
                "lastProbeTime": None,
                "lastTransitionTime": created,
                "reason": "Unschedulable",
                "message": "0/0 nodes are available.",
            }
        ]
        return status
    tls = timelines(pod, at)
    statuses = [container_status(pod, c, tls.get(c["name"]), at) for c in pod["spec"]["containers"]]
    status["containerStatuses"] = statuses
    running = any("running" in s["state"] for s in statuses) or any(s["restartCount"] for s in statuses)
    status["phase"] = "Running" if running else "Pending"
    start = status.get("startTime", created)
    unready = [s["name"] for s in statuses if not s["ready"]]
    ready_since = start
    if not unready and tls:
        ready_since = max(
            iso(tl.current.started + dt.timedelta(seconds=apps.app_for(c.get("image", "")).ready_after))
            for c in pod["spec"]["containers"]
            for tl in [tls[c["name"]]]
        )
    else:
        latest = [tl.waiting_since or tl.current.started for tl in tls.values()]
        ready_since = iso(max(latest)) if latest else start

    def condition(kind: str, ok: bool, since: str, reason: str = "", message: str = "") -> dict[str, Any]:
        c: dict[str, Any] = {
            "type": kind,
            "status": "True" if ok else "False",
            "lastProbeTime": None,
            "lastTransitionTime": since,
        }
        if not ok and reason:
            c["reason"], c["message"] = reason, message
        return c

    names = " ".join(unready)
    status["conditions"] = [
        condition("PodReadyToStartContainers", bool(tls), start),
        condition("Initialized", True, start),
        condition(
            "Ready",
            not unready,
            ready_since,
            "ContainersNotReady",
            f"containers with unready status: [{names}]",
        ),
        condition(
            "ContainersReady",
            not unready,
            ready_since,
            "ContainersNotReady",
            f"containers with unready status: [{names}]",
        ),
        condition("PodScheduled", True, created),
    ]
    return status


def is_ready(pod: dict[str, Any]) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c["type"] == "Ready":
            return c["status"] == "True"
    return False


def settled(pod: dict[str, Any], at: dt.datetime) -> bool:
    """True when the status can no longer change by itself (running, ready, not crashing)."""
    tls = timelines(pod, at)
    return bool(tls) and is_ready(pod) and not any(tl.crashing for tl in tls.values())


def pod_events(pod: dict[str, Any], at: dt.datetime) -> list[PodEvent]:
    """The kubelet's and scheduler's events for this pod, with counts, as of `at`."""
    meta, spec = pod["metadata"], pod["spec"]
    node = spec.get("nodeName")
    if not node:
        return []
    created = parse_time(meta["creationTimestamp"]) or at
    events = [
        PodEvent(
            "Scheduled",
            "Normal",
            f"Successfully assigned {meta['namespace']}/{meta['name']} to {node}",
            1,
            created,
            created,
            component="default-scheduler",
        )
    ]
    tls = timelines(pod, at)
    for c in spec["containers"]:
        tl = tls.get(c["name"])
        if tl is None:
            continue
        path = f"spec.containers{{{c['name']}}}"
        starts = tl.starts
        first, last = tl.first_start, tl.current.started
        image = c.get("image", "")
        events += [
            PodEvent(
                "Pulled",
                "Normal",
                f'Container image "{image}" already present on machine',
                starts,
                first - dt.timedelta(seconds=0.1),
                last - dt.timedelta(seconds=0.1),
                field_path=path,
            ),
            PodEvent(
                "Created", "Normal", f"Created container: {c['name']}", starts, first, last, field_path=path
            ),
            PodEvent(
                "Started", "Normal", f"Started container {c['name']}", starts, first, last, field_path=path
            ),
        ]
        if tl.backoff_events and tl.first_backoff and tl.last_backoff:
            events.append(
                PodEvent(
                    "BackOff",
                    "Warning",
                    f"Back-off restarting failed container {c['name']} in pod "
                    f"{meta['name']}_{meta['namespace']}({meta['uid']})",
                    tl.backoff_events,
                    tl.first_backoff,
                    tl.last_backoff,
                    field_path=path,
                )
            )
    return events
