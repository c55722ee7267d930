"""The guard against a real HTTP server that logs every request it receives."""

from __future__ import annotations

import dataclasses
import http.server
import json
import os
import subprocess
import sys
import threading
import urllib.request
from typing import ClassVar

import pytest

from runbook_kit import UnsafeActionRefused, apply, guard, machine, record
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


def test_execute_cannot_be_called_around_apply(server):
    url, handler = server
    plan = scale_plan(url, 5)
    with pytest.raises(UnsafeActionRefused, match=r"rk\.apply\(plan, dry_run=dry_run\)"):
        plan.execute(False)
    with pytest.raises(UnsafeActionRefused, match=r"only through rk\.apply"):
        plan.execute._unlock(object())
    copied = dataclasses.replace(plan, reason="copied")  # a copy stays sealed, and still applies
    with pytest.raises(UnsafeActionRefused):
        copied.execute(False)
    assert handler.log == []
    assert apply(copied, dry_run=False).applied and ("PATCH", "/scale") in handler.log


@pytest.mark.parametrize(("raw", "expected"), [
    ("1", True), (" 1", True), ("on", True), ("ON ", True), ("yes", True), ("True", True), ("y", True),
    ("0", False), ("off", False), ("no", False), ("false", False), ("", False), (None, False),
    ("maybe", True), ("2", True),
])
def test_read_only_is_parsed_like_every_boolean_and_unknown_values_fail_closed(raw, expected):
    on, why = machine._parse_read_only(raw)
    assert on is expected
    if raw in ("maybe", "2"):
        assert f"RUNBOOK_READ_ONLY={raw!r} is not a boolean" in why and "treated as read-only" in why


_READ_ONLY_SCRIPT = """
import os, sys, json, urllib.request
os.environ["RUNBOOK_READ_ONLY"] = "0"          # a cell trying to lift it
import runbook_kit as rk
from runbook_kit import guard

def execute(dry_run):
    req = urllib.request.Request(sys.argv[1] + "/scale", method="PATCH", data=b'{"replicas": 9}')
    return urllib.request.urlopen(req, timeout=5).read()

plan = guard.Plan(action="scale", target="deployment/api", backend="k8s", command="kubectl scale",
                  execute=execute)
try:
    rk.apply(plan, dry_run=False)
except rk.UnsafeActionRefused as exc:
    print("REFUSED", exc)
print("ENTRY", rk.record.entries_this_session()[-1].outcome if hasattr(rk, "record") else "")
"""


@pytest.mark.parametrize("value", ["1", " on", "YES", "sure"])
def test_read_only_is_read_from_the_starting_environment_and_a_cell_cannot_lift_it(server, value, tmp_path):
    url, handler = server
    script = tmp_path / "cell.py"
    script.write_text(_READ_ONLY_SCRIPT)
    env = {**os.environ, "RUNBOOK_READ_ONLY": value}
    out = subprocess.run([sys.executable, str(script), url], env=env, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert "REFUSED RUNBOOK_READ_ONLY=" in out and handler.log == []
    assert "[action:refused] scale: deployment/api" in out


def test_bulk_plans_get_a_default_blast_radius(server):
    url, handler = server
    many = guard.Plan(action="evict", target="node/n1", backend="k8s", command="kubectl drain n1",
                      execute=lambda dry: _call("PATCH", f"{url}/x", {"evicted": True}),
                      targets=[f"pod-{i}" for i in range(guard.DEFAULT_MAX_TARGETS + 1)])
    assert many.blast_radius == guard.DEFAULT_MAX_TARGETS
    with pytest.raises(UnsafeActionRefused, match="over its blast radius of 10"):
        apply(many, dry_run=True)
    assert dataclasses.replace(many, targets=["pod-0"]).blast_radius is None  # one object: not bulk
    assert dataclasses.replace(many, max_targets=50).blast_radius == 50
    assert handler.log == []


def test_exclusions_are_shown_recorded_and_returned(server):
    url, _ = server
    plan = dataclasses.replace(
        scale_plan(url, 5), targets=["1", "2"],
        excluded=[("pid 7", "a superuser session"), ("pid 8", "a superuser session"),
                  ("kube-system/fluentd-x", "DaemonSet-managed")],
        excluded_command="SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid IN (7, 8);",
    )
    assert "a superuser session" in plan._repr_html_() and "pg_terminate_backend" in plan._repr_html_()
    result = apply(plan)
    assert result.excluded == (("pid 7", "a superuser session"), ("pid 8", "a superuser session"),
                               ("kube-system/fluentd-x", "DaemonSet-managed"))
    entry = record.entries_this_session()[-1]
    assert entry.details["excluded"][0] == {"target": "pid 7", "reason": "a superuser session"}
    assert entry.details["excluded_summary"] == "3 left out: 2 a superuser session, 1 DaemonSet-managed"
    assert "pg_terminate_backend" in entry.details["excluded_command"]
    text = record.summary_markdown([entry], status="succeeded", runbook="r", incident="i")
    assert "3 left out: 2 a superuser session" in text


def test_a_plan_missing_its_evidence_is_refused_with_the_reason(server):
    url, handler = server
    plan = dataclasses.replace(scale_plan(url, 5, server_dry_run=True),
                               missing_evidence=["CloudTrail events: aws lookup events: permission denied"])
    result = apply(plan)  # the dry run says it would be refused, without failing the run
    assert result.outcome == "refused" and "CloudTrail events" in (result.error or "")
    with pytest.raises(UnsafeActionRefused, match="depends on evidence the runbook could not read"):
        apply(plan, dry_run=False)
    assert handler.log == []
    assert record.entries_this_session()[-1].details["missing_evidence"] == [
        "CloudTrail events: aws lookup events: permission denied"]


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
