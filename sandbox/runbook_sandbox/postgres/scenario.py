"""The PostgreSQL part of the sandbox: server, schema, roles and the `connections` incident.

The incident, as an on-call engineer finds it on `orders`: connections near max_connections; most
are healthy idle sessions of checkout-api, orders-api and reporting; `billing-worker` leaks sessions
that sit *idle in transaction* for 20 minutes (timeline.LEAK_AGE) holding row locks, one of them on
order 1, so orders-api updates of that order wait on it (a blocking chain); reporting runs a few
queries that have been active for 7 minutes.

Ages come from moving the server's clock (see server.py): open the leak at "-20m", the long queries
at "-7m", everything else at "+0". Each phase is confirmed on the server (pg_stat_activity) before
the clock moves on, so the ages are what the server itself reports, not an assumption.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from runbook_sandbox import timeline as tl
from runbook_sandbox.postgres.server import SUPERUSER, PgServer, start_server
from runbook_sandbox.processes import spawn, stop_pid

__all__ = ["APP_ROLES", "LONG_QUERY_AGE", "SUPERUSER", "UNPRIVILEGED_ROLE", "PgPart", "start", "stop"]

UNPRIVILEGED_ROLE = "oncall_limited"
APP_ROLES = {
    "checkout-api": "checkout_api",
    "orders-api": "orders_api",
    "reporting": "reporting",
    tl.LEAKING_APPLICATION: tl.LEAKING_APPLICATION.replace("-", "_"),
}
LONG_QUERY_AGE = dt.timedelta(minutes=7)
LOCKED_ORDER = 1

# (application, mode, count, first row id): phase by phase
LEAK = [(tl.LEAKING_APPLICATION, "idle-in-transaction", 24, 1)]
LONG = [("reporting", "active-long", 3, 1)]
FRESH = [
    ("checkout-api", "idle", 28, 1),
    ("orders-api", "idle", 18, 100),
    ("reporting", "idle", 6, 200),
    ("orders-api", "blocked", 2, 1),
]


@dataclasses.dataclass
class PgPart:
    server: PgServer
    dsn: str
    dsn_unprivileged: str
    pids: dict[str, int]
    faked_clock: bool
    superuser: str = SUPERUSER


_SCHEMA = f"""
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL, status text NOT NULL,
                     amount numeric(10, 2) NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE invoices (id bigint PRIMARY KEY, order_id bigint REFERENCES orders (id), status text NOT NULL,
                       updated_at timestamptz NOT NULL DEFAULT now());
INSERT INTO orders SELECT g, 1 + g % 97, 'open', (g * 37 % 500) + 9.99 FROM generate_series(1, 2000) g;
INSERT INTO invoices SELECT g, g, 'pending' FROM generate_series(1, 500) g;
CREATE ROLE app_rw NOLOGIN;
GRANT SELECT, INSERT, UPDATE ON orders, invoices TO app_rw;
CREATE ROLE {UNPRIVILEGED_ROLE} LOGIN;
GRANT CONNECT ON DATABASE {tl.DB_NAME} TO {UNPRIVILEGED_ROLE};
""" + "".join(f"CREATE ROLE {role} LOGIN IN ROLE app_rw;\n" for role in APP_ROLES.values())

_HISTORY = [  # statements for pg_stat_statements: the workload before the incident
    ("SELECT id, status, amount FROM orders WHERE id = %s", 40),
    ("UPDATE invoices SET status = 'paid', updated_at = now() WHERE id = %s", 15),
    ("SELECT customer_id, sum(amount) FROM orders WHERE customer_id = %s GROUP BY customer_id", 10),
]


def _schema(server: PgServer) -> None:
    import psycopg

    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {tl.DB_NAME}")
    with psycopg.connect(server.dsn(dbname=tl.DB_NAME), autocommit=True) as conn:
        conn.execute(_SCHEMA)
        for sql, times in _HISTORY:
            for i in range(times):
                conn.execute(sql, (i % 97 + 1,))


def _spawn(
    server: PgServer, app: str, mode: str, count: int, first_id: int, log: Path
) -> subprocess.Popen[str]:
    dsn = server.dsn(user=APP_ROLES[app], dbname=tl.DB_NAME)
    args = [
        sys.executable,
        "-m",
        "runbook_sandbox.postgres.clients",
        "--dsn",
        dsn,
        "--app",
        app,
        "--count",
        str(count),
        "--mode",
        mode,
        "--first-id",
        str(first_id),
    ]
    if mode in ("idle-in-transaction", "blocked"):
        args += ["--lock-order", str(LOCKED_ORDER)]
    return spawn(args, log)


def _ready(procs: list[subprocess.Popen[str]], deadline: float) -> None:
    """Wait for each client's JSON line; a client that failed or stayed silent fails the start."""
    for proc in procs:
        assert proc.stdout is not None
        remaining = max(0.0, deadline - time.monotonic())
        readable, _, _ = select.select([proc.stdout], [], [], remaining)
        line = proc.stdout.readline() if readable else ""
        info = json.loads(line) if line.strip().startswith("{") else {"error": "no answer in time"}
        if "error" in info:
            args = [str(a) for a in proc.args] if isinstance(proc.args, list) else [str(proc.args)]
            raise RuntimeError(f"postgres client {' '.join(args[-8:])} failed: {info['error']}")


def _wait_sessions(conn: Any, expected: dict[tuple[str, str], int], deadline: float) -> None:
    """Wait until pg_stat_activity shows `expected` sessions per (application, state)."""
    seen: dict[tuple[str, str], int] = {}
    while time.monotonic() < deadline:
        rows = conn.execute(
            "SELECT application_name, state, count(*) FROM pg_stat_activity WHERE datname = %s GROUP BY 1, 2",
            (tl.DB_NAME,),
        ).fetchall()
        seen = {(app, state): n for app, state, n in rows}
        if all(seen.get(key, 0) >= n for key, n in expected.items()):
            return
        time.sleep(0.05)
    raise RuntimeError(f"postgres sessions not in place: wanted {expected}, saw {seen}")


def _move_clock(server: PgServer, conn_factory: Any, behind: dt.timedelta, deadline: float) -> None:
    """Set the server clock `behind` real time and wait until a new backend agrees."""
    server.set_clock(f"-{int(behind.total_seconds())}" if behind else "+0")
    while time.monotonic() < deadline:
        with conn_factory() as conn:
            server_now = conn.execute("SELECT now()").fetchone()[0]
        if abs(dt.datetime.now(dt.UTC) - behind - server_now) < dt.timedelta(seconds=20):
            return
        time.sleep(0.1)
    raise RuntimeError("the postgres server clock did not move")


def _phase(
    server: PgServer,
    conn: Any,
    specs: list[tuple[str, str, int, int]],
    pids: dict[str, int],
    log: Path,
    deadline: float,
) -> None:
    procs = [_spawn(server, app, mode, count, first, log) for app, mode, count, first in specs]
    for (app, mode, _, _), proc in zip(specs, procs, strict=True):
        pids[f"pg-client-{app}-{mode}"] = proc.pid
    _ready(procs, deadline)
    states = {
        "idle": "idle",
        "idle-in-transaction": "idle in transaction",
        "active-long": "active",
        "blocked": "active",
    }
    expected: dict[tuple[str, str], int] = {}
    for app, mode, count, _ in specs:
        expected[(app, states[mode])] = expected.get((app, states[mode]), 0) + count
    _wait_sessions(conn, expected, deadline)


def start(
    *, state_dir: Path, scenarios: set[str], timeout: float = 20, pids: dict[str, int] | None = None
) -> PgPart:
    """Start the server, create `orders` and its roles, and plant the connections incident if asked.

    Every process started is added to `pids` as soon as it exists (the caller's record); on failure
    they are all ended before the error propagates.
    """
    import psycopg

    deadline = time.monotonic() + timeout
    leak_age = tl.LEAK_AGE + dt.timedelta(seconds=30)
    with_incident = "connections" in scenarios
    server = start_server(
        state_dir=state_dir,
        max_connections=tl.DB_MAX_CONNECTIONS,
        clock_offset=f"-{int(leak_age.total_seconds())}" if with_incident else "+0",
        timeout=max(1.0, deadline - time.monotonic()),
    )
    pids = {} if pids is None else pids
    pids["postgres"] = server.pid
    part = PgPart(
        server=server,
        dsn=server.dsn(dbname=tl.DB_NAME),
        dsn_unprivileged=server.dsn(user=UNPRIVILEGED_ROLE, dbname=tl.DB_NAME),
        pids=pids,
        faked_clock=server.clock_file is not None,
    )
    try:
        _schema(server)
        if with_incident:
            log = state_dir / "clients.log"

            def connect() -> Any:
                return psycopg.connect(part.dsn, autocommit=True, application_name="sandbox-seed")

            with connect() as conn:
                _phase(server, conn, LEAK, pids, log, deadline)
                if part.faked_clock:
                    _move_clock(server, connect, LONG_QUERY_AGE, deadline)
                _phase(server, conn, LONG, pids, log, deadline)
                if part.faked_clock:
                    _move_clock(server, connect, dt.timedelta(0), deadline)
                _phase(server, conn, FRESH, pids, log, deadline)
    except Exception:
        stop(pids)
        raise
    return part


def stop(pids: dict[str, int]) -> None:
    """End the clients, then the server (fast shutdown), each by its recorded PID."""
    import signal

    for name, pid in pids.items():
        if name != "postgres":
            stop_pid(pid, sig=signal.SIGTERM, timeout=3)
    if "postgres" in pids:
        stop_pid(pids["postgres"], sig=signal.SIGINT, timeout=8)
