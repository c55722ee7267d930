"""What happens to a verified delivery, decided and stored in ONE transaction before the sender's 202.

For each alert event:

* the same notification already stored (sender retry, the other Alertmanager of an HA pair, an SNS
  retry) → counted as a duplicate, nothing else;
* `resolved` → never starts a run; queued runs of its episode are cancelled; a timeline line;
* `firing` → the first matching route builds the run (RouteError → stored as unroutable, with a line);
  within the route's cooldown after a run of the same episode (a flap, a re-send after
  `repeat_interval` with a new startsAt) → no run; otherwise a run is queued, a dry run unless the
  route says `mutate: true`;
* beyond `storm_per_minute` new episodes in the last minute (the storm breaker): runs are
  diagnosis only (forced dry run), at most one queued per route while the storm lasts, and the
  timeline gets one summary line per minute instead of one per alert;
* `other` (acknowledged, a note...) → stored, never routed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import queue as stdqueue
import threading
import time
from typing import Any

from runbook_kit.serve.queue import Queue, Tx
from runbook_kit.serve.routes import Route, RouteError, match
from runbook_kit.serve.sources import AlertEvent, Delivery

__all__ = ["Admitted", "GroupCommit", "admit", "admit_in"]

STORM_REASON = "storm breaker: diagnosis only"


@dataclasses.dataclass
class Admitted:
    stored: int = 0
    duplicates: int = 0
    queued: int = 0
    cancelled: int = 0
    run_ids: list[int] = dataclasses.field(default_factory=list)


def _name(event: AlertEvent) -> str:
    return event.labels.get("alertname") or event.fingerprint


def _resolved(tx: Tx, event: AlertEvent, alert_id: int, out: Admitted) -> None:
    cancelled = tx.cancel_queued(event.episode, "cancelled: the alert resolved before the run started")
    out.cancelled += len(cancelled)
    incident = tx.incident_of(event.episode)
    text = f"alert {_name(event)} resolved ({event.source}); no run is started for a resolved alert"
    if cancelled:
        text += f"; cancelled queued run(s) {', '.join(str(c['id']) for c in cancelled)}"
    tx.event(kind="resolved", episode=event.episode, incident=incident, text=text, details=_alert(event))
    tx.decide(alert_id, "resolved" + (f": cancelled {len(cancelled)} queued run(s)" if cancelled else ""))


def _alert(event: AlertEvent) -> dict[str, Any]:
    """What the incident's timeline keeps of an alert (labels and annotations are redacted there)."""
    return {"alert": {"source": event.source, "status": event.status, "labels": dict(event.labels),
                      "annotations": dict(event.annotations), "starts_at": event.starts_at,
                      "fingerprint": event.fingerprint}}


def _firing(
    tx: Tx, event: AlertEvent, alert_id: int, routes: list[Route], storm_per_minute: int, out: Admitted
) -> None:
    route = match(routes, event)
    if route is None:
        tx.decide(alert_id, "no route")
        return
    try:
        spec = route.spec(event)
    except RouteError as exc:
        tx.decide(alert_id, f"unroutable: {exc}")
        tx.event(
            kind="unroutable",
            episode=event.episode,
            text=f"alert {_name(event)} matched route {route.name!r} but no run was built: {exc}",
        )
        return
    now = time.time()
    last = tx.last_run_created(event.episode)
    if last is not None and now - last < route.cooldown:
        tx.decide(alert_id, f"cooldown: a run of this episode started {now - last:.0f} s ago")
        return
    parameters, mutate, reason = dict(spec.parameters), spec.mutate, None
    if tx.episodes_since(now - 60) >= storm_per_minute:
        if not tx.storm_noted(now - 60):
            tx.event(
                kind="storm",
                text=f"alert storm: more than {storm_per_minute} new alert episodes in a "
                "minute; runs are diagnosis only (dry run), one per route, until it calms",
            )
        diagnosed = tx.route_has_run_because(route.name, STORM_REASON, now - 60)
        if diagnosed:
            tx.decide(alert_id, f"storm: stored, not run (route {route.name!r} has its diagnosis run)")
            return
        if "dry_run" in parameters:
            parameters["dry_run"] = True
        mutate, reason = False, STORM_REASON
    run_id = tx.enqueue(
        alert_id=alert_id,
        episode=event.episode,
        route=route.name,
        runbook=spec.runbook,
        parameters=parameters,
        incident=spec.incident,
        mutate=mutate,
        target=spec.target,
        severity=spec.severity,
        reason=reason,
    )
    out.queued += 1
    out.run_ids.append(run_id)
    tx.decide(alert_id, f"queued run {run_id}")
    mode = "may change systems" if mutate else "dry run"
    tx.event(
        kind="firing",
        episode=event.episode,
        incident=spec.incident,
        text=f"alert {_name(event)} firing ({event.source}) → run {run_id} of {spec.runbook} queued "
        f"({mode}) by route {route.name!r}",
        details={**_alert(event), "severity": spec.severity, "title": spec.title},
    )


def admit_in(tx: Tx, delivery: Delivery, *, routes: list[Route], storm_per_minute: int) -> Admitted:
    """Store, deduplicate and route a verified delivery inside the transaction `tx`."""
    out = Admitted()
    if delivery.note:
        tx.event(kind="note", text=delivery.note)
    for event in delivery.events:
        alert_id = tx.insert_alert(dedupe_key=event.dedupe_key, event=event.to_json())
        if alert_id is None:
            out.duplicates += 1
            continue
        out.stored += 1
        if event.status == "resolved":
            _resolved(tx, event, alert_id, out)
        elif event.status == "firing":
            _firing(tx, event, alert_id, routes, storm_per_minute, out)
        else:
            tx.decide(alert_id, f"stored: status {event.status} is never routed")
    return out


def admit(queue: Queue, delivery: Delivery, *, routes: list[Route], storm_per_minute: int) -> Admitted:
    """Store, deduplicate and route a verified delivery in one transaction (an exception: nothing stored)."""
    with queue.transaction() as tx:
        return admit_in(tx, delivery, routes=routes, storm_per_minute=storm_per_minute)


class GroupCommit:
    """Deliveries arriving together share one transaction, hence one fsync (group commit).

    One writer thread takes every delivery waiting, admits each inside its own SAVEPOINT (a delivery
    that fails is rolled back alone and answered 503), commits once, then answers them all. Under a
    storm of N concurrent senders this turns N fsyncs into one; alone, a delivery waits for nothing.
    """

    def __init__(
        self, queue: Queue, *, routes: list[Route], storm_per_minute: int, max_batch: int = 200
    ) -> None:
        self.queue, self.routes, self.storm, self.max_batch = queue, routes, storm_per_minute, max_batch
        self._pending: stdqueue.SimpleQueue[tuple[Delivery, asyncio.Future[Admitted]] | None] = (
            stdqueue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._loop, name="runbook-serve-writer", daemon=True)
        self._thread.start()

    async def admit(self, delivery: Delivery) -> Admitted:
        future: asyncio.Future[Admitted] = asyncio.get_running_loop().create_future()
        self._pending.put((delivery, future))
        return await future

    def close(self) -> None:
        self._pending.put(None)
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while True:
            first = self._pending.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._pending.get_nowait()
                except stdqueue.Empty:
                    break
                if item is None:
                    self._pending.put(None)
                    break
                batch.append(item)
            self._commit(batch)

    def _commit(self, batch: list[tuple[Delivery, asyncio.Future[Admitted]]]) -> None:
        results: list[Admitted | BaseException] = []
        try:
            with self.queue.transaction() as tx:
                for delivery, _ in batch:
                    tx.db.execute("SAVEPOINT delivery")
                    try:
                        results.append(
                            admit_in(tx, delivery, routes=self.routes, storm_per_minute=self.storm)
                        )
                        tx.db.execute("RELEASE delivery")
                    except Exception as exc:
                        tx.db.execute("ROLLBACK TO delivery")
                        tx.db.execute("RELEASE delivery")
                        results.append(exc)
        except Exception as exc:  # the commit itself failed: nothing of this batch is stored
            results = [exc] * len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            future.get_loop().call_soon_threadsafe(_settle, future, result)


def _settle(future: asyncio.Future[Admitted], result: Admitted | BaseException) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
