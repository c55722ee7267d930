"""One way for the pg helpers to reach the database: a short-lived connection, or the caller's.

Why short-lived: on a database that is out of connections, a runbook that keeps a session open is
part of the problem, and a notebook cell may sit for an hour between steps. Each helper connects
through `runbook_kit.clients.pg_connect` (bounded connect and statement timeouts, application_name
`runbook_kit`, so the kit recognises its own sessions), runs its one query and disconnects. Tests
and callers that want to reuse a connection pass `conn=`.

A database the kit cannot reach is recorded as a finding before the error propagates: the incident
record must say *why* the runbook stopped, not only where.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from runbook_kit import clients, record
from runbook_kit.errors import BackendError, Forbidden, Throttled, Unavailable, backend_call

__all__ = ["connected", "fetch"]


@contextlib.contextmanager
def connected(*, dsn: str | None, conn: Any | None = None) -> Iterator[Any]:
    """Yield `conn` if given, else a new connection closed on exit; unreachable → finding + error."""
    if conn is not None:
        yield conn
        return
    try:
        new = clients.pg_connect(dsn or None)
    except (Unavailable, Forbidden, Throttled) as err:
        _record_unreachable(err)
        raise
    try:
        yield new
    finally:
        with contextlib.suppress(Exception):
            new.close()


def _record_unreachable(err: BackendError) -> None:
    hint = {
        Unavailable: "check the host/port in the DSN, security groups, and whether the server is up",
        Forbidden: "check the user, password (~/.pgpass) and pg_hba.conf",
        Throttled: "the server refuses new connections: max_connections is exhausted even for the "
                   "runbook; connect as a superuser (reserved slots) or use the RDS steps",
    }[type(err)]
    record.finding(f"Cannot connect to the database: {err.reason}", severity="critical",
                   error=str(err), hint=hint)


def fetch(conn: Any, sql: str, params: Mapping[str, Any] | Sequence[Any] | None = None, *,
          op: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one query; return (column names, rows). Errors leave as the kit's errors."""
    with backend_call("postgres", op), conn.cursor() as cur:
        cur.execute(sql, params)
        columns = [d.name for d in cur.description or ()]
        return columns, list(cur.fetchall()) if cur.description else []
