"""The incident side of the receiver: the queue's timeline lines copied into their incidents (an outbox).

Each line of the queue's `events` table that names an incident is copied, oldest first, into that
incident's `incident.json` (runbook_kit.incident), the record people and postmortems read:

* a `firing` line opens the incident when it is not open yet: the route's severity (P0–P3) and
  title, started at the alert's `startsAt` (the deadlines of the severity policy count from there),
  detected when it was received, the alert as the first event. An incident already open (opened by a
  person, or by an earlier alert) gets the alert as an event, and its severity raised when this
  alert's is higher, never lowered (people lower a severity, alerts do not). A resolved incident is
  reopened by a new firing of an alert routed to it;
* `resolved`, cancelled and interrupted runs, and the like become events of their incident; an
  incident is never resolved by an alert resolving (a person decides: `runbook incident resolve`);
* lines saying that a run finished with a record are left out: the incident's timeline already
  shows each run's start, findings, actions and end from the run's own entry in incident.json.

The copy is at least once and idempotent in effect: a line is marked forwarded after its incident
was written, and a store that cannot be written (S3 down) leaves the lines in the outbox, retried
with backoff while the receiver keeps answering senders. Text is redacted by runbook_kit.incident.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any

from runbook_kit import incident as inc
from runbook_kit import severity as sev
from runbook_kit.errors import NotFound
from runbook_kit.serve.queue import Queue
from runbook_kit.store import Store

__all__ = ["Forwarder", "forward_once"]

log = logging.getLogger("runbook.serve")
COPIED, LEFT_OUT = 1, 2
_MAX_BACKOFF = 60.0


def _when(at: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(at, dt.UTC)


def _details(row: dict[str, Any]) -> dict[str, Any]:
    try:
        details = json.loads(row.get("details") or "{}")
    except ValueError:
        return {}
    return details if isinstance(details, dict) else {}


def _rank(level: str) -> int:
    levels = list(sev.policy())
    return levels.index(level) if level in levels else len(levels)


def _load(incident_id: str, store: Store) -> inc.Incident | None:
    try:
        return inc.load(incident_id, store=store)
    except NotFound:
        return None


def _firing(row: dict[str, Any], details: dict[str, Any], store: Store) -> None:
    incident_id, at = row["incident"], _when(row["at"])
    alert = details.get("alert") or {}
    level = str(details.get("severity") or "P2")
    current = _load(incident_id, store)
    if current is None:  # never opened (or only runs recorded so far)
        started = inc.parse_time(alert.get("starts_at"))
        if started is None or started > at:
            started = at
        inc.open_incident(
            incident_id=incident_id, title=str(details.get("title") or row["text"])[:200], severity=level,
            started=started, detected=at, now=at, store=store,
            alert={"title": row["text"], **alert},
        )
        return
    if current.status == "resolved":
        inc.update(incident_id, status="investigating", current_action="investigating: the alert fired again",
                   store=store, now=at)
    inc.add_event(incident_id, "alert", row["text"], store=store, at=at, alert=alert or None)
    if _rank(level) < _rank(current.severity):
        inc.update(incident_id, severity=level, store=store, now=at)


def _copy(row: dict[str, Any], store: Store) -> int:
    """Write one line into its incident; returns how it was handled (COPIED or LEFT_OUT)."""
    details = _details(row)
    kind = str(row["kind"])
    if kind == "firing":
        _firing(row, details, store)
        return COPIED
    if kind.startswith("run-") and details.get("record"):
        return LEFT_OUT  # the run's own entry in incident.json says it, with its record
    if _load(row["incident"], store) is None:
        # a line for an incident never opened here (its firing line went to another incident id):
        # open it so the line is not lost; the severity policy's middle level, said in the title
        inc.open_incident(incident_id=row["incident"], title=f"opened by runbook serve: {row['text']}"[:200],
                          severity="P2", now=_when(row["at"]), store=store)
    alert = details.get("alert")
    inc.add_event(row["incident"], "alert-" + kind if kind == "resolved" else kind, row["text"], store=store,
                  at=_when(row["at"]), alert=alert or None)
    return COPIED


def forward_once(queue: Queue, store: Store, *, limit: int = 200) -> int:
    """Copy what the outbox holds; returns the number of lines handled. Stops at the first line that
    cannot be written (keeping the order of each incident's timeline) and raises its error."""
    handled = 0
    for row in queue.outbox(limit=limit):
        mark = _copy(row, store)
        queue.forwarded([row["id"]], mark=mark)
        handled += 1
    return handled


class Forwarder:
    """Runs forward_once in the background: woken by intake and by finished runs, else every second."""

    def __init__(self, queue: Queue, store: Store, *, interval: float = 1.0,
                 on_error: Callable[[Exception], None] | None = None) -> None:
        self.queue, self.store, self.interval = queue, store, interval
        self.on_error = on_error
        self._wake = asyncio.Event()
        self._stopping = False
        self.failures = 0

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Until stop(): copy, then wait to be woken (or the interval, or the backoff after a failure).
        After stop() it copies once more what is waiting, then returns (never two copies at once)."""
        while True:
            self._wake.clear()
            delay = self.interval
            try:
                await asyncio.to_thread(forward_once, self.queue, self.store)
                self.failures = 0
            except Exception as exc:  # the store is unreachable: the lines wait in the outbox
                self.failures += 1
                delay = min(_MAX_BACKOFF, self.interval * 2 ** min(self.failures, 6))
                if self.failures == 1 or self.failures % 10 == 0:
                    log.warning("incident timeline not written; retrying",
                                extra={"fields": {"error": f"{type(exc).__name__}: {exc}"[:300],
                                                  "attempts": self.failures, "retry_s": delay}})
                if self.on_error is not None:
                    self.on_error(exc)
            if self._stopping:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    def stop(self) -> None:
        """Ask run() to copy what is waiting once more and return."""
        self._stopping = True
        self._wake.set()
