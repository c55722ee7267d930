"""The durable queue: every alert received, every run asked for, and the timeline, in one SQLite file.

SQLite in WAL mode with `synchronous=FULL`: a transaction that returned is on disk, so the receiver
answers 202 only after the alert (and the run it asks for) committed, and 503 when that failed (the
sender retries). One process owns a queue file (an exclusive lock beside it), so after a crash every
run left `leased` or `running` belonged to the dead process: `recover()` puts back those that never
started and marks the others `interrupted`; nothing is re-run automatically.

    alerts   one row per distinct notification (dedupe_key UNIQUE); `duplicates` counts the others
    runs     queued → leased → running → succeeded | failed | aborted | interrupted | cancelled
    events   the alert timeline (firing, resolved, cancelled, storm, interrupted...); `incident` and
             `episode` say where a line belongs; an outbox: runbook_kit.serve.timeline copies each
             line with an incident into that incident's timeline (opening it with `details`'
             severity and title) and sets `forwarded`, so a store that is down delays lines, never
             loses them

A connection is shared by threads behind one lock: every operation is a short transaction.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

from runbook_kit.errors import RunbookError

__all__ = ["ACTIVE", "FINISHED", "Queue", "QueueBusy", "Tx"]

ACTIVE = ("leased", "running")
# How long a write waits for a lock before the delivery is answered 503 (senders time out at ~10 s).
BUSY_TIMEOUT = 5.0
FINISHED = ("succeeded", "failed", "aborted", "interrupted", "cancelled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY, dedupe_key TEXT NOT NULL UNIQUE, received REAL NOT NULL,
    source TEXT NOT NULL, status TEXT NOT NULL, episode TEXT NOT NULL, fingerprint TEXT NOT NULL,
    delivery_id TEXT NOT NULL, starts_at TEXT NOT NULL, labels TEXT NOT NULL, annotations TEXT NOT NULL,
    decision TEXT, duplicates INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS alerts_episode ON alerts(episode);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, alert_id INTEGER NOT NULL REFERENCES alerts(id), episode TEXT NOT NULL,
    route TEXT NOT NULL, runbook TEXT NOT NULL, parameters TEXT NOT NULL, incident TEXT NOT NULL,
    mutate INTEGER NOT NULL, target TEXT NOT NULL, severity TEXT, state TEXT NOT NULL, reason TEXT,
    created REAL NOT NULL, started REAL, finished REAL, heartbeat REAL, lease_until REAL, owner TEXT,
    pid INTEGER, record TEXT, exit_code INTEGER);
CREATE INDEX IF NOT EXISTS runs_state ON runs(state);
CREATE INDEX IF NOT EXISTS runs_episode ON runs(episode, created);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, episode TEXT, incident TEXT, kind TEXT NOT NULL,
    text TEXT NOT NULL, details TEXT, forwarded INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS events_episode ON events(episode);
"""
# Columns added after the first release: a queue file written by an older receiver gains them.
_MIGRATIONS = {
    "events": (("details", "TEXT"), ("forwarded", "INTEGER NOT NULL DEFAULT 0")),
}
_OUTBOX_INDEX = "CREATE INDEX IF NOT EXISTS events_outbox ON events(forwarded, id)"



class QueueBusy(RunbookError):
    """Another process owns this queue file."""


def _row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}


class Tx:
    """The operations of one transaction (see Queue.transaction)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def insert_alert(self, *, dedupe_key: str, event: dict[str, Any]) -> int | None:
        """The new alert's id, or None when the same notification is already stored (counted)."""
        cur = self.db.execute(
            "INSERT INTO alerts(dedupe_key, received, source, status, episode, fingerprint, delivery_id,"
            " starts_at, labels, annotations) VALUES (?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(dedupe_key) DO NOTHING",
            (
                dedupe_key,
                time.time(),
                event["source"],
                event["status"],
                event["episode"],
                event["fingerprint"],
                event["delivery_id"],
                event["starts_at"],
                json.dumps(event["labels"]),
                json.dumps(event["annotations"]),
            ),
        )
        if cur.rowcount == 0:
            self.db.execute(
                "UPDATE alerts SET duplicates = duplicates + 1 WHERE dedupe_key = ?", (dedupe_key,)
            )
            return None
        return cur.lastrowid

    def decide(self, alert_id: int, decision: str) -> None:
        self.db.execute("UPDATE alerts SET decision = ? WHERE id = ?", (decision, alert_id))

    def last_run_created(self, episode: str) -> float | None:
        row = self.db.execute(
            "SELECT max(created) FROM runs WHERE episode = ? AND state != 'cancelled'", (episode,)
        ).fetchone()
        return row[0] if row else None

    def episodes_since(self, since: float) -> int:
        """New episodes with a run asked for since `since` (the storm breaker's count)."""
        row = self.db.execute(
            "SELECT count(DISTINCT episode) FROM runs WHERE created >= ?", (since,)
        ).fetchone()
        return int(row[0])

    def route_has_run_because(self, route: str, reason: str, since: float) -> bool:
        return (
            self.db.execute(
                "SELECT 1 FROM runs WHERE route = ? AND reason = ? AND created >= ?", (route, reason, since)
            ).fetchone()
            is not None
        )

    def storm_noted(self, since: float) -> bool:
        return (
            self.db.execute("SELECT 1 FROM events WHERE kind = 'storm' AND at >= ?", (since,)).fetchone()
            is not None
        )

    def enqueue(
        self,
        *,
        alert_id: int,
        episode: str,
        route: str,
        runbook: str,
        parameters: dict[str, Any],
        incident: str,
        mutate: bool,
        target: str,
        severity: str | None,
        reason: str | None = None,
    ) -> int:
        cur = self.db.execute(
            "INSERT INTO runs(alert_id, episode, route, runbook, parameters, incident, mutate, target,"
            " severity, state, reason, created) VALUES (?,?,?,?,?,?,?,?,?,'queued',?,?)",
            (
                alert_id,
                episode,
                route,
                runbook,
                json.dumps(parameters),
                incident,
                int(mutate),
                target,
                severity,
                reason,
                time.time(),
            ),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def cancel_queued(self, episode: str, why: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT id, incident, runbook FROM runs WHERE episode = ? AND state = 'queued'", (episode,)
        ).fetchall()
        self.db.execute(
            "UPDATE runs SET state = 'cancelled', reason = ?, finished = ? "
            "WHERE episode = ? AND state = 'queued'",
            (why, time.time(), episode),
        )
        return [{"id": r[0], "incident": r[1], "runbook": r[2]} for r in rows]

    def incident_of(self, episode: str) -> str | None:
        row = self.db.execute(
            "SELECT incident FROM runs WHERE episode = ? ORDER BY created DESC LIMIT 1", (episode,)
        ).fetchone()
        return row[0] if row else None

    def event(
        self,
        *,
        kind: str,
        text: str,
        episode: str | None = None,
        incident: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.db.execute(
            "INSERT INTO events(at, episode, incident, kind, text, details) VALUES (?,?,?,?,?,?)",
            (time.time(), episode, incident, kind, text, json.dumps(details) if details else None),
        )


class Queue:
    def __init__(self, path: str, *, exclusive: bool = True) -> None:
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._lockfile = None
        if exclusive:
            fh = open(path + ".lock", "a+")  # noqa: SIM115 - held for the queue's lifetime
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.close()
                raise QueueBusy(f"another runbook serve owns the queue {path}") from None
            self._lockfile = fh
        self._lock = threading.Lock()
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)
        for table, columns in _MIGRATIONS.items():
            have = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            for name, decl in columns:
                if name not in have:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")
        self.db.execute(_OUTBOX_INDEX)

    def close(self) -> None:
        with self._lock:
            self.db.close()
        if self._lockfile is not None:
            self._lockfile.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(self.db)
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            cur = self.db.execute(sql, args)
            return [_row(cur, r) for r in cur.fetchall()]

    # --- the worker's side ---------------------------------------------------------------------

    def claim(self, *, owner: str, limit: int, lease: float) -> list[dict[str, Any]]:
        """Lease up to `limit` queued runs, oldest first, at most one per target and none whose target
        already has a run in flight (the per-target lock)."""
        if limit <= 0:
            return []
        now = time.time()
        with self.transaction() as tx:
            busy = {
                r[0] for r in tx.db.execute(f"SELECT target FROM runs WHERE state IN {ACTIVE!r}").fetchall()
            }
            cur = tx.db.execute("SELECT * FROM runs WHERE state = 'queued' ORDER BY id LIMIT 500")
            picked = []
            for row in (_row(cur, r) for r in cur.fetchall()):
                if row["target"] in busy:
                    continue
                busy.add(row["target"])
                picked.append(row)
                if len(picked) == limit:
                    break
            for row in picked:
                tx.db.execute(
                    "UPDATE runs SET state = 'leased', owner = ?, lease_until = ?, heartbeat = ? "
                    "WHERE id = ?",
                    (owner, now + lease, now, row["id"]),
                )
                row.update(state="leased", owner=owner)
        return picked

    def started(self, run_id: int) -> None:
        """Marked before the run's process is launched: a crash from here on leaves it `interrupted`,
        never re-queued (it may have begun)."""
        with self.transaction() as tx:
            tx.db.execute(
                "UPDATE runs SET state = 'running', started = ? WHERE id = ?", (time.time(), run_id)
            )

    def set_pid(self, run_id: int, pid: int) -> None:
        with self.transaction() as tx:
            tx.db.execute("UPDATE runs SET pid = ? WHERE id = ?", (pid, run_id))

    def heartbeat(self, run_ids: list[int], *, lease: float) -> None:
        if not run_ids:
            return
        now = time.time()
        with self.transaction() as tx:
            tx.db.executemany(
                "UPDATE runs SET heartbeat = ?, lease_until = ? WHERE id = ?",
                [(now, now + lease, i) for i in run_ids],
            )

    def finish(
        self, run_id: int, *, state: str, exit_code: int | None, record: str | None, reason: str | None
    ) -> None:
        with self.transaction() as tx:
            tx.db.execute(
                "UPDATE runs SET state = ?, exit_code = ?, record = ?, reason = ?, finished = ? WHERE id = ?",
                (state, exit_code, record, reason, time.time(), run_id),
            )
            row = tx.db.execute(
                "SELECT episode, incident, runbook FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            tx.event(
                kind=f"run-{state}",
                episode=row[0],
                incident=row[1],
                text=f"run {run_id} of {row[2]}: {state}"
                + (f" ({reason})" if reason else "")
                + (f"; record {record}" if record else ""),
                details={"record": record} if record else None,
            )

    def recover(self) -> list[dict[str, Any]]:
        """After a crash: leased-but-never-started runs go back to the queue; started ones become
        `interrupted` (returned, so their records can be finalized). Nothing is re-run."""
        with self.transaction() as tx:
            tx.db.execute(
                "UPDATE runs SET state = 'queued', owner = NULL, lease_until = NULL WHERE state = 'leased'"
            )
            cur = tx.db.execute("SELECT * FROM runs WHERE state = 'running'")
            rows = [_row(cur, r) for r in cur.fetchall()]
            why = "interrupted: runbook serve stopped during the run; not re-run automatically"
            for row in rows:
                tx.db.execute(
                    "UPDATE runs SET state = 'interrupted', reason = ?, finished = ? WHERE id = ?",
                    (why, time.time(), row["id"]),
                )
                tx.event(
                    kind="run-interrupted",
                    episode=row["episode"],
                    incident=row["incident"],
                    text=f"run {row['id']} of {row['runbook']}: {why}"
                    + (
                        " (it may have changed systems: check its record before acting)"
                        if row["mutate"]
                        else ""
                    ),
                )
        return rows

    def depth(self) -> int:
        return int(self.query("SELECT count(*) AS n FROM runs WHERE state = 'queued'")[0]["n"])

    def runs_by_state(self) -> dict[str, int]:
        return {
            r["state"]: r["n"] for r in self.query("SELECT state, count(*) AS n FROM runs GROUP BY state")
        }

    def outbox(self, *, limit: int = 200) -> list[dict[str, Any]]:
        """Timeline lines not yet copied to their incident, oldest first."""
        return self.query(
            "SELECT * FROM events WHERE forwarded = 0 AND incident IS NOT NULL ORDER BY id LIMIT ?", (limit,)
        )

    def forwarded(self, event_ids: list[int], *, mark: int = 1) -> None:
        """Mark lines copied (1) or left out on purpose (2: the incident already has them)."""
        if not event_ids:
            return
        with self.transaction() as tx:
            tx.db.executemany("UPDATE events SET forwarded = ? WHERE id = ?", [(mark, i) for i in event_ids])

    def events(self, *, episode: str | None = None, incident: str | None = None) -> list[dict[str, Any]]:
        if episode is not None:
            return self.query("SELECT * FROM events WHERE episode = ? ORDER BY id", (episode,))
        if incident is not None:
            return self.query("SELECT * FROM events WHERE incident = ? ORDER BY id", (incident,))
        return self.query("SELECT * FROM events ORDER BY id")
