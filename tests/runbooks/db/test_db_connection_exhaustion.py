"""db_connection_exhaustion against the sandbox's `connections` scenario, asserted on the record
and on the server's own view of its sessions."""

from __future__ import annotations

import socket

import pytest
from pg_truth import leaked, sessions

from runbook_kit.runner import run_notebook
from runbook_sandbox import timeline as tl
from runbook_sandbox.scenarios import runbook_parameters

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]


def run(env, tmp_path, **parameters):
    values = runbook_parameters("db_connection_exhaustion", **parameters)
    return run_notebook("db_connection_exhaustion", parameters=values, incident="INC-5",
                        store=str(tmp_path / "store"), env=env, timeout=600)


def findings(result, severity_at_least: str = "info"):
    order = ["info", "low", "medium", "high", "critical"]
    return [e for e in result.entries if e.kind == "finding"
            and order.index(e.severity) >= order.index(severity_at_least)]


def test_the_sandbox_leak_looks_older_than_the_threshold(db_sandbox):
    """Precondition of every assertion below: the leaked sessions are really 20 minutes old."""
    old = leaked(db_sandbox.pg_dsn, idle_minutes=10)
    assert len(old) >= 5
    assert min(s["state_min"] for s in old.values()) >= tl.LEAK_AGE.total_seconds() / 60 - 1


def test_dry_run_names_the_leak_and_terminates_nothing(db_sandbox, tmp_path):
    before = leaked(db_sandbox.pg_dsn)
    result = run(db_sandbox.env, tmp_path)
    assert result.status == "succeeded", result.failure

    leak = [e for e in findings(result) if e.details.get("cause") == "leak"]
    assert len(leak) == 1
    evidence = leak[0].details
    assert evidence["application"] == tl.LEAKING_APPLICATION
    assert evidence["connections"] == len(before)
    assert evidence["oldest_idle_min"] >= 10
    assert f"{tl.LEAKING_APPLICATION} holds {len(before)} connections" in leak[0].title

    terminate = [e for e in result.entries if e.kind == "action" and e.title.startswith("terminate idle")]
    assert [e.outcome for e in terminate] == ["dry-run"]
    assert set(before) <= {int(t) for t in terminate[0].details["targets"]}
    assert "pg_terminate_backend" in terminate[0].command

    still = sessions(db_sandbox.pg_dsn)
    assert all(pid in still and still[pid]["backend_start"] == s["backend_start"]
               for pid, s in before.items())

    verify = [e for e in findings(result) if e.title.startswith("Headroom")]
    assert len(verify) == 1 and verify[0].details["used"] >= len(before)
    max_conn = [e for e in result.entries if e.kind == "action" and "max_connections" in e.title]
    assert [e.outcome for e in max_conn] == ["skipped"], "a leak is not fixed by raising the limit"


def test_apply_ends_exactly_the_leaking_idle_sessions(fresh_db, tmp_path):
    target = leaked(fresh_db.pg_dsn)
    others = {pid: s for pid, s in sessions(fresh_db.pg_dsn).items() if pid not in target}
    assert target and others

    result = run(fresh_db.env, tmp_path, application=tl.LEAKING_APPLICATION, dry_run=False)
    assert result.status == "succeeded", result.failure

    after = sessions(fresh_db.pg_dsn)
    assert not set(target) & set(after), "every leaked session is gone"
    survivors = {pid for pid, s in others.items()
                 if pid in after and after[pid]["backend_start"] == s["backend_start"]}
    assert survivors == set(others), "no other session was touched"

    applied = [e for e in result.entries if e.kind == "action" and e.outcome == "applied"]
    assert len(applied) == 1 and applied[0].title.startswith("terminate idle sessions")
    assert {int(t) for t in applied[0].details["targets"]} == set(target)
    assert applied[0].details["after"]["targets_present"] == []
    assert [e.outcome for e in result.entries if e.kind == "action" and "reboot" in e.title] == ["skipped"]
    headroom = next(e for e in findings(result) if e.title.startswith("Headroom"))
    assert headroom.details["used"] <= len(others) + 2  # plus the runbook's own session(s)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_database_gives_one_finding_and_a_failed_run(db_sandbox, tmp_path):
    env = dict(db_sandbox.env, RUNBOOK_DSN=f"postgresql://sandbox@127.0.0.1:{_closed_port()}/orders",
               RUNBOOK_CONNECT_TIMEOUT="2")
    result = run(env, tmp_path)
    assert result.status == "failed"
    assert "unreachable" in (result.failure or "")
    found = findings(result)
    assert len(found) == 1 and found[0].severity == "critical"
    assert found[0].title == "Cannot connect to the database: unreachable"
    assert not [e for e in result.entries if e.kind == "action"]


def test_a_role_that_cannot_see_other_sessions_gives_one_finding_and_a_failed_run(db_sandbox, tmp_path):
    env = dict(db_sandbox.env, RUNBOOK_DSN=db_sandbox.pg_dsn_unprivileged)
    result = run(env, tmp_path)
    assert result.status == "failed"
    assert "permission denied" in (result.failure or "") and "pg_read_all_stats" in (result.failure or "")
    found = findings(result)
    assert len(found) == 1 and found[0].severity == "high"
    assert found[0].title.startswith("Partial view:") and found[0].details["hidden_sessions"] >= 5
    assert not [e for e in result.entries if e.kind == "action"], "nothing planned from half a picture"
