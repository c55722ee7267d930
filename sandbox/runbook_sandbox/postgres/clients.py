"""Real client processes that hold connections the way the scenario's applications do.

    python -m runbook_sandbox.postgres.clients --dsn DSN --app NAME --count N \
        --mode idle|idle-in-transaction|active-long|blocked [--first-id K] [--lock-order ID]

Why processes and not threads of the manager: the sandbox must outlive `runbook sandbox up`, and a
runbook that terminates a backend must see the client really lose its connection, as an
application would. Each process opens N connections with `application_name=NAME`, puts them in the
requested state, prints one JSON line `{"pid", "app", "mode", "connections"}` and waits for SIGTERM.

Modes: `idle` ran a query and sits idle; `idle-in-transaction` updated a row and never commits
(the leak; `--lock-order` also locks that order row, the head of a blocking chain); `active-long`
runs a reporting query that sleeps inside the server; `blocked` updates an order row another
session holds, so `pg_blocking_pids` shows the chain. Queries are sent without waiting for results.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from typing import Any

MODES = ("idle", "idle-in-transaction", "active-long", "blocked")


def _hold(conn: Any, mode: str, index: int, first_id: int, lock_order: int | None) -> None:
    row = first_id + index
    if mode == "idle":
        conn.execute("SELECT id, status, amount FROM orders WHERE id = %s", (row,)).fetchall()
        conn.commit()
    elif mode == "idle-in-transaction":
        conn.execute("UPDATE invoices SET status = 'processing', updated_at = now() WHERE id = %s", (row,))
        if lock_order is not None and index == 0:
            conn.execute("SELECT id FROM orders WHERE id = %s FOR UPDATE", (lock_order,)).fetchall()
        # no commit: the transaction stays open, holding its row locks
    elif mode == "active-long":
        conn.pgconn.send_query(
            b"SELECT o.customer_id, sum(o.amount) AS revenue FROM orders o CROSS JOIN pg_sleep(86400) "
            b"GROUP BY o.customer_id ORDER BY revenue DESC"
        )
        conn.pgconn.flush()
    elif mode == "blocked":
        order = int(lock_order or 1)
        conn.pgconn.send_query(
            f"UPDATE orders SET status = 'paid', updated_at = now() WHERE id = {order}".encode()
        )
        conn.pgconn.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runbook_sandbox.postgres.clients")
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--app", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--first-id", type=int, default=1, help="first row id the sessions touch")
    parser.add_argument("--lock-order", type=int, default=None, help="order id held (leak) or waited on")
    args = parser.parse_args(argv)

    import psycopg

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    connections = []
    try:
        for index in range(args.count):
            conn = psycopg.connect(args.dsn, application_name=args.app, connect_timeout=10)
            _hold(conn, args.mode, index, args.first_id, args.lock_order)
            connections.append(conn)
    except psycopg.Error as exc:
        print(
            json.dumps({"error": f"{type(exc).__name__}: {exc}".strip(), "connections": len(connections)}),
            flush=True,
        )
        return 1
    print(
        json.dumps({"pid": os.getpid(), "app": args.app, "mode": args.mode, "connections": len(connections)}),
        flush=True,
    )
    _watch(connections, stop)
    # Exit without closing politely: what a killed application does. The server notices the EOF.
    os._exit(0)


def _watch(connections: list[Any], stop: threading.Event) -> None:
    """Hold the connections until SIGTERM, or until the server has closed every one of them.

    A session a runbook terminates is dropped (the others stay, as in a real connection pool); when
    none is left, the server is gone and the process ends instead of lingering as an orphan.
    """
    import select

    live = list(connections)
    while live and not stop.is_set():
        readable, _, _ = select.select([c.pgconn.socket for c in live], [], [], 0.5)
        for conn in [c for c in live if c.pgconn.socket in readable]:
            try:
                conn.pgconn.consume_input()  # a result (a blocked UPDATE that got its lock) or EOF
                while not conn.pgconn.is_busy() and conn.pgconn.get_result() is not None:
                    pass
            except Exception:
                live.remove(conn)
                continue
            if conn.pgconn.status != 0:  # CONNECTION_BAD
                live.remove(conn)


if __name__ == "__main__":
    sys.exit(main())
