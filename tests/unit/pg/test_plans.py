"""Plans built from a plain-data snapshot: exact PIDs, SQL shown, blast radius, nothing sent in dry run."""

from __future__ import annotations

import socket

import pytest
from pg_rows import many, session, snapshot

import runbook_kit as rk
from runbook_kit.pg import plan_cancel_long_queries, plan_terminate_idle
from runbook_kit.pg.capacity import Recommendation


@pytest.fixture
def closed_dsn() -> str:
    """A DSN whose port nobody listens on: any real connection attempt would fail loudly."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"host=127.0.0.1 port={port} dbname=orders user=nobody connect_timeout=1"


def leak_snapshot():
    leaked = many(12, app="billing-worker", state="idle in transaction", state_min=20)
    others = many(5, app="web", state="idle", state_min=30) + many(5, app="billing-worker", state="active")
    return snapshot(leaked + others), {r["pid"] for r in leaked}


def test_the_plan_lists_exactly_the_pids_and_the_sql(closed_dsn):
    snap, leaked = leak_snapshot()
    plan = plan_terminate_idle(dsn=closed_dsn, snapshot=snap, idle_minutes=10, application="billing-worker",
                               max_targets=20)
    assert {int(t) for t in plan.targets} == leaked
    assert plan.command.startswith("SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
                                   "WHERE pid IN (")
    assert all(str(pid) in plan.command for pid in leaked)
    assert "application_name = 'billing-worker'" in plan.command
    assert "interval '10 minutes'" in plan.command
    assert set(plan.changes["sessions"]["pid"]) == leaked
    assert plan.max_targets == 20 and plan.backend == "postgres"
    assert "12 sessions idle ≥ 10 min of application billing-worker" in plan.title


def test_dry_run_sends_nothing(closed_dsn, capsys):
    snap, _ = leak_snapshot()
    plan = plan_terminate_idle(dsn=closed_dsn, snapshot=snap, application="billing-worker", max_targets=20)
    result = rk.apply(plan, dry_run=True)  # a connection attempt to closed_dsn would raise Unavailable
    assert result.outcome == "dry-run" and result.response is None
    assert "[action:dry-run] terminate idle sessions" in capsys.readouterr().out


def test_over_the_blast_radius_the_plan_is_refused_even_in_dry_run(closed_dsn):
    snap, _ = leak_snapshot()
    plan = plan_terminate_idle(dsn=closed_dsn, snapshot=snap, max_targets=5)
    assert len(plan.targets) == 12
    assert len(plan_terminate_idle(dsn=closed_dsn, snapshot=snap, include_idle=True).targets) == 17
    with pytest.raises(rk.UnsafeActionRefused):
        rk.apply(plan, dry_run=True)


def test_nothing_to_terminate_is_skipped(closed_dsn):
    plan = plan_terminate_idle(dsn=closed_dsn, snapshot=snapshot(many(3, state="idle", state_min=30)))
    assert plan.targets == [] and plan.nothing_to_do
    assert rk.apply(plan, dry_run=False).outcome == "skipped"


def test_long_query_plans_cancel_or_terminate(closed_dsn):
    slow = session("report", "active", state_min=9, query_min=9)
    snap = snapshot([slow, *many(4, state="active", state_min=0.2)])
    cancel = plan_cancel_long_queries(dsn=closed_dsn, snapshot=snap, minutes=5)
    terminate = rk.pg.plan_terminate_long_queries(dsn=closed_dsn, snapshot=snap, minutes=5)
    assert cancel.targets == terminate.targets == [str(slow["pid"])]
    assert "pg_cancel_backend(pid)" in cancel.command and "pg_terminate_backend(pid)" in terminate.command
    assert "state = 'active' AND query_start < now() - interval '5 minutes'" in cancel.command


def test_without_an_rds_instance_the_rds_steps_are_no_ops_that_say_what_to_do():
    from runbook_kit import aws

    assert aws.instance_status(db_instance_id="").empty and aws.parameters(db_instance_id="").empty
    assert aws.rds_metrics(db_instance_id="").empty
    rec = Recommendation(current=100, used=95, stale=0, legitimate=95, recommended=140,
                               raise_limit=True, why="demand")
    plan = aws.plan_max_connections(db_instance_id="", recommendation=rec)
    assert plan.command == "ALTER SYSTEM SET max_connections = 140;" and "restart PostgreSQL" in plan.reason
    assert rk.apply(plan, dry_run=False).outcome == "skipped"
    assert rk.apply(aws.plan_reboot(db_instance_id=""), dry_run=False).outcome == "skipped"


def test_protected_sessions_are_left_out_with_the_reason_and_the_sql_a_dba_could_run(closed_dsn):
    dba = session("psql", "idle in transaction", state_min=40, user="postgres", superuser=True)
    other_run = session("runbook_kit", "idle in transaction", state_min=40)
    young = session("psql", "idle in transaction", state_min=1, superuser=True)  # not a candidate at all
    plan = plan_terminate_idle(dsn=closed_dsn, snapshot=snapshot([dba, other_run, young]), idle_minutes=10)
    assert plan.targets == [] and plan.nothing_to_do
    assert plan.excluded == ((f"pid {dba['pid']} (psql, postgres)", "a superuser session"),
                             (f"pid {other_run['pid']} (runbook_kit, app)", "a runbook_kit session"))
    assert "every matching session is protected (2 left out)" in plan.reason
    pids = f"{dba['pid']}, {other_run['pid']}"
    assert f"pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid IN ({pids})" in plan.excluded_command
    result = rk.apply(plan, dry_run=False)  # skipped: nothing to do, but the record says why
    assert result.outcome == "skipped" and result.excluded == plan.excluded
    entry = rk.record.entries_this_session()[-1]
    assert entry.details["excluded_summary"] == "2 left out: 1 a superuser session, 1 a runbook_kit session"


def test_a_protected_long_query_is_left_out_of_cancel_with_the_reason(closed_dsn):
    slow = session("report", "active", state_min=9, query_min=9)
    dba_query = session("psql", "active", state_min=9, query_min=9, superuser=True)
    plan = plan_cancel_long_queries(dsn=closed_dsn, snapshot=snapshot([slow, dba_query]), minutes=5)
    assert plan.targets == [str(slow["pid"])]
    assert plan.excluded == ((f"pid {dba_query['pid']} (psql, app)", "a superuser session"),)
    assert "pg_cancel_backend(pid)" in plan.excluded_command


def test_sessions_hidden_from_the_role_are_named_as_left_out(closed_dsn):
    leak = session("billing-worker", "idle in transaction", state_min=30)
    hidden = session("billing-worker", "idle", state_min=30, user="other", hidden=True)
    plan = plan_terminate_idle(dsn=closed_dsn, snapshot=snapshot([leak, hidden]), idle_minutes=10)
    assert plan.targets == [str(leak["pid"])]
    assert plan.excluded == ((f"pid {hidden['pid']} (billing-worker, other)",
                              "hidden from this role (no permission to see it)"),)
