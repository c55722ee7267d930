"""The server's own view of its sessions (pg_stat_activity read with psycopg as the sandbox
superuser): the database tests check the kit's claims against it, not against the kit's snapshot.
"""

from __future__ import annotations

from typing import Any

import psycopg

from runbook_sandbox import timeline as tl


def sessions(dsn: str) -> dict[int, dict[str, Any]]:
    """Client sessions by PID (except this reader's own), with their identity and age in minutes."""
    sql = """SELECT pid, application_name, usename, state, backend_start,
                    extract(epoch FROM now() - state_change) / 60 AS state_min
             FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"""
    with psycopg.connect(dsn, connect_timeout=5, autocommit=True) as conn:
        cols = ["pid", "application_name", "usename", "state", "backend_start", "state_min"]
        return {row[0]: dict(zip(cols, row, strict=True)) for row in conn.execute(sql).fetchall()}


def leaked(dsn: str, *, idle_minutes: float = 10) -> dict[int, dict[str, Any]]:
    return {pid: s for pid, s in sessions(dsn).items()
            if s["application_name"] == tl.LEAKING_APPLICATION
            and s["state"] in ("idle", "idle in transaction", "idle in transaction (aborted)")
            and s["state_min"] >= idle_minutes}
