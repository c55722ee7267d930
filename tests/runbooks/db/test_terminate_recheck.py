"""The terminate plan re-checks every PID on the server at execute time: sessions that changed,
vanished, were recycled or are protected since the plan was made are left alone."""

from __future__ import annotations

import dataclasses
import time

import pandas as pd
import psycopg
import pytest
from pg_truth import sessions

import runbook_kit as rk
from runbook_kit import clients
from runbook_kit.pg import connection_snapshot, plan_terminate_idle

pytestmark = [pytest.mark.sandbox]
APP = "recheck-test"


@pytest.fixture
def db_env(fresh_db, monkeypatch):
    for name, value in fresh_db.env.items():
        monkeypatch.setenv(name, value)
    clients.reset()
    yield fresh_db
    clients.reset()


def open_idle_in_transaction(dsn: str, n: int) -> list[psycopg.Connection]:
    conns = []
    for _ in range(n):
        conn = psycopg.connect(dsn, application_name=APP, connect_timeout=5)
        conn.execute("SELECT 1")  # a transaction left open: idle in transaction
        conns.append(conn)
    return conns


def test_execute_touches_only_pids_that_still_match(db_env):
    mine = open_idle_in_transaction(db_env.pg_dsn_unprivileged, 4)
    superuser = open_idle_in_transaction(db_env.pg_dsn, 1)[0]
    try:
        pids = [c.info.backend_pid for c in mine]
        su_pid = superuser.info.backend_pid
        time.sleep(0.2)
        snap = connection_snapshot()
        # what a stale plan could believe: pids[2] started at another time (a recycled PID), and the
        # superuser's session looked like an ordinary one
        rows = snap.sessions.copy()
        rows.loc[rows["pid"] == pids[2], "backend_start"] += pd.Timedelta(seconds=1)
        rows.loc[rows["pid"] == su_pid, "superuser"] = False
        stale = dataclasses.replace(snap, sessions=rows)
        plan = plan_terminate_idle(idle_minutes=0, application=APP, include_idle=False, snapshot=stale,
                                   max_targets=10)
        assert {int(t) for t in plan.targets} == {*pids, su_pid}

        mine[0].commit()  # now idle, not idle in transaction: changed since the plan
        mine[1].close()  # gone
        result = rk.apply(plan, dry_run=False)

        assert result.response == {
            pids[0]: "changed since the plan: not touched", pids[1]: "gone",
            pids[2]: "pid recycled: not touched", pids[3]: "terminated", su_pid: "protected: not touched",
        }
        alive = sessions(db_env.pg_dsn)
        assert {pids[0], pids[2], su_pid} <= set(alive) and pids[3] not in alive
        assert result.after["targets_present"] == sorted([pids[0], pids[2], su_pid])
    finally:
        for conn in [*mine, superuser]:
            conn.close()
