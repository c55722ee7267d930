"""kubectl 1.32 against the crashloop scenario: the commands an on-call engineer types, with
assertions on what they print and, for mutating commands, on the resulting cluster state."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from runbook_sandbox import timeline as tl

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.kubectl,
    pytest.mark.skipif(not Path(KUBECTL).exists(), reason="kubectl is not installed"),
]
NS = tl.CRASHLOOP_NAMESPACE


def kubectl(sandbox: Any, *args: str, check: bool = True) -> str:
    cmd = [
        KUBECTL,
        "--kubeconfig",
        sandbox.kubeconfig,
        "--cache-dir",
        str(sandbox.state_dir / "kube-cache"),
        "--request-timeout",
        "10s",
        *args,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return done.stdout + (done.stderr if not check else "")


def rows(output: str) -> list[list[str]]:
    """Split a kubectl table on runs of 2+ spaces (cells like `9 (4m ago)` keep their single spaces)."""
    import re

    return [re.split(r"\s{2,}", line.strip()) for line in output.strip().splitlines()]


def pods_json(sandbox: Any, *selector: str) -> list[dict[str, Any]]:
    return json.loads(kubectl(sandbox, "get", "pods", "-n", NS, *selector, "-o", "json"))["items"]


def wait_for(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.2)


def crashing_pod(sandbox: Any) -> str:
    for line in rows(kubectl(sandbox, "get", "pods", "-n", NS))[1:]:
        if line[2] == "CrashLoopBackOff":
            return line[0]
    raise AssertionError("no crash-looping pod")


# --- read-only, on the session cluster -----------------------------------------------------------


def test_get_pods_all_namespaces_wide(cluster: Any) -> None:
    table = rows(kubectl(cluster, "get", "pods", "-A", "-o", "wide"))
    assert table[0] == [
        "NAMESPACE",
        "NAME",
        "READY",
        "STATUS",
        "RESTARTS",
        "AGE",
        "IP",
        "NODE",
        "NOMINATED NODE",
        "READINESS GATES",
    ]
    namespaces = {r[0] for r in table[1:]}
    assert {"kube-system", "payments", "storefront"} <= namespaces
    assert all(r[7].startswith("ip-10-0-") and r[6].startswith("10.0.") for r in table[1:])


def test_get_pods_payments(cluster: Any) -> None:
    table = rows(kubectl(cluster, "get", "pods", "-n", NS))
    assert table[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    api = [r for r in table[1:] if r[0].startswith("api-")]
    crash = [r for r in api if r[2] == "CrashLoopBackOff"]
    assert len(crash) == 1 and crash[0][1] == "0/1" and crash[0][3].split()[0].isdigit()
    assert " ago)" in crash[0][3] and crash[0][4] in ("24m", "25m", "26m")
    assert sorted(r[2] for r in api if r not in crash) == ["Running"] * 3


def test_describe_pod(cluster: Any) -> None:
    out = kubectl(cluster, "describe", "pod", "-n", NS, crashing_pod(cluster))
    for expected in (
        "Reason:       CrashLoopBackOff",
        "Reason:       OOMKilled",
        "Exit Code:    137",
        f"memory:  {tl.CRASHLOOP_BAD_LIMIT}",
        "Controlled By:  ReplicaSet/api-",
        "Back-off restarting failed container api",
        "Successfully assigned payments/",
    ):
        assert expected in out, expected


def test_logs_previous(cluster: Any) -> None:
    out = kubectl(
        cluster, "logs", "-n", NS, crashing_pod(cluster), "--previous", "--tail", "20", "--timestamps"
    )
    lines = out.strip().splitlines()
    assert 5 < len(lines) <= 20 and all(line.split(" ", 1)[0].endswith("Z") for line in lines)
    assert "limit_mib=256" in lines[-1] and "heap_used_mib=" in lines[-1]


def test_rollout_history(cluster: Any) -> None:
    table = rows(kubectl(cluster, "rollout", "history", "deployment/api", "-n", NS))
    assert table[1] == ["REVISION", "CHANGE-CAUSE"]
    assert [r[0] for r in table[2:]] == ["1", "2", "3"]
    assert tl.CRASHLOOP_BAD_LIMIT in table[-1][1]


def test_top_pods_and_nodes(cluster: Any) -> None:
    pods = rows(kubectl(cluster, "top", "pods", "-n", NS))
    assert pods[0] == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert all(r[1].endswith("m") and r[2].endswith("Mi") for r in pods[1:])
    nodes = rows(kubectl(cluster, "top", "nodes"))
    assert nodes[0][:3] == ["NAME", "CPU(cores)", "CPU(%)"] and len(nodes) == 4


def test_get_events(cluster: Any) -> None:
    table = rows(kubectl(cluster, "get", "events", "-n", NS))
    assert table[0] == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    reasons = {(r[1], r[2]) for r in table[1:]}
    assert ("Warning", "BackOff") in reasons and ("Normal", "ScalingReplicaSet") in reasons


def test_get_nodes_deployments_replicasets_wide(cluster: Any) -> None:
    nodes = rows(kubectl(cluster, "get", "nodes", "-o", "wide"))
    assert nodes[0] == [
        "NAME",
        "STATUS",
        "ROLES",
        "AGE",
        "VERSION",
        "INTERNAL-IP",
        "EXTERNAL-IP",
        "OS-IMAGE",
        "KERNEL-VERSION",
        "CONTAINER-RUNTIME",
    ]
    deploys = rows(kubectl(cluster, "get", "deploy", "-n", NS, "-o", "wide"))
    assert deploys[0] == [
        "NAME",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ]
    api = next(r for r in deploys if r[0] == "api")
    assert api[1:4] == ["3/3", "1", "3"] and api[7] == "app=api"
    rs = rows(kubectl(cluster, "get", "rs", "-n", NS))
    assert rs[0] == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    assert sum(1 for r in rs[1:] if r[0].startswith("api-")) == 3


# --- mutating, each on a fresh cluster --------------------------------------------------------------


def test_rollout_undo_stops_the_crash_loop(fresh_cluster: Any) -> None:
    out = kubectl(fresh_cluster, "rollout", "undo", "deployment/api", "-n", NS)
    assert "deployment.apps/api rolled back" in out
    kubectl(fresh_cluster, "rollout", "status", "deployment/api", "-n", NS, "--timeout", "30s")
    pods = pods_json(fresh_cluster, "-l", "app=api")
    assert len(pods) == 3
    for pod in pods:
        assert pod["spec"]["containers"][0]["resources"]["limits"]["memory"] == tl.CRASHLOOP_GOOD_LIMIT
        assert pod["status"]["containerStatuses"][0]["ready"]
    history = rows(kubectl(fresh_cluster, "rollout", "history", "deployment/api", "-n", NS))
    assert [r[0] for r in history[2:]] == ["1", "3", "4"]  # revision 2's ReplicaSet became revision 4


def test_set_resources_then_scale_and_restart(fresh_cluster: Any) -> None:
    out = kubectl(
        fresh_cluster,
        "set",
        "resources",
        "deployment/api",
        "-n",
        NS,
        "--limits=memory=512Mi",
        "--requests=memory=512Mi",
    )
    assert "resource requirements updated" in out
    kubectl(fresh_cluster, "rollout", "status", "deployment/api", "-n", NS, "--timeout", "30s")
    assert all(
        p["status"]["containerStatuses"][0]["restartCount"] == 0
        for p in pods_json(fresh_cluster, "-l", "app=api")
    )
    assert "deployment.apps/api scaled" in kubectl(
        fresh_cluster, "scale", "deployment/api", "-n", NS, "--replicas", "5"
    )
    wait_for(
        lambda: (
            len(
                [
                    p
                    for p in pods_json(fresh_cluster, "-l", "app=api")
                    if p["status"].get("containerStatuses", [{}])[0].get("ready")
                ]
            )
            == 5
        )
    )
    before = {p["metadata"]["name"] for p in pods_json(fresh_cluster, "-l", "app=api")}
    assert "restarted" in kubectl(fresh_cluster, "rollout", "restart", "deployment/api", "-n", NS)
    kubectl(fresh_cluster, "rollout", "status", "deployment/api", "-n", NS, "--timeout", "60s")
    after = pods_json(fresh_cluster, "-l", "app=api")
    assert len(after) == 5 and before.isdisjoint(p["metadata"]["name"] for p in after)
    assert all("kubectl.kubernetes.io/restartedAt" in p["metadata"]["annotations"] for p in after)


def test_set_resources_invalid_request_is_rejected(fresh_cluster: Any) -> None:
    out = kubectl(
        fresh_cluster, "set", "resources", "deployment/api", "-n", NS, "--limits=memory=200Mi", check=False
    )
    assert "must be less than or equal to memory limit of 200Mi" in out


def test_cordon_uncordon(fresh_cluster: Any) -> None:
    node = "ip-10-0-1-23.ec2.internal"
    assert "cordoned" in kubectl(fresh_cluster, "cordon", node)
    assert rows(kubectl(fresh_cluster, "get", "node", node))[1][1] == "Ready,SchedulingDisabled"
    before = {p["metadata"]["name"] for p in pods_json(fresh_cluster, "-l", "app=worker")}
    kubectl(fresh_cluster, "scale", "deployment/worker", "-n", NS, "--replicas", "6")
    wait_for(lambda: len(pods_json(fresh_cluster, "-l", "app=worker")) == 6)
    wait_for(lambda: all(p["spec"].get("nodeName") for p in pods_json(fresh_cluster, "-l", "app=worker")))
    created = [p for p in pods_json(fresh_cluster, "-l", "app=worker") if p["metadata"]["name"] not in before]
    assert len(created) == 4 and all(p["spec"]["nodeName"] != node for p in created)
    assert "uncordoned" in kubectl(fresh_cluster, "uncordon", node)
    assert rows(kubectl(fresh_cluster, "get", "node", node))[1][1] == "Ready"


def test_drain_dry_run_then_for_real(fresh_cluster: Any) -> None:
    node = "ip-10-0-2-47.ec2.internal"
    listed = json.loads(
        kubectl(fresh_cluster, "get", "pods", "-A", "--field-selector", f"spec.nodeName={node}", "-o", "json")
    )["items"]
    on_node = [p["metadata"]["name"] for p in listed if not p["metadata"]["name"].startswith("kube-proxy-")]
    refused = kubectl(fresh_cluster, "drain", node, "--delete-emptydir-data", "--dry-run=server", check=False)
    assert (
        "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): kube-system/kube-proxy-"
        in refused
    )
    assert on_node
    before = len(fresh_cluster.requests())
    out = kubectl(
        fresh_cluster, "drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--dry-run=server"
    )
    assert "(server dry run)" in out
    writes = [r for r in fresh_cluster.requests()[before:] if r["method"] != "GET"]
    assert writes and all(r["dry_run"] for r in writes)
    assert rows(kubectl(fresh_cluster, "get", "node", node))[1][1] == "Ready"
    out = kubectl(
        fresh_cluster, "drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout", "60s"
    )
    assert f"node/{node} drained" in out and all(f"{name} evicted" in out for name in on_node)
    remaining = json.loads(
        kubectl(fresh_cluster, "get", "pods", "-A", "--field-selector", f"spec.nodeName={node}", "-o", "json")
    )["items"]
    assert [p["metadata"]["name"][:11] for p in remaining] == ["kube-proxy-"]  # DaemonSet pods stay
    assert rows(kubectl(fresh_cluster, "get", "node", node))[1][1] == "Ready,SchedulingDisabled"
    wait_for(
        lambda: len(pods_json(fresh_cluster, "-l", "app=worker")) == 2
    )  # owners recreated them elsewhere
