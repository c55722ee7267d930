"""The process interface the sandbox manager relies on: ready line, kubeconfig, request log, clean exit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from k8s_harness import port_open, start, stop

pytestmark = pytest.mark.sandbox


def test_ready_line_kubeconfig_and_sigterm(tmp_path: Path) -> None:
    sandbox = start(tmp_path, "--scenario", "none", "--anchor", "2026-01-15T10:00:00Z")
    try:
        assert sandbox.url.startswith("http://127.0.0.1:") and sandbox.pid == sandbox.process.pid
        config = json.loads(Path(sandbox.kubeconfig).read_text())
        assert config["current-context"] == "runbook-sandbox"
        assert config["clusters"][0]["cluster"]["server"] == sandbox.url
        assert config["users"][0]["user"]["token"]
        from kubernetes import client

        namespaces = {n.metadata.name for n in client.CoreV1Api(sandbox.api_client()).list_namespace().items}
        assert namespaces == {"default", "kube-system", "kube-public", "kube-node-lease"}
        log = (tmp_path / "k8s-requests.jsonl").read_text().splitlines()
        entry = json.loads(log[-1])
        assert set(entry) == {"ts", "method", "path", "query", "dry_run", "status", "verb", "user"}
        assert entry["path"] == "/api/v1/namespaces" and entry["verb"] == "list" and entry["dry_run"] is False
        assert entry["user"] == "runbook-sandbox"
    finally:
        started = time.monotonic()
        assert stop(sandbox) == 0
        assert time.monotonic() - started < 1.0  # the manager expects ≤ 1 s
    assert not port_open(sandbox.port)
    with pytest.raises(ProcessLookupError):
        os.kill(sandbox.pid, 0)


def test_sigint_exits_cleanly(tmp_path: Path) -> None:
    sandbox = start(tmp_path, "--scenario", "crashloop")
    os.kill(sandbox.pid, signal.SIGINT)
    assert sandbox.process.wait(timeout=5) == 0
    stop(sandbox)
    assert not port_open(sandbox.port)


def test_unknown_scenario_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "runbook_sandbox.k8s",
            "--state-dir",
            str(tmp_path),
            "--scenario",
            "volcano",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and "unknown scenario" in done.stderr


def test_bulk_pods_are_seeded_and_listable(tmp_path: Path) -> None:
    sandbox = start(tmp_path, "--scenario", "none", "--pods", "1200")
    try:
        from kubernetes import client

        core = client.CoreV1Api(sandbox.api_client())
        total, token = 0, None
        while True:
            page = json.loads(
                core.list_namespaced_pod("bulk", limit=500, _continue=token, _preload_content=False).data
            )
            total += len(page["items"])
            assert all(p["status"]["phase"] == "Running" for p in page["items"])
            token = page["metadata"].get("continue")
            if not token:
                break
        assert total == 1200
        deployments = client.AppsV1Api(sandbox.api_client()).list_namespaced_deployment("bulk").items
        assert len(deployments) == 5 and sum(d.spec.replicas for d in deployments) == 1200
    finally:
        assert stop(sandbox) == 0


def test_seeded_rollouts_line_up_with_the_anchor(tmp_path: Path) -> None:
    import datetime as dt

    from kubernetes import client

    from runbook_sandbox import timeline as tl

    anchor = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    sandbox = start(tmp_path, "--scenario", "all", "--anchor", anchor.isoformat())
    try:
        apps = client.AppsV1Api(sandbox.api_client())

        def newest_rs(namespace: str, app: str) -> client.V1ReplicaSet:
            rs = apps.list_namespaced_replica_set(namespace, label_selector=f"app={app}").items
            return max(rs, key=lambda r: int(r.metadata.annotations["deployment.kubernetes.io/revision"]))

        crash = newest_rs(tl.CRASHLOOP_NAMESPACE, tl.CRASHLOOP_DEPLOYMENT)
        assert crash.metadata.creation_timestamp == anchor - tl.CRASHLOOP_ROLLOUT_AGO
        latency = newest_rs(tl.LATENCY_NAMESPACE, tl.LATENCY_SERVICE)
        assert latency.metadata.creation_timestamp == anchor - tl.LATENCY_DEPLOY_AGO
        assert latency.spec.template.spec.containers[0].image.endswith(":v3.9.0")
    finally:
        assert stop(sandbox) == 0
