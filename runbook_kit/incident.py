"""The incident around the runs: its state, its timeline, and what is due now.

An incident lives in the store beside its runs, in the same `<store>/<id>/incident.json` the runner
updates after every cell:

    {"incident": "INC-7", "runs": [...],                      # written by the runner
     "state": {"title", "severity", "status", "services", "impact", "commander", "current_action",
               "started", "detected", "opened", "resolved", "comms": {...}},
     "timeline": [{"ts", "kind", "text", ...details}, ...]}   # appended as things happen

Every write is one `store.update_json` (a file lock locally, a conditional put on S3), so runs and
commands writing at once lose no event. The timeline shown to people merges the explicit events with
what the runs recorded (run started / finished with status, findings, actions with their command), so a
run needs no second bookkeeping. Text is redacted before it is stored.

Deadlines count from `started` (when the incident began, which may precede the page); `due()` is
pure and takes `now`, so tests check them without sleeping. This module is also the Python API the
alert receiver opens incidents with: `open_incident(...)`, `add_event(...)`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from runbook_kit import severity as sev
from runbook_kit.errors import NotFound, ParameterError
from runbook_kit.params import validate_incident_id
from runbook_kit.redact import Redactor
from runbook_kit.store import Store, open_store

__all__ = [
    "STATUSES",
    "Due",
    "Event",
    "Incident",
    "add_event",
    "due",
    "list_incidents",
    "load",
    "open_incident",
    "resolve",
    "timeline",
    "update",
]

STATUSES = ("investigating", "identified", "monitoring", "resolved")
KEY = "incident.json"


def utc(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str | dt.datetime | None) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC) if value is not None else None
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ParameterError(f"not a time: {value!r} (use ISO 8601, e.g. 2026-11-30T09:15:00Z)") from None
    return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


@dataclasses.dataclass(frozen=True)
class Event:
    ts: dt.datetime
    kind: str  # opened, severity, status, alert, update, message, page, statuspage, note, done,
    #            escalated, resolved, run-started, run-finished, finding, action
    text: str
    details: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def line(self, *, with_date: bool = False) -> str:
        return f"{self.ts.strftime('%Y-%m-%d %H:%M' if with_date else '%H:%M')}  {self.text}"


@dataclasses.dataclass(frozen=True)
class Incident:
    id: str
    title: str
    severity: str
    status: str
    started: dt.datetime
    detected: dt.datetime
    opened: dt.datetime
    services: tuple[str, ...] = ()
    impact: str = ""
    commander: str | None = None
    current_action: str = ""
    resolved: dt.datetime | None = None
    comms: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    events: tuple[Mapping[str, Any], ...] = ()  # explicit timeline entries, as stored
    runs: tuple[Mapping[str, Any], ...] = ()  # the runner's entries

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Incident:
        state = data.get("state")
        if not state:
            raise NotFound("store", f"incident {data.get('incident')}", "has runs but was never opened")
        started = parse_time(state["started"])
        assert started is not None
        return cls(
            id=str(data.get("incident") or state.get("id")), title=state.get("title", ""),
            severity=state["severity"], status=state.get("status", "investigating"), started=started,
            detected=parse_time(state.get("detected")) or started,
            opened=parse_time(state.get("opened")) or started,
            services=tuple(state.get("services") or ()), impact=state.get("impact") or "",
            commander=state.get("commander"), current_action=state.get("current_action") or "",
            resolved=parse_time(state.get("resolved")), comms=state.get("comms") or {},
            events=tuple(data.get("timeline") or ()), runs=tuple(data.get("runs") or ()),
        )

    @property
    def is_open(self) -> bool:
        return self.status != "resolved"

    def duration(self, now: dt.datetime) -> dt.timedelta:
        return (self.resolved or now) - self.started


def _redactor() -> Redactor:
    return Redactor.from_environment()


def _event(kind: str, text: str, at: dt.datetime, **details: Any) -> dict[str, Any]:
    return {"ts": utc(at), "kind": kind, "text": text, **{k: v for k, v in details.items() if v is not None}}


def _now(now: dt.datetime | None) -> dt.datetime:
    return now.astimezone(dt.UTC) if now else dt.datetime.now(dt.UTC)


def _store(store: Store | str | None) -> Store:
    return store if store is not None and not isinstance(store, str) else open_store(store)


def open_incident(
    *, title: str, severity: str, incident_id: str | None = None, services: Sequence[str] = (),
    impact: str = "", commander: str | None = None, started: dt.datetime | str | None = None,
    detected: dt.datetime | str | None = None, alert: Mapping[str, Any] | None = None,
    store: Store | str | None = None, now: dt.datetime | None = None,
) -> Incident:
    """Open an incident (refused if that id is already open). `alert` is recorded as its first event."""
    now = _now(now)
    levels = sev.policy()
    if severity not in levels:
        raise ParameterError(f"severity {severity!r} is not one of {', '.join(levels)}")
    incident_id = validate_incident_id(incident_id or f"INC-{now:%Y%m%d-%H%M%S}")
    started_at = parse_time(started) or now
    detected_at = parse_time(detected) or started_at
    if started_at > now:
        raise ParameterError(f"the incident cannot start in the future ({utc(started_at)})")
    red = _redactor()

    def change(data: dict[str, Any]) -> dict[str, Any]:
        if data.get("state"):
            raise ParameterError(f"incident {incident_id} is already open (runbook incident status "
                                 f"{incident_id})")
        data.setdefault("incident", incident_id)
        data.setdefault("runs", [])
        data["state"] = red.value({
            "title": title, "severity": severity, "status": "investigating", "services": list(services),
            "impact": impact, "commander": commander, "current_action": "investigating",
            "started": utc(started_at), "detected": utc(detected_at), "opened": utc(now),
            "resolved": None, "comms": {},
        })
        timeline = data.setdefault("timeline", [])
        if alert:
            timeline.append(red.value(_event("alert", f"alert received: {alert.get('title', title)}",
                                             detected_at, alert=dict(alert))))
        timeline.append(red.value(_event("opened", f"opened {severity}: {title}", now,
                                         severity=severity, commander=commander)))
        return data

    return Incident.from_json(_store(store).update_json(f"{incident_id}/{KEY}", change))


def load(incident_id: str, *, store: Store | str | None = None) -> Incident:
    incident_id = validate_incident_id(incident_id)
    raw = _store(store).read(f"{incident_id}/{KEY}")
    if raw is None:
        raise NotFound("store", f"incident {incident_id}", "no such incident (runbook incident list)")
    import json

    return Incident.from_json(json.loads(raw))


def _modify(incident_id: str, store: Store | str | None,
            apply: Any) -> Incident:
    def change(data: dict[str, Any]) -> dict[str, Any]:
        if not data.get("state"):
            raise NotFound("store", f"incident {incident_id}", "no such incident (runbook incident open)")
        apply(data["state"], data.setdefault("timeline", []))
        return _redactor().value(data)

    return Incident.from_json(_store(store).update_json(f"{validate_incident_id(incident_id)}/{KEY}", change))


def add_event(incident_id: str, kind: str, text: str, *, store: Store | str | None = None,
              at: dt.datetime | None = None, **details: Any) -> Incident:
    """Append one event to the timeline (redacted): notes, alerts, messages sent, escalations."""
    ev = _event(kind, text, _now(at), **details)
    return _modify(incident_id, store, lambda state, timeline: timeline.append(ev))


def update(
    incident_id: str, *, status: str | None = None, severity: str | None = None,
    impact: str | None = None, current_action: str | None = None, commander: str | None = None,
    services: Sequence[str] | None = None, comms: Mapping[str, Any] | None = None,
    store: Store | str | None = None, now: dt.datetime | None = None,
) -> Incident:
    """Change the incident's fields; every change is a timeline event. `None` leaves a field as is."""
    now = _now(now)
    if status is not None and status not in STATUSES:
        raise ParameterError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    if severity is not None and severity not in sev.policy():
        raise ParameterError(f"severity {severity!r} is not one of {', '.join(sev.policy())}")

    def apply(state: dict[str, Any], timeline: list[dict[str, Any]]) -> None:
        if state.get("status") == "resolved" and status not in (None, "resolved"):
            timeline.append(_event("reopened", "reopened", now))
            state["resolved"] = None
        for field, value, kind in (("severity", severity, "severity"), ("status", status, "status"),
                                   ("impact", impact, "impact"), ("commander", commander, "commander"),
                                   ("current_action", current_action, None)):
            if value is not None and value != state.get(field):
                if kind:
                    timeline.append(_event(kind, f"{field}: {state.get(field) or '(none)'} → {value}", now,
                                           **{"from": state.get(field), "to": value}))
                state[field] = value
        if services is not None:
            state["services"] = list(services)
        if comms:
            state["comms"] = {**(state.get("comms") or {}), **comms}
        if status == "resolved" and not state.get("resolved"):
            state["resolved"] = utc(now)

    return _modify(incident_id, store, apply)


def resolve(incident_id: str, *, summary: str = "", store: Store | str | None = None,
            now: dt.datetime | None = None) -> Incident:
    now = _now(now)
    update(incident_id, status="resolved", current_action=summary or "resolved", store=store, now=now)
    return add_event(incident_id, "resolved", f"resolved{': ' + summary if summary else ''}",
                     store=store, at=now)


def list_incidents(*, store: Store | str | None = None) -> list[Incident]:
    """Every opened incident in the store, newest first (folders with only ad-hoc runs are skipped)."""
    import json

    st = _store(store)
    keys = st.incident_keys(KEY)
    found = []
    for key in keys:
        raw = st.read(key)
        data = json.loads(raw) if raw else {}
        if data.get("state"):
            found.append(Incident.from_json(data))
    return sorted(found, key=lambda i: i.started, reverse=True)


# --- the timeline ---------------------------------------------------------------------------------


def timeline(incident: Incident) -> list[Event]:
    """Explicit events plus what the runs recorded, in time order."""
    events: list[Event] = []
    for raw in incident.events:
        ts = parse_time(raw.get("ts"))
        if ts:
            details = {k: v for k, v in raw.items() if k not in ("ts", "kind", "text")}
            events.append(Event(ts, str(raw.get("kind", "note")), str(raw.get("text", "")), details))
    for run in incident.runs:
        name, links = run.get("runbook", "?"), {"notebook": run.get("notebook"), "html": run.get("html")}
        started = parse_time(run.get("started"))
        if started:
            events.append(Event(started, "run-started", f"run started: {name}", {**links, "run": run}))
        for key, kind in (("findings", "finding"), ("actions", "action")):
            for entry in run.get(key) or ():
                ts = parse_time(entry.get("ts")) or started
                if ts is None:
                    continue
                text = (f"{name}: action {entry.get('outcome')}: {entry.get('title')}" if kind == "action"
                        else f"{name}: finding ({entry.get('severity')}): {entry.get('title')}")
                events.append(Event(ts, kind, text, {**links, "entry": entry, "run": run}))
        finished = parse_time(run.get("updated"))
        if finished and run.get("status") not in (None, "running"):
            why = f" — {run['failure']}" if run.get("failure") else ""
            events.append(Event(finished, "run-finished", f"run {run.get('status')}: {name}{why}",
                                {**links, "run": run}))
    order = {"run-started": 0, "finding": 1, "action": 1, "run-finished": 2}
    return sorted(events, key=lambda e: (e.ts, order.get(e.kind, 1)))


# --- what is due now ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Due:
    now: dt.datetime
    level: sev.Level
    next_update: dt.datetime
    update_overdue: bool
    next_statuspage: dt.datetime | None
    statuspage_overdue: bool
    escalations_due: tuple[tuple[sev.Step, str], ...]  # reached, not yet recorded: (step, who)
    next_escalation: tuple[sev.Step, str, dt.datetime] | None
    actions_pending: tuple[sev.Action, ...]
    actions_deadline: dt.datetime
    actions_overdue: bool

    def lines(self) -> list[str]:
        def when(t: dt.datetime) -> str:
            minutes = round((t - self.now).total_seconds() / 60)
            return f"{-minutes} min overdue" if minutes < 0 else f"due in {minutes} min"

        out = [f"update: {'OVERDUE' if self.update_overdue else 'next'} at {self.next_update:%H:%M} UTC "
               f"({when(self.next_update)}; every {self.level.update_every:g} min for {self.level.name})"]
        if self.next_statuspage is not None:
            out.append(f"status page: {'OVERDUE' if self.statuspage_overdue else 'next'} at "
                       f"{self.next_statuspage:%H:%M} UTC ({when(self.next_statuspage)})")
        for step, who in self.escalations_due:
            out.append(f"escalate NOW: {who} (at +{step.after:g} min)")
        if self.next_escalation:
            step, who, at = self.next_escalation
            out.append(f"next escalation: {who} at {at:%H:%M} UTC ({when(at)})")
        for action in self.actions_pending:
            flag = "OVERDUE" if self.actions_overdue else f"by {self.actions_deadline:%H:%M} UTC"
            out.append(f"immediate action not done ({flag}): {action.text} [--done {action.key}]")
        return out


def _done_keys(incident: Incident) -> set[str]:
    """Immediate actions done: marked by hand, or shown by what the timeline holds."""
    done = {str(e.get("action")) for e in incident.events if e.get("kind") == "done"}
    kinds = {(e.get("kind"), e.get("outcome")) for e in incident.events}
    if ("page", "applied") in kinds:
        done |= {"page_oncall", "notify_oncall"}
    if ("statuspage", "applied") in kinds:
        done.add("status_page")
    if any(e.get("kind") == "message" and e.get("audience") == "leadership" for e in incident.events):
        done.add("notify_leadership")
    if incident.comms.get("slack"):
        done.add("join_channel")
    if incident.commander:
        done.add("commander")
    if incident.runs:
        done.add("investigate")
    if any(e.get("kind") == "note" for e in incident.events) or incident.runs:
        done.add("document")
    return done


def due(incident: Incident, *, now: dt.datetime, levels: Mapping[str, sev.Level] | None = None,
        contacts: Mapping[str, Any] | None = None) -> Due:
    """What the severity demands at `now`: updates, escalation, immediate actions. Pure."""
    levels = levels if levels is not None else sev.policy()
    level = levels[incident.severity]
    minutes = dt.timedelta(minutes=1)
    # an update that failed to go out told nobody: it does not reset the clock
    told = [e for e in incident.events if e.get("kind") == "update" and e.get("outcome") != "failed"]
    last_update = max([parse_time(e["ts"]) or incident.started for e in told], default=incident.started)
    next_update = last_update + level.update_every * minutes
    next_sp = None
    if level.statuspage_every is not None:
        last_sp = max([parse_time(e["ts"]) or incident.started for e in incident.events
                       if e.get("kind") == "statuspage" and e.get("outcome") == "applied"],
                      default=incident.started)
        next_sp = last_sp + level.statuspage_every * minutes
    # on-call opened it (or was paged by the alert that did): the first step is taken by opening
    escalated = {"oncall"} | {str(e.get("role")) for e in incident.events if e.get("kind") == "escalated"}
    reached = [s for s in level.escalation if incident.started + s.after * minutes <= now]
    pending = [s for s in level.escalation if incident.started + s.after * minutes > now]
    done = _done_keys(incident)
    deadline = incident.started + level.actions_within * minutes
    active = incident.is_open
    return Due(
        now=now, level=level, next_update=next_update, update_overdue=active and now > next_update,
        next_statuspage=next_sp, statuspage_overdue=active and next_sp is not None and now > next_sp,
        escalations_due=tuple((s, sev.contact(s.role, contacts)) for s in reached
                              if s.role not in escalated) if active else (),
        next_escalation=((pending[0], sev.contact(pending[0].role, contacts),
                          incident.started + pending[0].after * minutes) if pending and active else None),
        actions_pending=tuple(a for a in level.immediate_actions if a.key not in done) if active else (),
        actions_deadline=deadline, actions_overdue=active and now > deadline,
    )
