"""Plain-data pg_stat_activity rows for the pure-logic tests (no database)."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from runbook_kit.pg.snapshot import SESSION_COLUMNS, ConnectionSnapshot, snapshot_from_rows

NOW = dt.datetime(2026, 11, 29, 3, 0, tzinfo=dt.UTC)
_pids = itertools.count(1000)


def session(app: str = "web", state: str = "idle", *, state_min: float = 1.0, conn_min: float | None = None,
            query_min: float | None = None, xact_min: float | None = None, user: str = "app",
            client: str = "10.0.0.1", superuser: bool = False, backend_type: str = "client backend",
            is_self: bool = False, hidden: bool = False, blocked_by: list[int] | None = None,
            pid: int | None = None) -> dict[str, Any]:
    conn_min = max(conn_min if conn_min is not None else state_min + 1, state_min)
    query_min = query_min if query_min is not None else state_min
    if xact_min is None and state.startswith("idle in transaction"):
        xact_min = state_min + 0.5
    ago = lambda m: None if m is None else NOW - dt.timedelta(minutes=m)  # noqa: E731
    return {
        "pid": pid or next(_pids), "datname": "orders", "usename": user, "application_name": app,
        "client_addr": client, "state": None if hidden else state,
        "backend_type": None if hidden else backend_type,
        "backend_start": ago(conn_min), "xact_start": ago(xact_min), "state_change": ago(state_min),
        "query_start": ago(query_min), "wait_event_type": "Lock" if blocked_by else None, "wait_event": None,
        "conn_age_min": conn_min, "xact_age_min": xact_min, "state_age_min": state_min,
        "query_age_min": query_min, "blocked_by": blocked_by, "query": "select 1",
        "is_self": is_self, "superuser": superuser, "hidden": hidden,
    }


def snapshot(rows: list[dict[str, Any]], *, max_connections: int = 100, superuser_reserved: int = 3,
             with_self: bool = True) -> ConnectionSnapshot:
    if with_self:
        rows = [*rows, session("runbook_kit", "active", state_min=0, conn_min=0, user="oncall", is_self=True)]
    columns = [*SESSION_COLUMNS, "max_connections", "superuser_reserved", "reserved", "server_now", "me"]
    data = [(*(r[c] for c in SESSION_COLUMNS), max_connections, superuser_reserved, 0, NOW, "oncall")
            for r in rows]
    return snapshot_from_rows(columns, data)


def many(n: int, **kwargs: Any) -> list[dict[str, Any]]:
    return [session(**kwargs) for _ in range(n)]
