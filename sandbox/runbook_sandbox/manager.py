"""Start, inspect and stop the whole incident sandbox: AWS, PostgreSQL and Kubernetes on 127.0.0.1.

The parts start in parallel: the AWS and Kubernetes servers are subprocesses that print one JSON line
when ready, while PostgreSQL (a server plus client processes) is brought up in this process.
Everything started is recorded in `DIR/state.json` with its PID *and* the process's start time, so
`down` (possibly from another process, after `runbook sandbox up` exited) ends exactly those
processes, by PID and process group, and never a recycled PID; the processes of Job pods too (the
Kubernetes part lists them in k8s/pod-processes.json). A failed `up` tears down what it started
before raising.

`SandboxInfo.env` is the whole contract with runbooks: export it, and boto3, the Kubernetes client,
kubectl and libpq reach the sandbox through their standard variables, with no code change.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import importlib.util
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from runbook_kit.errors import RunbookError
from runbook_sandbox import timeline
from runbook_sandbox.processes import spawn, stop_pid, sweep
from runbook_sandbox.scenarios import resolve

__all__ = [
    "PARTS",
    "SandboxError",
    "SandboxInfo",
    "available_parts",
    "default_state_dir",
    "down",
    "status",
    "up",
]

PARTS = ("aws", "postgres", "k8s")
CLIENT_PREFIX = "pg-client-"  # pids of PostgreSQL client processes (the rest are servers)
_STATE = "state.json"


class SandboxError(RunbookError):
    """The sandbox could not start, is already running differently, or a part is missing."""


@dataclasses.dataclass(frozen=True)
class SandboxInfo:
    state_dir: Path
    scenario: str
    anchor: dt.datetime
    aws_endpoint: str
    kubeconfig: Path
    k8s_url: str
    pg_dsn: str
    pg_dsn_unprivileged: str
    pids: dict[str, int]  # every process the sandbox started
    env: dict[str, str]  # exactly what to export

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.update(
            state_dir=str(self.state_dir), anchor=self.anchor.isoformat(), kubeconfig=str(self.kubeconfig)
        )
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxInfo:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values.update(
            state_dir=Path(data["state_dir"]),
            anchor=dt.datetime.fromisoformat(data["anchor"]),
            kubeconfig=Path(data["kubeconfig"]),
        )
        return cls(**values)


def available_parts() -> tuple[str, ...]:
    """The parts this installation can start (the Kubernetes server is a separate package module)."""
    has_k8s = importlib.util.find_spec("runbook_sandbox.k8s.__main__") is not None
    return PARTS if has_k8s else tuple(p for p in PARTS if p != "k8s")


def default_state_dir() -> Path:
    """$RUNBOOK_SANDBOX_DIR, else ~/.local/state/sandbox/runbook_sandbox."""
    if os.environ.get("RUNBOOK_SANDBOX_DIR"):
        return Path(os.environ["RUNBOOK_SANDBOX_DIR"]).expanduser()
    return Path("~/.local/state/sandbox/runbook_sandbox").expanduser()


# --- processes -----------------------------------------------------------------------------------


def _start_time(pid: int) -> float | None:
    """The process's start time (psutil), to tell our process from a later one with the same PID."""
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _ours(pid: int, started: float | None) -> bool:
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return False
        # no recorded start time: the process was already gone when recorded; the PID is not ours now
        return started is not None and abs(proc.create_time() - started) < 0.5
    except psutil.NoSuchProcess:
        return False


def _stop(pid: int, started: float | None, sig: int, timeout: float) -> None:

    if _ours(pid, started):
        stop_pid(pid, sig=sig, timeout=timeout)


def _ready_line(proc: subprocess.Popen[str], name: str, log: Path, deadline: float) -> dict[str, Any]:
    assert proc.stdout is not None
    readable, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
    line = proc.stdout.readline() if readable else ""
    try:
        info = json.loads(line)
    except ValueError:
        info = {}
    if "url" not in info:
        reason = info.get("error") or ("timed out" if not readable else f"exited with {proc.poll()}")
        tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
        raise SandboxError(f"sandbox {name} part did not start: {reason}. {log}: {tail.strip()[-400:]}")
    return info


# --- API -----------------------------------------------------------------------------------------


def _read_state(state_dir: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads((state_dir / _STATE).read_text()))
    except (OSError, ValueError):
        return None


def status(*, state_dir: Path | None = None) -> SandboxInfo | None:
    """The running sandbox, or None when none runs here (or a recorded process has died)."""
    state_dir = Path(state_dir or default_state_dir())
    state = _read_state(state_dir)
    if state is None:
        return None
    starts = state.get("starts", {})
    # the servers must be up; client processes may have ended on purpose (a runbook terminated all
    # of an application's sessions, and its client process exits when it has none left)
    servers = {name: pid for name, pid in state["info"]["pids"].items() if not name.startswith(CLIENT_PREFIX)}
    if not all(_ours(pid, starts.get(name)) for name, pid in servers.items()):
        return None
    return SandboxInfo.from_json(state["info"])


def down(*, state_dir: Path | None = None) -> None:
    """End every recorded process (clients, servers), wait for them, and remove the state directory."""
    state_dir = Path(state_dir or default_state_dir())
    state = _read_state(state_dir)
    if state is not None:
        pids: dict[str, int] = state["info"]["pids"]
        starts = state.get("starts", {})
        order = sorted(pids, key=lambda n: (n == "postgres", n))  # clients first, the database last
        for name in order:
            sig = signal.SIGINT if name == "postgres" else signal.SIGTERM  # postgres: fast shutdown
            _stop(pids[name], starts.get(name), sig, timeout=8 if name == "postgres" else 5)
        _stop_pod_processes(state_dir)
    if state is not None or (state_dir / "pg").exists():
        shutil.rmtree(state_dir, ignore_errors=True)


def _stop_pod_processes(state_dir: Path) -> None:
    """End Job pods' processes the Kubernetes part left running (it ends them itself when it stops
    cleanly; this covers a Kubernetes part that was killed). They are listed in k8s/pod-processes.json."""
    try:
        listed = json.loads((state_dir / "k8s" / "pod-processes.json").read_text())
    except (OSError, ValueError):
        listed = {}
    for entry in listed.values() if isinstance(listed, dict) else []:
        _stop(int(entry["pid"]), entry.get("started"), signal.SIGTERM, timeout=3)
    if (state_dir / "k8s" / "pods").exists():  # what they started in sessions of their own (kernels)
        sweep(f"{(state_dir / 'k8s').resolve()}/pods/")


def up(
    scenario: str = "all",
    *,
    state_dir: Path | None = None,
    k8s_pods: int = 0,
    timeout: float = 30,
    parts: tuple[str, ...] = PARTS,
) -> SandboxInfo:
    """Start the sandbox with `scenario` seeded (`all`, a name, or names joined by commas).

    `parts` limits which parts start (default: all three); the others are left out of `env`.
    Running `up` again on a running sandbox with the same scenario returns it; a different one is
    an error. Raises SandboxError with the failing part's log tail, after tearing everything down.
    """
    state_dir = Path(state_dir or default_state_dir())
    names = resolve(scenario)
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise SandboxError(f"unknown sandbox part(s) {sorted(unknown)}; choose from {PARTS}")
    running = status(state_dir=state_dir)
    if running is not None:
        running_parts = tuple((_read_state(state_dir) or {}).get("parts", PARTS))
        if running.scenario == scenario and set(running_parts) == set(parts):
            return running
        raise SandboxError(
            f"a sandbox with scenario {running.scenario!r} (parts {', '.join(running_parts)}) already runs "
            f"in {state_dir}; run `runbook sandbox down` first"
        )
    down(state_dir=state_dir)  # leftovers of a sandbox that died: clear them
    if "k8s" in parts and "k8s" not in available_parts():
        raise SandboxError(
            "the Kubernetes part (python -m runbook_sandbox.k8s) is not available in this "
            "installation; start without it with parts=('aws', 'postgres')"
        )
    state_dir.mkdir(parents=True, exist_ok=True)
    anchor = dt.datetime.now(dt.UTC).replace(microsecond=0)
    deadline = time.monotonic() + timeout
    procs: dict[str, subprocess.Popen[str]] = {}
    pids: dict[str, int] = {}
    aws_url_file: Path | None = None
    try:
        if "aws" in parts:
            args = [
                sys.executable,
                "-m",
                "runbook_sandbox.aws",
                "--state-dir",
                str(state_dir / "aws"),
                "--anchor",
                anchor.isoformat(),
            ]
            for name in names:
                args += ["--scenario", name]
            (state_dir / "aws" / "url").unlink(missing_ok=True)  # never a URL left by an earlier sandbox
            if "k8s" in parts and "node" in names:  # its nodes are EC2 instances: k8s must reach AWS
                aws_url_file = state_dir / "aws" / "url"  # written by the AWS part once it listens
            procs["aws"] = spawn(args, state_dir / "aws" / "stderr.log")
        if "k8s" in parts:
            k8s_names = [
                n for n in names if n in ("crashloop", "latency", "node") and (n != "node" or aws_url_file)
            ]
            args = [
                sys.executable,
                "-m",
                "runbook_sandbox.k8s",
                "--state-dir",
                str(state_dir / "k8s"),
                "--port",
                "0",
                "--anchor",
                anchor.isoformat(),
            ]
            for name in k8s_names or ["none"]:
                args += ["--scenario", name]
            if k8s_pods:
                args += ["--pods", str(k8s_pods)]
            if aws_url_file:
                args += ["--aws-url-file", str(aws_url_file)]
            if "aws" in parts:  # Job pods get the AWS part's endpoint (the sandbox's stand-in for IRSA)
                args += ["--pod-aws-url-file", str(state_dir / "aws" / "url")]
            procs["k8s"] = spawn(args, state_dir / "k8s" / "stderr.log")
        # the incident's Slack / Statuspage / PagerDuty stand-ins (runbook_sandbox.comms): always, ~0.1 s
        procs["comms"] = spawn([sys.executable, "-m", "runbook_sandbox.comms", "--port", "0"],
                               state_dir / "comms" / "stderr.log")
        pids.update({name: proc.pid for name, proc in procs.items()})
        pg = None
        if "postgres" in parts:
            from runbook_sandbox.postgres import scenario as pg_scenario

            pg_pids: dict[str, int] = {}
            try:
                pg = pg_scenario.start(
                    state_dir=state_dir / "pg",
                    scenarios=set(names),
                    timeout=max(1.0, deadline - time.monotonic()),
                    pids=pg_pids,
                )
            finally:
                pids.update(pg_pids)
        ready = {
            name: _ready_line(proc, name, state_dir / name / "stderr.log", deadline)
            for name, proc in procs.items()
        }
    except BaseException as exc:
        starts = {name: _start_time(pid) for name, pid in pids.items()}
        _write_state(state_dir, {"info": {"pids": pids}, "starts": starts})
        down(state_dir=state_dir)
        if isinstance(exc, SandboxError | KeyboardInterrupt):
            raise
        raise SandboxError(f"sandbox did not start: {type(exc).__name__}: {exc}") from exc
    env = _env(ready, pg, state_dir)
    if "latency" in names:  # infrastructure commits for `what_changed` (git log --since)
        from runbook_sandbox import infra_repo

        repo = infra_repo.create(state_dir / "infra-repo", anchor)
        if repo is not None:
            env["RUNBOOK_INFRA_REPOS"] = str(repo)
    info = SandboxInfo(
        state_dir=state_dir,
        scenario=scenario,
        anchor=anchor,
        aws_endpoint=ready.get("aws", {}).get("url", ""),
        kubeconfig=Path(ready.get("k8s", {}).get("kubeconfig", "")),
        k8s_url=ready.get("k8s", {}).get("url", ""),
        pg_dsn=pg.dsn if pg else "",
        pg_dsn_unprivileged=pg.dsn_unprivileged if pg else "",
        pids=dict(pids),
        env=env,
    )
    for proc in procs.values():  # the servers outlive this process; their stdout is no longer read
        if proc.stdout:
            proc.stdout.close()
    _write_state(
        state_dir,
        {
            "info": info.to_json(),
            "starts": {n: _start_time(p) for n, p in pids.items()},
            "parts": list(parts),
            "faked_clock": bool(pg and pg.faked_clock),
        },
    )
    return info


def _env(ready: dict[str, dict[str, Any]], pg: Any, state_dir: Path) -> dict[str, str]:
    env = {
        "RUNBOOK_SANDBOX_DIR": str(state_dir),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    if "aws" in ready:
        env.update(
            AWS_ENDPOINT_URL=ready["aws"]["url"],
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_REGION="us-east-1",
            AWS_DEFAULT_REGION="us-east-1",
        )
    if "k8s" in ready:
        env.update(KUBECONFIG=str(ready["k8s"]["kubeconfig"]), RUNBOOK_KUBE_CONTEXT="runbook-sandbox")
    if "comms" in ready:  # sandbox tokens: fake, the right shapes (a 32-character routing key)
        url = ready["comms"]["url"]
        env.update(RUNBOOK_SLACK_API_URL=f"{url}/api/", RUNBOOK_STATUSPAGE_API_URL=url,
                   RUNBOOK_PAGERDUTY_API_URL=url, SLACK_BOT_TOKEN="xoxb-runbook-sandbox",
                   STATUSPAGE_API_KEY="sandbox-statuspage-key", PAGERDUTY_ROUTING_KEY="sandbox" + "0" * 25,
                   RUNBOOK_SLACK_CHANNEL="C0SANDBOX", RUNBOOK_STATUSPAGE_PAGE="sandbox-page")
    if pg is not None:
        env.update(
            RUNBOOK_DSN=pg.dsn,
            PGHOST="127.0.0.1",
            PGPORT=str(pg.server.port),
            PGUSER=pg.superuser,
            PGDATABASE=timeline.DB_NAME,
        )
    return env


def _write_state(state_dir: Path, state: dict[str, Any]) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = state_dir / (_STATE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    tmp.replace(state_dir / _STATE)
