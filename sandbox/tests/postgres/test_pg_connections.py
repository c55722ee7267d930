"""psycopg against the sandbox database: the planted sessions, their states, ages and blocking chain."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from runbook_sandbox import timeline as tl
from runbook_sandbox.manager import SandboxInfo
from runbook_sandbox.postgres.scenario import FRESH, LEAK, LONG, LONG_QUERY_AGE, UNPRIVILEGED_ROLE

pytestmark = pytest.mark.sandbox
SLACK = dt.timedelta(minutes=2)  # the sessions are planted within the sandbox's start-up, after its anchor


@pytest.fixture(scope="module")
def info(aws_pg_sandbox: SandboxInfo) -> SandboxInfo:
    return aws_pg_sandbox


@pytest.fixture
def db(info: SandboxInfo) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(info.pg_dsn, autocommit=True, application_name="sandbox-tests") as conn:
        yield conn


def since_start(db: psycopg.Connection[Any], info: SandboxInfo) -> dt.timedelta:
    """How long the sandbox has been up, by the server's clock: ages are checked net of it, so no
    assertion depends on how long the test session has been running."""
    return db.execute("SELECT now() - %s::timestamptz", (info.anchor,)).fetchone()[0]


def sessions(db: psycopg.Connection[Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    rows = db.execute(
        "SELECT application_name, state, usename, query, now() - backend_start AS connected, "
        "now() - xact_start AS in_xact, now() - state_change AS in_state, now() - query_start AS running, "
        "wait_event_type FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        (tl.DB_NAME,),
    ).fetchall()
    names = ["app", "state", "user", "query", "connected", "in_xact", "in_state", "running", "wait"]
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        record = dict(zip(names, row, strict=True))
        out.setdefault((record["app"], record["state"]), []).append(record)
    return out


def test_connections_near_max_by_application_and_state(db: psycopg.Connection[Any]) -> None:
    assert db.execute("SHOW max_connections").fetchone() == (str(tl.DB_MAX_CONNECTIONS),)
    found = {key: len(rows) for key, rows in sessions(db).items()}
    assert found[(tl.LEAKING_APPLICATION, "idle in transaction")] == LEAK[0][2]
    assert found[("reporting", "active")] == LONG[0][2]
    assert found[("checkout-api", "idle")] == FRESH[0][2]
    assert found[("orders-api", "active")] == 2  # the blocked updates
    total = db.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
    ).fetchone()[0]
    assert 0.8 * tl.DB_MAX_CONNECTIONS <= total < tl.DB_MAX_CONNECTIONS


def test_leaked_sessions_are_older_than_the_threshold_by_the_servers_clock(
    db: psycopg.Connection[Any], info: SandboxInfo
) -> None:
    leaked = sessions(db)[(tl.LEAKING_APPLICATION, "idle in transaction")]
    up = since_start(db, info)
    for session in leaked:
        assert session["in_state"] > dt.timedelta(minutes=10)
        assert abs(session["in_xact"] - up - tl.LEAK_AGE) < SLACK
        assert session["user"] == "billing_worker"
        assert session["query"].startswith(("UPDATE invoices", "SELECT id FROM orders"))
    fresh = sessions(db)[("checkout-api", "idle")]
    assert all(s["connected"] - up < SLACK for s in fresh)
    # the server's own clock agrees with the machine's (the jump back to real time happened)
    server_now = db.execute("SELECT now()").fetchone()[0]
    assert abs(server_now - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=30)


def test_long_running_reporting_queries(db: psycopg.Connection[Any], info: SandboxInfo) -> None:
    active = sessions(db)[("reporting", "active")]
    up = since_start(db, info)
    for session in active:
        assert abs(session["running"] - up - LONG_QUERY_AGE) < SLACK
        assert session["running"] > dt.timedelta(minutes=5)
        assert "pg_sleep" in session["query"]


def test_blocking_chain_leads_to_the_leaking_application(db: psycopg.Connection[Any]) -> None:
    rows = db.execute(
        "SELECT a.pid, a.application_name, a.wait_event_type, pg_blocking_pids(a.pid) "
        "FROM pg_stat_activity a WHERE cardinality(pg_blocking_pids(a.pid)) > 0"
    ).fetchall()
    assert len(rows) == 2 and {r[1] for r in rows} == {"orders-api"} and {r[2] for r in rows} == {"Lock"}
    apps = dict(db.execute("SELECT pid, application_name FROM pg_stat_activity").fetchall())
    blockers = {apps[pid] for _, _, _, pids in rows for pid in pids}
    assert tl.LEAKING_APPLICATION in blockers
    # a chain: one waiting update waits on the other waiting update
    waiting = {r[0] for r in rows}
    assert any(set(r[3]) & waiting for r in rows)


def test_unprivileged_role_cannot_see_other_sessions_query_text(info: SandboxInfo) -> None:
    with psycopg.connect(info.pg_dsn_unprivileged, autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (UNPRIVILEGED_ROLE,)
        rows = conn.execute(
            "SELECT usename, state, query FROM pg_stat_activity WHERE datname = %s "
            "AND pid <> pg_backend_pid()",
            (tl.DB_NAME,),
        ).fetchall()
        assert len(rows) > 50
        assert {r[2] for r in rows} == {"<insufficient privilege>"}
        assert {r[1] for r in rows} == {None}
        member = conn.execute("SELECT pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER')").fetchone()
        assert member == (False,)


def test_pg_stat_statements_has_a_workload(db: psycopg.Connection[Any]) -> None:
    rows = db.execute(
        "SELECT query, calls FROM pg_stat_statements WHERE query LIKE 'SELECT id, status%%'"
    ).fetchall()
    assert rows and max(calls for _, calls in rows) >= 40


def test_terminating_the_leak_unblocks_orders_and_the_sandbox_keeps_running(
    fresh_sandbox: Callable[..., SandboxInfo],
) -> None:
    import psutil

    from runbook_sandbox import manager

    info = fresh_sandbox("connections", parts=("postgres",))
    leak_client = info.pids[f"pg-client-{tl.LEAKING_APPLICATION}-idle-in-transaction"]
    with psycopg.connect(info.pg_dsn, autocommit=True) as conn:
        terminated = conn.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %s",
            (tl.LEAKING_APPLICATION,),
        ).fetchone()
        assert terminated == (LEAK[0][2],)
        # the client process notices its sessions are gone and ends; the blocked updates complete
        psutil.Process(leak_client).wait(10)
        for _ in range(100):
            waiting = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            ).fetchone()
            if waiting == (0,):
                break
            time.sleep(0.05)
        assert waiting == (0,)
        status = conn.execute("SELECT status FROM orders WHERE id = 1").fetchone()
        assert status == ("paid",)
    assert manager.status(state_dir=info.state_dir) == info  # the servers still run
