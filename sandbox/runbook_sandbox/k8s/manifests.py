"""Manifests the seeds build on: nodes, namespaces, containers and deployments as an EKS cluster has them.

Split from seeds.py so the scenario code reads as the story (which rollout happened when) while the
shape of each object (node capacity and conditions, probe settings, strategy defaults) lives here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from runbook_sandbox.k8s.pods import default_pod
from runbook_sandbox.k8s.store import Store, iso


def node(name: str, ip: str, zone: str, created: dt.datetime) -> dict[str, Any]:
    since = iso(created)
    conditions = [
        ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/region": "us-east-1",
                "topology.kubernetes.io/zone": zone,
                "node.kubernetes.io/instance-type": "m5.xlarge",
                "eks.amazonaws.com/nodegroup": "general",
                "eks.amazonaws.com/capacityType": "ON_DEMAND",
            },
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"providerID": f"aws:///{zone}/i-0{abs(hash(name)) % 10**16:016x}"},
        "status": {
            "capacity": {"cpu": "4", "memory": "16208924Ki", "pods": "58", "ephemeral-storage": "83873772Ki"},
            "allocatable": {
                "cpu": "3920m",
                "memory": "15189020Ki",
                "pods": "58",
                "ephemeral-storage": "76224326324",
            },
            "conditions": [
                {
                    "type": t,
                    "status": s,
                    "lastHeartbeatTime": since,
                    "lastTransitionTime": since,
                    "reason": r,
                    "message": m,
                }
                for t, s, r, m in conditions
            ],
            "addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "Hostname", "address": name},
                {"type": "InternalDNS", "address": name},
            ],
            "nodeInfo": {
                "machineID": f"ec2{abs(hash(ip)) % 10**12:012d}",
                "systemUUID": f"ec2{zone}",
                "bootID": f"boot-{ip}",
                "kernelVersion": "6.1.119-129.201.amzn2023.x86_64",
                "osImage": "Amazon Linux 2023.6.20241212",
                "containerRuntimeVersion": "containerd://1.7.23",
                "kubeletVersion": "v1.32.2-eks-677bac1",
                "kubeProxyVersion": "v1.32.2-eks-677bac1",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }


def namespace(store: Store, name: str, created: dt.datetime) -> None:
    store.create(
        "namespaces",
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        },
        created=created,
    )


def container(
    name: str, image: str, *, memory: str, cpu: str = "250m", port: int = 8080, ready_delay: int | None = None
) -> dict[str, Any]:
    c: dict[str, Any] = {
        "name": name,
        "image": image,
        "ports": [{"containerPort": port, "protocol": "TCP"}],
        "env": [{"name": "LOG_LEVEL", "value": "info"}],
        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}},
    }
    if ready_delay is not None:
        c["readinessProbe"] = {
            "httpGet": {"path": "/healthz", "port": port, "scheme": "HTTP"},
            "initialDelaySeconds": ready_delay,
            "periodSeconds": 5,
            "timeoutSeconds": 1,
            "successThreshold": 1,
            "failureThreshold": 3,
        }
    return c


def deployment(
    namespace: str,
    name: str,
    replicas: int,
    containers: list[dict[str, Any]],
    *,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    labels = labels or {"app": name}
    template = {
        "metadata": {"labels": dict(labels), "creationTimestamp": None},
        "spec": {"containers": containers},
    }
    default_pod(template)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(labels),
            "generation": 1,
            "annotations": {},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": template,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        },
        "status": {},
    }
