"""The kubelet for Job pods: their containers run as local processes (runtime.py), and their status
and events are what a node would report.

Which pods: those of a Job (label `batch.kubernetes.io/job-name`, kept when the Job is deleted with
propagationPolicy Orphan); the seeded application pods keep the app model of kubelet.py.
`restartPolicy` is Never for these (the sandbox's Job API refuses others), so a container runs once:
waiting (ContainerCreating, or CreateContainerConfigError) -> running -> terminated (exitCode, reason
Completed/Error/StartError, startedAt/finishedAt); the pod phase follows: Pending, Running, then
Succeeded or Failed. The environment is podenv.py's. A pod being deleted (deletionTimestamp: deleted,
evicted, past its Job's deadline) has its processes ended (SIGTERM, SIGKILL after the grace period)
and is removed once they have ended, after the job controller counted it.

Unsupported, refused clearly (the pod fails with reason UnsupportedPodSpec and a Warning event, never
runs without what it asked for): volumes and volumeMounts, initContainers, ephemeral containers.
Images are not pulled.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from runbook_sandbox.k8s import events
from runbook_sandbox.k8s.podenv import ConfigError, Node, argv, environment
from runbook_sandbox.k8s.runtime import Runtime, stamp
from runbook_sandbox.k8s.store import Store, iso


def is_local(pod: dict[str, Any]) -> bool:
    """A Job's pod (by its label, which stays when the Job is deleted with propagationPolicy Orphan)."""
    return "batch.kubernetes.io/job-name" in (pod["metadata"].get("labels") or {})


def unsupported(pod: dict[str, Any]) -> str:
    spec = pod["spec"]
    if spec.get("volumes") or any(c.get("volumeMounts") for c in spec["containers"]):
        return "volumes are not supported by the sandbox's kubelet (containers run as local processes)"
    if spec.get("initContainers") or spec.get("ephemeralContainers"):
        return "init and ephemeral containers are not supported by the sandbox's kubelet"
    return ""


# --- status -------------------------------------------------------------------------------------


def _condition(kind: str, ok: bool, since: str, reason: str = "") -> dict[str, Any]:
    c: dict[str, Any] = {
        "type": kind,
        "status": "True" if ok else "False",
        "lastProbeTime": None,
        "lastTransitionTime": since,
    }
    if reason:
        c["reason"] = reason
    return c


def _transition(old: dict[str, Any], kind: str, ok: bool, at: str, reason: str = "") -> dict[str, Any]:
    """Keep lastTransitionTime when the condition's status did not change."""
    for c in old.get("conditions") or []:
        if c["type"] == kind and c["status"] == ("True" if ok else "False") and c.get("reason", "") == reason:
            return c
    return _condition(kind, ok, at, reason)


def sync(store: Store, runtime: Runtime, node: Node, pod: dict[str, Any], at: dt.datetime) -> dict[str, Any]:
    """Start the pod's containers if not yet started; return the status the kubelet reports now."""
    meta, spec = pod["metadata"], pod["spec"]
    uid = meta["uid"]
    old = pod.get("status") or {}
    status: dict[str, Any] = {
        k: old[k] for k in ("hostIP", "hostIPs", "podIP", "podIPs", "startTime") if k in old
    }
    status["qosClass"] = old.get("qosClass", "BestEffort")
    start = status.get("startTime", meta["creationTimestamp"])
    disruption = [c for c in old.get("conditions") or [] if c["type"] == "DisruptionTarget"]
    why_not = unsupported(pod)
    deleting = bool(meta.get("deletionTimestamp"))
    states = []
    for c in spec["containers"]:
        box = runtime.get(uid, c["name"])
        waiting: dict[str, Any] | None = None
        if box is None and not why_not and not deleting:
            try:
                env = environment(store, node, pod, c)
            except ConfigError as exc:
                waiting = {"reason": "CreateContainerConfigError", "message": str(exc)}
                _event(store, pod, c, "Failed", f"Error: {exc}", at, warning=True)
            else:
                _event(
                    store,
                    pod,
                    c,
                    "Pulled",
                    f'Container image "{c.get("image", "")}" already present on machine',
                    at,
                )
                box = runtime.start(
                    uid=uid, name=c["name"], argv=argv(node, c), env=env, cwd=c.get("workingDir")
                )
                if box.reason == "StartError":
                    _event(store, pod, c, "Failed", f"Error: {box.message}", at, warning=True)
                else:
                    _event(store, pod, c, "Created", f"Created container: {c['name']}", at)
                    _event(store, pod, c, "Started", f"Started container {c['name']}", at)
        states.append(_container_status(c, box, waiting, why_not or ("" if not deleting else "deleted"), uid))
    if why_not and not old.get("reason"):
        events.record(
            store,
            pod,
            reason="FailedMount" if why_not.startswith("volumes") else "Failed",
            type_="Warning",
            message=why_not,
            component="kubelet",
            host=spec.get("nodeName", ""),
            first=at,
            now=at,
        )
    status["containerStatuses"] = states
    terminated = [s["state"].get("terminated") for s in states]
    running = any("running" in s["state"] for s in states)
    if all(terminated):
        status["phase"] = "Succeeded" if all(t["exitCode"] == 0 for t in terminated if t) else "Failed"
    else:
        status["phase"] = "Running" if running else "Pending"
    if why_not:
        status["reason"], status["message"] = "UnsupportedPodSpec", why_not
    now_s = iso(at)
    ready = running and all("running" in s["state"] for s in states)
    done_reason = "PodCompleted" if status["phase"] in ("Succeeded", "Failed") else ""
    status["conditions"] = [
        *disruption,
        _transition(old, "PodReadyToStartContainers", bool(running or all(terminated)), now_s),
        _transition(old, "Initialized", True, start, "PodCompleted" if done_reason else ""),
        _transition(old, "Ready", ready, now_s, done_reason or ("" if ready else "ContainersNotReady")),
        _transition(
            old, "ContainersReady", ready, now_s, done_reason or ("" if ready else "ContainersNotReady")
        ),
        _transition(old, "PodScheduled", True, meta["creationTimestamp"]),
    ]
    for s in states:
        s["ready"] = ready and "running" in s["state"]
    return status


def _container_status(
    c: dict[str, Any], box: Any, waiting: dict[str, Any] | None, failed: str, uid: str
) -> dict[str, Any]:
    image = c.get("image", "")
    status: dict[str, Any] = {
        "name": c["name"],
        "image": image,
        "imageID": "",
        "ready": False,
        "restartCount": 0,
        "lastState": {},
        "started": False,
    }
    if box is None:
        if failed and failed != "deleted":
            status["state"] = {
                "terminated": {"exitCode": 128, "reason": "ContainerCannotRun", "message": failed}
            }
        elif failed == "deleted":
            status["state"] = {
                "terminated": {
                    "exitCode": 137,
                    "reason": "ContainerStatusUnknown",
                    "message": "The container could not be located when the pod was deleted",
                }
            }
        else:
            status["state"] = {"waiting": waiting or {"reason": "ContainerCreating"}}
        return status
    status["containerID"] = f"sandbox-process://{uid[:8]}-{c['name']}"
    status["imageID"] = image
    if box.exit_code is None:
        status["state"] = {"running": {"startedAt": iso(box.started)}}
        status["started"] = True
        return status
    terminated: dict[str, Any] = {
        "exitCode": box.exit_code,
        "reason": box.reason,
        "startedAt": iso(box.started),
        "finishedAt": stamp(box.finished),
        "containerID": status["containerID"],
    }
    if box.message:
        terminated["message"] = box.message
    status["state"] = {"terminated": terminated}
    return status


def _event(
    store: Store,
    pod: dict[str, Any],
    c: dict[str, Any],
    reason: str,
    message: str,
    at: dt.datetime,
    *,
    warning: bool = False,
) -> None:
    events.record(
        store,
        pod,
        reason=reason,
        type_="Warning" if warning else "Normal",
        message=message,
        component="kubelet",
        host=pod["spec"].get("nodeName", ""),
        field_path=f"spec.containers{{{c['name']}}}",
        first=at,
        now=at,
    )


def settled(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


class LocalKubelet:
    """Mixin for Controller: the kubelet's pass over Job pods. Needs `store`, `runtime`, `node`,
    `settled` and `_items`."""

    store: Store
    runtime: Runtime | None
    node: Node | None
    settled: set[str]

    def _items(self, plural: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _local_kubelet(self, at: dt.datetime) -> None:
        if self.runtime is None or self.node is None:
            return
        for pod in self._items("pods"):
            uid = pod["metadata"]["uid"]
            if uid in self.settled or not pod["spec"].get("nodeName") or not is_local(pod):
                continue
            if pod["metadata"].get("deletionTimestamp"):
                grace = float(pod["metadata"].get("deletionGracePeriodSeconds", 30))
                self.runtime.terminate(uid, grace=grace)
            status = sync(self.store, self.runtime, self.node, pod, at)
            if status != pod.get("status"):
                pod = self.store.replace("pods", dict(pod, status=status))
            if settled(pod) and not pod["metadata"].get("deletionTimestamp"):
                self.settled.add(uid)

    def _reap(self) -> None:
        """Remove deleted Job pods whose processes have ended (after the job controller counted them)."""
        for pod in self._items("pods"):
            meta = pod["metadata"]
            if meta.get("deletionTimestamp") and (settled(pod) or self.runtime is None):
                self.store.delete("pods", meta["namespace"], meta["name"])
                self.settled.discard(meta["uid"])
        if self.runtime is not None:
            present = {p["metadata"]["uid"] for p in self.store.values("pods")}
            for uid in self.runtime.uids() - present:
                self.runtime.forget(uid)
