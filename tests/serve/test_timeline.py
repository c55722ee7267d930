"""Alerts open incidents: a route's severity, the queue's timeline copied into incident.json (an outbox)."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

import pytest

from runbook_kit import incident as inc
from runbook_kit.serve import intake, timeline
from runbook_kit.serve.queue import Queue
from runbook_kit.serve.routes import ConfigError, load_routes
from runbook_kit.serve.sources import AlertEvent, Delivery
from runbook_kit.store import LocalStore

ROUTE = {
    "name": "crash",
    "match": {"alertname": "KubePodCrashLooping"},
    "runbook": "pod_crashloop",
    "parameters": {"namespace": "{labels.namespace}", "deployment": "{labels.deployment}"},
    "incident": "alert-{labels.namespace}-{labels.deployment}",
}
STARTS = "2026-11-30T10:00:00Z"


def _event(status="firing", severity="critical", fingerprint="f1", annotations=None, starts_at=STARTS):
    labels = {"alertname": "KubePodCrashLooping", "namespace": "shop", "deployment": "cart"}
    if severity is not None:
        labels["severity"] = severity
    return AlertEvent(
        source="alertmanager",
        status=status,
        labels=labels,
        annotations=annotations if annotations is not None else {"summary": "cart pods crash looping"},
        starts_at=starts_at,
        fingerprint=fingerprint,
        delivery_id=f"{status}-{severity}-{fingerprint}",
    )


@pytest.fixture
def queue(tmp_path):
    q = Queue(str(tmp_path / "q.db"))
    yield q
    q.close()


def _admit(queue, event, route=ROUTE, storm=100):
    return intake.admit(queue, Delivery(source=event.source, events=(event,)), routes=load_routes([route]),
                        storm_per_minute=storm)


def _spec(route, **event_kw):
    [r] = load_routes([route])
    return r.spec(_event(**event_kw))


# --- the route's severity and title -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "level"),
    [("critical", "P1"), ("page", "P1"), ("error", "P2"), ("warning", "P3"), ("info", "P3"),
     ("Critical", "P1"), ("bogus", "P2"), (None, "P2")],
)
def test_default_severity_maps_the_alerts_label_and_never_infers_p0(label, level):
    assert _spec(ROUTE, severity=label).severity == level


def test_route_severity_fixed_or_mapped_with_default():
    assert _spec({**ROUTE, "severity": "p0"}, severity="info").severity == "P0"
    mapped = {**ROUTE, "severity": {"critical": "P0", "warning": "P2", "default": "P3"}}
    assert _spec(mapped, severity="critical").severity == "P0"
    assert _spec(mapped, severity="warning").severity == "P2"
    assert _spec(mapped, severity="info").severity == "P3"


@pytest.mark.parametrize(
    ("value", "message"),
    [("P5", "'P5' is not a severity level"), ({"critical": "urgent"}, "severity.critical"),
     ({"default": "P9"}, "severity.default"), (3, "must be a level")],
)
def test_bad_route_severity_is_refused_at_load(value, message):
    with pytest.raises(ConfigError, match=message):
        load_routes([{**ROUTE, "severity": value}])


def test_title_from_template_else_summary_else_alertname():
    assert _spec(ROUTE).title == "cart pods crash looping"
    assert _spec(ROUTE, annotations={}).title == "KubePodCrashLooping (alertmanager)"
    titled = {**ROUTE, "title": "{labels.deployment} in {labels.namespace} is crash looping"}
    assert _spec(titled).title == "cart in shop is crash looping"
    # a template naming a label the alert lacks falls back; the alert still gets its run
    assert _spec({**ROUTE, "title": "{labels.team}"}).title == "cart pods crash looping"


# --- the outbox -------------------------------------------------------------------------------------


def test_firing_alert_opens_the_incident_with_its_severity_title_and_start(queue, tmp_path):
    store = LocalStore(str(tmp_path / "incidents"))
    assert _admit(queue, _event()).queued == 1
    assert timeline.forward_once(queue, store) == 1
    incident = inc.load("alert-shop-cart", store=store)
    assert incident.severity == "P1"
    assert incident.title == "cart pods crash looping"
    assert incident.status == "investigating"
    # the severity policy's deadlines count from the alert's startsAt
    assert incident.started == dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.UTC)
    kinds = [e["kind"] for e in incident.events]
    assert kinds == ["alert", "opened"]
    assert incident.events[0]["alert"]["labels"]["deployment"] == "cart"
    assert queue.outbox() == []
    # what is due is computed for the level the alert gave
    due = inc.due(incident, now=dt.datetime(2026, 11, 30, 10, 30, tzinfo=dt.UTC))
    assert due.level.name == "P1"


def test_later_alerts_raise_the_severity_never_lower_it_and_resolution_is_a_line(queue, tmp_path):
    store = LocalStore(str(tmp_path / "incidents"))
    route = {**ROUTE, "cooldown": 0}
    _admit(queue, _event(severity="warning", fingerprint="a"), route)
    _admit(queue, _event(severity="critical", fingerprint="b"), route)
    _admit(queue, _event(severity="info", fingerprint="c"), route)
    _admit(queue, _event(status="resolved", severity="critical", fingerprint="b"), route)
    timeline.forward_once(queue, store)
    incident = inc.load("alert-shop-cart", store=store)
    assert incident.severity == "P1"
    changes = [e for e in incident.events if e["kind"] == "severity"]
    assert [(e["from"], e["to"]) for e in changes] == [("P3", "P1")]
    resolved = [e for e in incident.events if e["kind"] == "alert-resolved"]
    assert len(resolved) == 1 and "no run is started for a resolved alert" in resolved[0]["text"]
    assert incident.status == "investigating"  # an alert resolving does not resolve the incident


def test_an_incident_a_person_opened_is_joined_not_reopened(queue, tmp_path):
    store = LocalStore(str(tmp_path / "incidents"))
    inc.open_incident(incident_id="alert-shop-cart", title="checkout down", severity="P0", store=store)
    _admit(queue, _event(severity="warning"))
    timeline.forward_once(queue, store)
    incident = inc.load("alert-shop-cart", store=store)
    assert (incident.title, incident.severity) == ("checkout down", "P0")
    assert [e["kind"] for e in incident.events][-1] == "alert"


def test_a_resolved_incident_is_reopened_by_the_alert_firing_again(queue, tmp_path):
    store = LocalStore(str(tmp_path / "incidents"))
    _admit(queue, _event(fingerprint="a"))
    timeline.forward_once(queue, store)
    inc.resolve("alert-shop-cart", summary="rolled back", store=store)
    _admit(queue, _event(fingerprint="b"), {**ROUTE, "cooldown": 0})
    timeline.forward_once(queue, store)
    incident = inc.load("alert-shop-cart", store=store)
    assert incident.status == "investigating"
    assert "reopened" in [e["kind"] for e in incident.events]


def test_run_lines_with_a_record_are_left_to_the_runs_own_entry_others_are_copied(queue, tmp_path):
    store = LocalStore(str(tmp_path / "incidents"))
    _admit(queue, _event(fingerprint="a"))
    _admit(queue, _event(fingerprint="b", severity="warning"), {**ROUTE, "name": "two", "cooldown": 0,
                                                                   "incident": "INC-2"})
    [first, second] = queue.query("SELECT id FROM runs ORDER BY id")
    queue.finish(first["id"], state="succeeded", exit_code=0, record="/r/a.ipynb", reason=None)
    queue.claim(owner="w", limit=5, lease=30)
    queue.started(second["id"])
    [interrupted] = queue.recover()  # the receiver died during the second run
    assert interrupted["id"] == second["id"]
    timeline.forward_once(queue, store)
    one = inc.load("alert-shop-cart", store=store)
    assert not [e for e in one.events if e["kind"].startswith("run-")]
    marks = queue.query("SELECT forwarded FROM events WHERE kind = 'run-succeeded'")
    assert [r["forwarded"] for r in marks] == [timeline.LEFT_OUT]
    two = inc.load("INC-2", store=store)
    [line] = [e for e in two.events if e["kind"] == "run-interrupted"]
    assert "not re-run automatically" in line["text"]


def test_a_store_that_cannot_be_written_delays_lines_and_loses_none(queue, tmp_path):
    blocked = tmp_path / "incidents"
    blocked.write_text("a file where the store's folder should be")
    _admit(queue, _event(fingerprint="a"))
    _admit(queue, _event(status="resolved", fingerprint="a"))
    with pytest.raises(OSError):
        timeline.forward_once(queue, LocalStore(str(blocked)))
    assert len(queue.outbox()) == 2
    blocked.unlink()
    store = LocalStore(str(blocked))
    assert timeline.forward_once(queue, store) == 2
    assert timeline.forward_once(queue, store) == 0
    kinds = [e["kind"] for e in inc.load("alert-shop-cart", store=store).events]
    assert kinds == ["alert", "opened", "alert-resolved"]


def test_secrets_in_alert_labels_do_not_reach_the_incident(queue, tmp_path):
    store = LocalStore(str(tmp_path / "incidents"))
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    _admit(queue, _event(annotations={"summary": "crash looping", "description": f"token={token}"}))
    timeline.forward_once(queue, store)
    raw = (tmp_path / "incidents" / "alert-shop-cart" / "incident.json").read_text()
    assert token not in raw and "crash looping" in raw


def test_a_queue_written_by_an_older_receiver_gains_the_outbox_columns(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, at REAL NOT NULL, episode TEXT, incident TEXT, "
        "kind TEXT NOT NULL, text TEXT NOT NULL);"
        "INSERT INTO events(at, incident, kind, text) VALUES (1.0, 'INC-1', 'resolved', 'old line');"
    )
    db.commit()
    db.close()
    q = Queue(str(path))
    try:
        [row] = q.outbox()
        assert (row["text"], row["forwarded"], row["details"]) == ("old line", 0, None)
        store = LocalStore(str(tmp_path / "incidents"))
        timeline.forward_once(q, store)
        incident = inc.load("INC-1", store=store)
        assert incident.severity == "P2"
        assert json.dumps(incident.events).count("old line") == 2  # the title says it, and the line
    finally:
        q.close()
