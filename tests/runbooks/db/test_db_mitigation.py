"""db_mitigation against the sandbox: the read-only default, and cancelling the long queries."""

from __future__ import annotations

import pytest
from pg_truth import sessions

from runbook_kit.runner import run_notebook
from runbook_sandbox.scenarios import runbook_parameters

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]


def run(env, tmp_path, **parameters):
    return run_notebook("db_mitigation", parameters=runbook_parameters("db_mitigation", **parameters),
                        incident="INC-6",
                        store=str(tmp_path / "store"), env=env, timeout=600)


def test_the_default_run_reads_and_changes_nothing(db_sandbox, tmp_path):
    before = sessions(db_sandbox.pg_dsn)
    result = run(db_sandbox.env, tmp_path)
    assert result.status == "succeeded", result.failure
    assert [(e.title, e.outcome) for e in result.entries if e.kind == "action"] == [
        ("status only: orders-db", "skipped")]
    assert set(before) <= set(sessions(db_sandbox.pg_dsn))


def test_cancel_long_queries_cancels_exactly_the_long_ones(fresh_db, tmp_path):
    long = {pid for pid, s in sessions(fresh_db.pg_dsn).items()
            if s["state"] == "active" and s["application_name"] == "reporting"}
    assert len(long) == 3
    dry = run(fresh_db.env, tmp_path, action="cancel_long_queries")
    planned = [e for e in dry.entries if e.kind == "action"]
    assert [e.outcome for e in planned] == ["dry-run"]
    assert {int(t) for t in planned[0].details["targets"]} == long
    assert long <= {p for p, s in sessions(fresh_db.pg_dsn).items() if s["state"] == "active"}

    result = run(fresh_db.env, tmp_path, action="cancel_long_queries", dry_run=False)
    assert result.status == "succeeded", result.failure
    applied = [e for e in result.entries if e.kind == "action"]
    assert [e.outcome for e in applied] == ["applied"] and "pg_cancel_backend" in applied[0].command
    after = sessions(fresh_db.pg_dsn)
    assert not {p for p in long if p in after and after[p]["state"] == "active"
                and after[p]["state_min"] >= 5}, "no long query still runs"
