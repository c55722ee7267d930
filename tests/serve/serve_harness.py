"""The serve tests' harness: a real `runbook serve` process on 127.0.0.1, real senders (Alertmanager,
Prometheus), small test runbooks; the fixtures are registered by conftest.py. A module of its own
name (not conftest) so that the tests import helpers from it beside other folders' conftests.

Every process a fixture starts is ended by its PID in teardown.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from runbook_kit.serve.queue import Queue

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-token-5f2c"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(
    method: str,
    url: str,
    body: bytes | dict[str, Any] | list[Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if isinstance(body, dict | list) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_for(predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def test_runbook(folder: Path) -> None:
    """`probe`: sleeps `seconds`, records a finding naming its `target`; declares dry_run."""
    cells = [
        {"cell_type": "markdown", "id": "m0", "metadata": {}, "source": ["# Probe\n", "A test runbook."]},
        {
            "cell_type": "code",
            "id": "c0",
            "metadata": {"tags": ["parameters"]},
            "execution_count": None,
            "outputs": [],
            "source": [
                'target = ""  # what to probe\n',
                "seconds = 0.0  # how long\n",
                "dry_run = True  # change nothing\n",
            ],
        },
        {
            "cell_type": "code",
            "id": "c1",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": ["import time\n", "time.sleep(seconds)\n"],
        },
        {
            "cell_type": "code",
            "id": "c2",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": [
                "import os\n",
                "import runbook_kit as rk\n",
                'rk.finding(f"probed {target} (dry_run={dry_run})", severity="info", target=target, '
                'dry_run=dry_run, env=sorted(k for k in os.environ if k.startswith("RK_TEST_")))\n',
            ],
        },
    ]
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "cells": cells,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "probe.ipynb").write_text(json.dumps(nb))


PROBE_ROUTE = {
    "name": "probe",
    "match": {"alertname": "Probe"},
    "runbook": "probe",
    "parameters": {"target": "{labels.target}", "seconds": "{annotations.seconds}"},
    "incident": "INC-{labels.target}",
}


@dataclass
class Server:
    dir: Path
    port: int
    config: dict[str, Any]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def queue_path(self) -> str:
        return str(self.dir / "queue.db")

    @property
    def store(self) -> Path:
        return self.dir / "incidents"

    def start(self) -> Server:
        log = self.dir / f"serve-{len(self.logs)}.log"
        self.logs.append(log)
        with open(log, "wb") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "runbook_kit.cli", "serve", "-c", str(self.dir / "serve.yaml")],
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.dir,
            )
        wait_for(self._healthy, timeout=30, what=f"runbook serve on {self.url} (log: {log})")
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"runbook serve exited {self.proc.returncode}: {self.logs[-1].read_text()}")
        try:
            return http("GET", f"{self.url}/healthz", timeout=1)[0] == 200
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def post(
        self,
        source: str,
        body: bytes | dict[str, Any],
        headers: dict[str, str] | None = None,
        *,
        token: str | None = TOKEN,
    ) -> tuple[int, dict[str, Any]]:
        h = {"Content-Type": "application/json", **(headers or {})}
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        code, raw = http("POST", f"{self.url}/webhook/{source}", body, h)
        return code, json.loads(raw) if raw.startswith(b"{") else {"raw": raw.decode(errors="replace")}

    def queue(self) -> Queue:
        return Queue(self.queue_path, exclusive=False)

    def runs(self) -> list[dict[str, Any]]:
        q = self.queue()
        try:
            return q.query("SELECT * FROM runs ORDER BY id")
        finally:
            q.close()

    def events(self, **kw: Any) -> list[dict[str, Any]]:
        q = self.queue()
        try:
            return q.events(**kw)
        finally:
            q.close()

    def log_lines(self, msg: str) -> list[dict[str, Any]]:
        """The receiver's JSON log lines (all its logs) whose message is `msg`."""
        out = []
        for log in self.logs:
            for line in log.read_text(errors="replace").splitlines():
                if line.startswith("{"):
                    data = json.loads(line)
                    if data.get("msg") == msg:
                        out.append(data)
        return out

    def finished_runs(self, n: int, timeout: float = 120) -> list[dict[str, Any]]:
        def done() -> list[dict[str, Any]] | None:
            rows = [r for r in self.runs() if r["state"] not in ("queued", "leased", "running")]
            return rows if len(rows) >= n else None

        try:
            return wait_for(done, timeout=timeout, what=f"{n} finished run(s)")
        except AssertionError as exc:  # say what the receiver said
            raise AssertionError(
                f"{exc}; runs: {self.runs()}; log: {self.logs[-1].read_text()[-3000:]}"
            ) from None


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """serve(routes=[...], sources={...}, env={...}, **config) -> a started Server (stopped after)."""
    started: list[Server] = []

    def make(
        *,
        routes: list[dict[str, Any]] | None = None,
        sources: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        start: bool = True,
        **extra: Any,
    ) -> Server:
        folder = tmp_path / f"serve{len(started)}"
        folder.mkdir()
        (folder / "token").write_text(TOKEN + "\n")
        test_runbook(folder / "runbooks")
        port = free_port()
        config = {
            "listen": f"127.0.0.1:{port}",
            "queue": str(folder / "queue.db"),
            "store": str(folder / "incidents"),
            "sources": sources
            if sources is not None
            else {"alertmanager": {"bearer_token": {"file": str(folder / "token")}}},
            "routes": routes if routes is not None else [PROBE_ROUTE],
            # cold runs unless a test asks for warm kernels (tests/serve/test_warm.py): a warm pool
            # costs each receiver a few CPU seconds at start, which tests of intake do not need
            "warm_kernels": 0,
            **extra,
        }
        (folder / "serve.yaml").write_text(yaml.safe_dump(config))
        child_env = {
            **os.environ,
            "RUNBOOK_PATH": str(folder / "runbooks"),
            "PYTHONPATH": os.pathsep.join(
                [str(ROOT), str(ROOT / "sandbox"), os.environ.get("PYTHONPATH", "")]
            ),
            **(env or {}),
        }
        server = Server(dir=folder, port=port, config=config, env=child_env)
        started.append(server)
        return server.start() if start else server

    try:
        yield make
    finally:
        for server in started:
            server.stop()


def am_alert(
    labels: dict[str, str],
    *,
    starts: str = "2026-11-30T10:00:00Z",
    status: str = "firing",
    fingerprint: str | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": labels,
        "annotations": annotations or {},
        "startsAt": starts,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph",
        "fingerprint": fingerprint or "fp-" + "-".join(f"{k}{v}" for k, v in sorted(labels.items())),
    }


def am_payload(*alerts: dict[str, Any], truncated: int = 0) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="x"}',
        "truncatedAlerts": truncated,
        "status": alerts[0]["status"] if alerts else "firing",
        "receiver": "runbook",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example",
        "alerts": list(alerts),
    }


@dataclass
class Alertmanager:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        code, raw = http("POST", f"{self.url}/api/v2/alerts", alerts, {"Content-Type": "application/json"})
        assert code == 200, (code, raw)


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Callable[..., Alertmanager]]:
    """alertmanager(receiver_url, token_file) -> a real Alertmanager (Debian package) posting to it."""
    if not os.path.exists(ALERTMANAGER):
        pytest.fail(
            f"{ALERTMANAGER} is missing: `python3 scripts/dev.py test` installs the Debian package "
            "prometheus-alertmanager (or: apt-get install -y prometheus-alertmanager)",
            pytrace=False,
        )
    started: list[Alertmanager] = []

    def start(webhook_url: str, token_file: Path, *, resolve_timeout: str = "5m") -> Alertmanager:
        folder = tmp_path / f"am{len(started)}"
        (folder / "data").mkdir(parents=True)
        config = {
            "global": {"resolve_timeout": resolve_timeout},
            "route": {
                "receiver": "runbook",
                "group_by": ["alertname", "namespace"],
                "group_wait": "0s",
                "group_interval": "1s",
                "repeat_interval": "1h",
            },
            "receivers": [
                {
                    "name": "runbook",
                    "webhook_configs": [
                        {
                            "url": webhook_url,
                            "send_resolved": True,
                            "http_config": {
                                "authorization": {"type": "Bearer", "credentials_file": str(token_file)}
                            },
                        }
                    ],
                }
            ],
        }
        (folder / "alertmanager.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        log = folder / "alertmanager.log"
        with open(log, "wb") as fh:
            proc = subprocess.Popen(
                [
                    ALERTMANAGER,
                    f"--config.file={folder / 'alertmanager.yml'}",
                    f"--storage.path={folder / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--cluster.listen-address=",
                    "--log.level=info",
                ],
                stdout=fh,
                stderr=subprocess.STDOUT,
            )
        am = Alertmanager(port=port, proc=proc, log=log)
        started.append(am)

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"alertmanager exited {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                return http("GET", f"{am.url}/-/ready", timeout=1)[0] == 200
            except OSError:
                return False

        wait_for(ready, timeout=30, what=f"alertmanager on {am.url}")
        return am

    try:
        yield start
    finally:
        for am in started:
            if am.proc.poll() is None:
                am.proc.terminate()
                try:
                    am.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    am.proc.kill()
                    am.proc.wait()


PROMETHEUS = "/usr/bin/prometheus"


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """prometheus(scrape_url, rules, alertmanager_url) -> the URL of a real Prometheus (Debian package)."""
    if not os.path.exists(PROMETHEUS):
        pytest.fail(
            f"{PROMETHEUS} is missing: `python3 scripts/dev.py test` installs the Debian package "
            "prometheus (or: apt-get install -y prometheus)",
            pytrace=False,
        )
    procs: list[subprocess.Popen[bytes]] = []

    def start(scrape_url: str, rules: dict[str, Any], alertmanager_url: str) -> str:
        folder = tmp_path / f"prometheus{len(procs)}"
        (folder / "data").mkdir(parents=True)
        target = urllib.parse.urlsplit(scrape_url)
        (folder / "rules.yaml").write_text(yaml.safe_dump(rules))
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(folder / "rules.yaml")],
            "alerting": {
                "alertmanagers": [
                    {"static_configs": [{"targets": [urllib.parse.urlsplit(alertmanager_url).netloc]}]}
                ]
            },
            "scrape_configs": [
                {
                    "job_name": "kube-state-metrics",
                    "metrics_path": target.path,
                    "static_configs": [{"targets": [target.netloc]}],
                }
            ],
        }
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        log = folder / "prometheus.log"
        with open(log, "wb") as fh:
            proc = subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={folder / 'prometheus.yml'}",
                    f"--storage.tsdb.path={folder / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--rules.alert.resend-delay=1s",
                ],
                stdout=fh,
                stderr=subprocess.STDOUT,
            )
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"prometheus exited {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                return http("GET", f"{url}/-/ready", timeout=1)[0] == 200
            except OSError:
                return False

        wait_for(ready, timeout=60, what=f"prometheus on {url}")
        return url

    try:
        yield start
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
