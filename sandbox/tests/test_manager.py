"""The sandbox manager: its env works unchanged for the SDKs, and `down` really ends everything."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from runbook_kit.errors import ParameterError
from runbook_sandbox import manager, timeline
from runbook_sandbox.manager import SandboxError, SandboxInfo
from runbook_sandbox.scenarios import SCENARIOS, resolve

pytestmark = pytest.mark.sandbox

PARTS = manager.available_parts()


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def ports(info: SandboxInfo) -> list[int]:
    urls = [info.aws_endpoint, info.k8s_url, info.pg_dsn]
    return [urllib.parse.urlsplit(u).port or 0 for u in urls if u]


def refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def processes_under(path: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(str(path) in part for part in proc.info["cmdline"] or []) and alive(proc.pid):
            found.append(proc)
    return found


def test_env_works_as_is_for_boto3_psycopg_and_the_kits_clients(aws_pg_sandbox: SandboxInfo) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PG", "RUNBOOK_", "KUBECONFIG"))}
    env.update(aws_pg_sandbox.env)
    code = (
        "import json, os, boto3, psycopg\n"
        "from runbook_kit import clients\n"
        "rds = boto3.client('rds').describe_db_instances()['DBInstances'][0]['DBInstanceIdentifier']\n"
        "kit = clients.aws('cloudtrail').lookup_events(MaxResults=1)['Events'][0]['EventName']\n"
        "with psycopg.connect('') as c:\n"
        "    db = c.execute('select current_database(), current_user').fetchone()\n"
        "with clients.pg_connect() as c:\n"
        "    sql = \"select count(*) from pg_stat_activity where state = 'idle in transaction'\"\n"
        "    n = c.execute(sql).fetchone()[0]\n"
        "ns = []\n"
        "if 'KUBECONFIG' in os.environ:\n"
        "    ns = [n.metadata.name for n in clients.core_v1().list_namespace().items]\n"
        "print(json.dumps({'rds': rds, 'db': db, 'kit': bool(kit), 'leaked': n, 'ns': ns}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert result.pop("leaked") > 10  # the planted leak, seen through RUNBOOK_DSN
    namespaces = result.pop("ns")
    if "KUBECONFIG" in aws_pg_sandbox.env:
        assert {timeline.CRASHLOOP_NAMESPACE, timeline.LATENCY_NAMESPACE} <= set(namespaces)
    assert result == {"rds": timeline.DB_INSTANCE_ID, "db": [timeline.DB_NAME, "sandbox"], "kit": True}


def running_job_processes(info: SandboxInfo) -> list[int]:
    """Start a Job whose process sleeps, and return its PID once it runs (from the pod's log)."""
    import time

    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(info.kubeconfig))
    code = (  # and a child in a session of its own, as `runbook run` starts its kernel
        "import os, subprocess, sys, time\n"
        "kernel = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'],\n"
        "                          start_new_session=True)\n"
        "print(os.getpid(), kernel.pid, flush=True)\ntime.sleep(120)"
    )
    container = {"name": "main", "image": "runbook-kit:dev", "command": ["python", "-c", code]}
    pod_spec = {"restartPolicy": "Never", "containers": [container]}
    body = {"metadata": {"name": "sleeper"}, "spec": {"template": {"spec": pod_spec}}}
    client.BatchV1Api(api).create_namespaced_job("default", body)
    core = client.CoreV1Api(api)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod("default", label_selector="job-name=sleeper").items
        running = [p.metadata.name for p in pods if p.status.phase == "Running"]
        log = core.read_namespaced_pod_log(running[0], "default") if running else ""
        if log.strip():
            pids = [int(p) for p in log.split()]
            assert all(alive(pid) for pid in pids)
            return pids
        time.sleep(0.1)
    raise AssertionError("the Job's process did not start")


def test_down_ends_every_process_and_closes_every_port(tmp_path: Path) -> None:
    state_dir = tmp_path / "sb"
    info = manager.up("connections", state_dir=state_dir, parts=PARTS)
    try:
        assert manager.status(state_dir=state_dir) == info
        assert len(info.pids) >= 3 and all(alive(pid) for pid in info.pids.values())
        assert all(not refused(port) for port in ports(info))
        assert json.loads((state_dir / "state.json").read_text())["info"]["pids"] == info.pids
        job_pids = running_job_processes(info) if "k8s" in PARTS else []
    finally:
        manager.down(state_dir=state_dir)
    assert [name for name, pid in info.pids.items() if alive(pid)] == []
    assert [pid for pid in job_pids if alive(pid)] == []  # a running Job pod's process too
    assert [port for port in ports(info) if not refused(port)] == []
    assert processes_under(state_dir) == []
    assert not state_dir.exists()
    assert manager.status(state_dir=state_dir) is None
    manager.down(state_dir=state_dir)  # idempotent


def test_up_twice_reuses_and_a_different_scenario_is_refused(
    fresh_sandbox: Callable[..., SandboxInfo],
) -> None:
    info = fresh_sandbox("latency", parts=("aws",))
    assert manager.up("latency", state_dir=info.state_dir, parts=("aws",)) == info
    with pytest.raises(SandboxError, match="already runs"):
        manager.up("connections", state_dir=info.state_dir, parts=("aws",))
    with pytest.raises(SandboxError, match="already runs"):
        manager.up("latency", state_dir=info.state_dir, parts=("aws", "postgres"))
    assert set(info.env) >= {
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    }
    assert "RUNBOOK_DSN" not in info.env  # parts not started are not exported


def test_a_failed_start_tears_down_what_it_started(tmp_path: Path) -> None:
    state_dir = tmp_path / "sb"
    with pytest.raises(SandboxError, match="did not start"):
        manager.up("connections", state_dir=state_dir, parts=("aws", "postgres"), timeout=0.5)
    assert processes_under(state_dir) == []
    assert manager.status(state_dir=state_dir) is None


def test_a_dead_sandbox_is_not_running_and_up_recovers(tmp_path: Path) -> None:
    state_dir = tmp_path / "sb"
    info = manager.up("crashloop", state_dir=state_dir, parts=("aws",))
    try:
        os.killpg(info.pids["aws"], 15)
        psutil.Process(info.pids["aws"]).wait(10)
        assert manager.status(state_dir=state_dir) is None
        again = manager.up("crashloop", state_dir=state_dir, parts=("aws",))
        assert again.pids["aws"] != info.pids["aws"] and alive(again.pids["aws"])
    finally:
        manager.down(state_dir=state_dir)
    assert processes_under(state_dir) == []


@pytest.mark.skipif("k8s" not in PARTS, reason="the Kubernetes part is not installed")
def test_down_ends_job_processes_even_when_the_kubernetes_part_was_killed(tmp_path: Path) -> None:
    state_dir = tmp_path / "sb"
    info = manager.up("connections", state_dir=state_dir, parts=("k8s",))
    try:
        pids = running_job_processes(info)
        os.kill(info.pids["k8s"], 9)  # no chance to end its pods' processes itself
        psutil.Process(info.pids["k8s"]).wait(10)
        assert all(alive(pid) for pid in pids)
    finally:
        manager.down(state_dir=state_dir)
    assert [pid for pid in pids if alive(pid)] == []


@pytest.mark.skipif("k8s" in manager.available_parts(), reason="the Kubernetes part is installed")
def test_missing_kubernetes_part_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match=r"runbook_kit\.sandbox\.k8s"):
        manager.up("all", state_dir=tmp_path / "sb")
    assert processes_under(tmp_path) == []


def test_default_state_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RUNBOOK_SANDBOX_DIR", str(tmp_path / "x"))
    assert manager.default_state_dir() == tmp_path / "x"
    monkeypatch.delenv("RUNBOOK_SANDBOX_DIR")
    assert manager.default_state_dir() == Path("~/.local/state/sandbox/runbook_sandbox").expanduser()


def test_scenario_registry() -> None:
    assert list(SCENARIOS) == list(timeline.SCENARIOS)
    assert (SCENARIOS["crashloop"].runbook, dict(SCENARIOS["crashloop"].parameters)) == (
        "pod_crashloop",
        {"namespace": "payments", "deployment": "api"},
    )
    assert (SCENARIOS["connections"].runbook, dict(SCENARIOS["connections"].parameters)) == (
        "db_connection_exhaustion",
        {"db_instance_id": "orders-db"},
    )
    assert SCENARIOS["latency"].runbook == "api_latency_spike"
    assert SCENARIOS["latency"].parameters["load_balancer"] == timeline.LATENCY_LOAD_BALANCER
    assert all(s.description and s.cause.endswith(".") for s in SCENARIOS.values())
    assert resolve("all") == ["crashloop", "connections", "latency", "node"]
    assert SCENARIOS["node"].runbook == "node_health" and SCENARIOS["node"].parts == ("aws", "k8s")
    assert resolve("latency, crashloop") == ["crashloop", "latency"]
    with pytest.raises(ParameterError, match="unknown scenario"):
        resolve("meltdown")
