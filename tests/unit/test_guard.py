"""The guard against a real HTTP server that logs every request it receives."""

from __future__ import annotations

import dataclasses
import http.server
import json
import threading
import urllib.request
from typing import ClassVar

import pytest

from runbook_kit import UnsafeActionRefused, apply, guard, record
from runbook_kit.errors import BackendError


class _Logged(http.server.BaseHTTPRequestHandler):
    log: ClassVar[list[tuple[str, str]]] = []
    state: ClassVar[dict[str, int]] = {"replicas": 3}

    def _reply(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.log.append(("GET", self.path))
        self._reply(200, self.state)

    def do_PATCH(self):
        self.log.append(("PATCH", self.path))
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if "dryRun=All" not in self.path:
            self.state.update(body)
        self._reply(200, {**self.state, **body})

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Logged.log, _Logged.state = [], {"replicas": 3}
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Logged)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", _Logged
    srv.shutdown()
    srv.server_close()


def _call(method: str, url: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body else None)
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def scale_plan(url: str, replicas: int, *, server_dry_run: bool = False) -> guard.Plan:
    def execute(dry_run: bool) -> dict:
        return _call("PATCH", f"{url}/scale" + ("?dryRun=All" if dry_run else ""), {"replicas": replicas})

    return guard.Plan(
        action="scale",
        target="deployment/api",
        backend="k8s",
        command=f"kubectl scale deployment/api --replicas={replicas}",
        execute=execute,
        observe=lambda: _call("GET", f"{url}/scale"),
        changes={"replicas": replicas},
        server_dry_run=server_dry_run,
    )


def test_dry_run_is_the_default_and_sends_no_write(server):
    url, handler = server
    result = apply(scale_plan(url, 5))
    assert result.outcome == "dry-run" and handler.log == [] and handler.state["replicas"] == 3
    last = record.entries_this_session()[-1]
    assert last.outcome == "dry-run" and last.command == "kubectl scale deployment/api --replicas=5"


def test_server_side_dry_run_sends_only_dry_run_writes(server):
    url, handler = server
    apply(scale_plan(url, 5, server_dry_run=True), dry_run=True)
    assert handler.log == [("PATCH", "/scale?dryRun=All")] and handler.state["replicas"] == 3


def test_apply_records_before_and_after(server):
    url, handler = server
    result = apply(scale_plan(url, 5), dry_run=False)
    assert result.applied and result.before == {"replicas": 3} and result.after == {"replicas": 5}
    assert ("PATCH", "/scale") in handler.log
    last = record.entries_this_session()[-1]
    assert last.outcome == "applied" and last.details["before"] == {"replicas": 3}


def test_blast_radius_is_refused_even_when_not_dry_run(server):
    url, handler = server
    plan = guard.Plan(
        action="evict",
        target="node/n1",
        backend="k8s",
        command="kubectl drain n1",
        execute=lambda dry: _call("PATCH", f"{url}/x", {"evicted": True}),
        targets=[f"pod-{i}" for i in range(11)],
        max_targets=10,
    )
    with pytest.raises(UnsafeActionRefused, match="11 objects, over its blast radius of 10"):
        apply(plan, dry_run=False)
    assert handler.log == [] and record.entries_this_session()[-1].outcome == "refused"


def test_read_only_machine_refuses_real_writes(server, monkeypatch):
    url, handler = server
    monkeypatch.setenv("RUNBOOK_READ_ONLY", "1")
    with pytest.raises(UnsafeActionRefused, match="READ_ONLY"):
        apply(scale_plan(url, 5), dry_run=False)
    assert handler.log == []


def test_failed_write_is_recorded_and_raised_as_a_kit_error():
    def execute(dry_run: bool) -> None:
        raise ConnectionRefusedError("connection refused")

    plan = guard.Plan(
        action="scale", target="deployment/api", backend="k8s", command="kubectl scale", execute=execute
    )
    with pytest.raises(BackendError, match="k8s scale: unreachable"):
        apply(plan, dry_run=False)
    assert record.entries_this_session()[-1].outcome == "failed"


def test_a_plan_with_nothing_to_do_is_skipped_and_sends_nothing(server):
    url, handler = server
    plan = dataclasses.replace(scale_plan(url, 3, server_dry_run=True), targets=["deployment/api"],
                               nothing_to_do=True)
    for dry_run in (True, False):
        assert apply(plan, dry_run=dry_run).outcome == "skipped"
    assert handler.log == []
    last = record.entries_this_session()[-1]
    assert last.outcome == "skipped" and last.details["nothing_to_do"] is True
