"""The kubelet for Job pods: their containers run as local processes (runtime.py), and their status,
events and environment are what a node would give them.

Which pods: those controlled by a Job (the seeded application pods keep the app model of kubelet.py).
`restartPolicy` is Never for these (the Job API refuses others in the sandbox), so a container runs
once: running -> terminated (exitCode, reason Completed/Error, startedAt/finishedAt), and the pod
phase follows: Running, then Succeeded or Failed.

The environment is built like the kubelet's, last wins: the sandbox's own basics (PATH, HOME, TMPDIR,
PYTHONPATH, LANG, VIRTUAL_ENV: so a developer's worktree code runs), what the node injects, then the
container's `envFrom` (secretRef, configMapRef, with `prefix`) and `env` (value, valueFrom
secretKeyRef / configMapKeyRef / fieldRef metadata.name, metadata.namespace, metadata.uid,
spec.serviceAccountName, spec.nodeName, status.podIP). A missing Secret, ConfigMap or key (not
`optional`) keeps the container waiting with CreateContainerConfigError and a Failed event, like a
kubelet. What the node injects are the sandbox's stand-ins:
- in-cluster API access: `KUBECONFIG`, a file pointing at this API server with a token naming the
  pod's ServiceAccount (`system:serviceaccount:NS:NAME` in the request log), and
  KUBERNETES_SERVICE_HOST/PORT (a real pod would read the projected token instead);
- AWS access standing in for IRSA: AWS_ENDPOINT_URL of the sandbox's moto server, its region and test
  credentials (only when the sandbox's AWS part runs).
Unsupported, refused clearly (the pod fails with a Warning event, never runs wrong): volumes and
volumeMounts, initContainers, ephemeral containers. Images are not pulled.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook_sandbox.k8s import events
from runbook_sandbox.k8s.runtime import Runtime, stamp
from runbook_sandbox.k8s.store import Store, iso

PASS_THROUGH = ("PATH", "HOME", "TMPDIR", "PYTHONPATH", "LANG", "LC_ALL", "VIRTUAL_ENV", "USER", "TZ")
SA_TOKEN_PREFIX = "sandbox-serviceaccount"


class ConfigError(Exception):
    """The container cannot be configured (a missing Secret, ConfigMap or key)."""


@dataclass
class Node:
    """What the node provides to the processes it starts."""

    state_dir: Path
    api_url: str = ""
    aws_url_file: Path | None = None
    entrypoints: dict[str, list[str]] = field(default_factory=dict)

    def aws_url(self) -> str:
        if self.aws_url_file is None:
            return ""
        try:
            return self.aws_url_file.read_text().strip()
        except OSError:
            return ""


def is_local(pod: dict[str, Any]) -> bool:
    """A Job's pod (by its label, which stays when the Job is deleted with propagationPolicy Orphan)."""
    return "batch.kubernetes.io/job-name" in (pod["metadata"].get("labels") or {})


def sa_token(namespace: str, name: str) -> str:
    return f"{SA_TOKEN_PREFIX}.{namespace}.{name}"


def identity(authorization: str | None) -> tuple[str, str, str] | None:
    """(namespace, name, username) of a ServiceAccount token in an Authorization header, else None."""
    token = (authorization or "").removeprefix("Bearer ").strip()
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != SA_TOKEN_PREFIX:
        return None
    return parts[1], parts[2], f"system:serviceaccount:{parts[1]}:{parts[2]}"


def kubeconfig_for(node: Node, pod: dict[str, Any]) -> Path:
    meta = pod["metadata"]
    sa = pod["spec"].get("serviceAccountName") or "default"
    path = node.state_dir / "pods" / meta["uid"] / "kubeconfig"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "in-cluster", "cluster": {"server": node.api_url}}],
        "users": [{"name": sa, "user": {"token": sa_token(meta["namespace"], sa)}}],
        "contexts": [
            {
                "name": "in-cluster",
                "context": {"cluster": "in-cluster", "user": sa, "namespace": meta["namespace"]},
            }
        ],
        "current-context": "in-cluster",
    }
    path.write_text(json.dumps(doc, indent=2))
    return path


def _data(store: Store, kind: str, namespace: str, name: str, optional: bool) -> dict[str, str] | None:
    plural = "secrets" if kind == "secret" else "configmaps"
    obj = store.get(plural, namespace, name)
    if obj is None:
        if optional:
            return None
        raise ConfigError(f'{kind} "{name}" not found')
    if plural == "secrets":
        out = {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
        out.update(obj.get("stringData") or {})
        return out
    return dict(obj.get("data") or {})


def _field(pod: dict[str, Any], path: str) -> str:
    values = {
        "metadata.name": pod["metadata"]["name"],
        "metadata.namespace": pod["metadata"]["namespace"],
        "metadata.uid": pod["metadata"]["uid"],
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName") or "default",
        "spec.nodeName": pod["spec"].get("nodeName", ""),
        "status.podIP": (pod.get("status") or {}).get("podIP", ""),
        "status.hostIP": (pod.get("status") or {}).get("hostIP", ""),
    }
    if path in values:
        return str(values[path])
    if path.startswith(("metadata.labels['", "metadata.annotations['")):
        which, key = path.split("['", 1)
        return str((pod["metadata"].get(which.split(".")[1]) or {}).get(key.rstrip("']"), ""))
    raise ConfigError(f"unsupported fieldRef {path}")


def environment(store: Store, node: Node, pod: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    ns = pod["metadata"]["namespace"]
    env = {k: os.environ[k] for k in PASS_THROUGH if k in os.environ}
    env.update(
        KUBECONFIG=str(kubeconfig_for(node, pod)),
        KUBERNETES_SERVICE_HOST="127.0.0.1",
        KUBERNETES_SERVICE_PORT=node.api_url.rsplit(":", 1)[-1],
        HOSTNAME=pod["metadata"]["name"],
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    aws = node.aws_url()
    if aws:
        env.update(
            AWS_ENDPOINT_URL=aws,
            AWS_REGION="us-east-1",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
        )
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, key in (("secret", "secretRef"), ("configmap", "configMapRef")):
            ref = source.get(key)
            if ref:
                data = _data(store, kind, ns, ref.get("name", ""), bool(ref.get("optional")))
                env.update({prefix + k: v for k, v in (data or {}).items()})
    for var in container.get("env") or []:
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = str(var.get("value", ""))
            continue
        source = var["valueFrom"]
        if "fieldRef" in source:
            env[name] = _field(pod, source["fieldRef"].get("fieldPath", ""))
            continue
        for kind, key in (("secret", "secretKeyRef"), ("configmap", "configMapKeyRef")):
            ref = source.get(key)
            if ref is None:
                continue
            optional = bool(ref.get("optional"))
            data = _data(store, kind, ns, ref.get("name", ""), optional)
            if data is not None and ref.get("key") in data:
                env[name] = data[ref["key"]]
            elif not optional:
                what = "Secret" if kind == "secret" else "ConfigMap"
                raise ConfigError(f"couldn't find key {ref.get('key')} in {what} {ns}/{ref.get('name')}")
            break
        else:
            raise ConfigError(f"unsupported valueFrom for {name} (resourceFieldRef is not supported)")
    return env


def argv(node: Node, container: dict[str, Any]) -> list[str]:
    image = container.get("image", "")
    command = list(container.get("command") or [])
    if not command:
        command = node.entrypoints.get(image) or node.entrypoints.get(image.rsplit(":", 1)[0]) or []
    return command + [str(a) for a in container.get("args") or []] if command else []


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
            reason="FailedCreatePodSandBox",
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
