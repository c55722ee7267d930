"""The environment of a Job pod's process, built like the kubelet's, and the node's stand-ins.

Last wins: the sandbox's own basics (PATH, with the directory of the sandbox's Python first, as the
kit's image would have it; HOME, TMPDIR, PYTHONPATH, LANG, VIRTUAL_ENV: so a developer's worktree
code runs), what the node injects, then the container's `envFrom` (secretRef,
configMapRef, with `prefix`) and `env` (value, valueFrom secretKeyRef / configMapKeyRef / fieldRef
metadata.name, metadata.namespace, metadata.uid, metadata.labels['k'], spec.serviceAccountName,
spec.nodeName, status.podIP). A missing Secret, ConfigMap or key (not `optional`) is a ConfigError:
the container waits with CreateContainerConfigError and a Failed event, like a kubelet.

What the node injects are the sandbox's stand-ins:
- in-cluster API access: `KUBECONFIG`, a file pointing at this API server with a token naming the
  pod's ServiceAccount (requests made with it are logged as `system:serviceaccount:NS:NAME` and
  authorized by RBAC, rbac.py), and KUBERNETES_SERVICE_HOST/PORT (a real pod would read the projected
  token under /var/run/secrets instead);
- AWS access standing in for IRSA: AWS_ENDPOINT_URL of the sandbox's moto server, its region and test
  credentials (when the sandbox's AWS part runs).
The container's argv: `command` (or the entrypoint mapped to its image) + `args`, never a shell.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook_sandbox.k8s.store import Store

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
    bin_dir = os.path.dirname(sys.executable)  # the image's PATH starts with the kit's bin: `runbook`
    env["PATH"] = os.pathsep.join(
        [bin_dir, *(p for p in env.get("PATH", "").split(os.pathsep) if p and p != bin_dir)]
    )
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
