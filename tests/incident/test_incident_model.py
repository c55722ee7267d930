"""The incident in the store: state, timeline, what is due (deadlines checked with an injected `now`)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import pytest

from runbook_kit import incident as inc
from runbook_kit import severity as sev
from runbook_kit.errors import NotFound, ParameterError
from runbook_kit.store import open_store

T0 = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)


def test_default_policy_is_the_procedure():
    levels = sev.policy({})
    assert [(lv.update_every, lv.statuspage_every) for lv in levels.values()] == [
        (15, 30), (30, 60), (120, None), (1440, None)]
    assert [(s.role, s.after) for s in levels["P0"].escalation] == [
        ("oncall", 0), ("team_lead", 5), ("engineering_manager", 15), ("vp_engineering", 30), ("cto", 45)]
    assert [(s.role, s.after) for s in levels["P1"].escalation][-1] == ("engineering_manager", 120)
    assert levels["P0"].actions_within == 5 and len(levels["P0"].immediate_actions) == 5


def test_policy_overrides_from_configuration(configured):
    configured(severity={"P1": {"update_every": 20, "escalation": [{"role": "team_lead", "after": 10}]}})
    levels = sev.policy()
    assert levels["P1"].update_every == 20
    assert [(s.role, s.after) for s in levels["P1"].escalation] == [("team_lead", 10)]
    assert levels["P0"] == sev.DEFAULT_POLICY["P0"]
    with pytest.raises(ParameterError, match=r"unknown field.*update_evry"):
        sev.policy({"P1": {"update_evry": 5}})
    with pytest.raises(ParameterError, match="unknown level 'SEV9'"):
        sev.policy({"SEV9": {}})


def test_contacts_come_from_configuration_only(configured):
    assert sev.contact("team_lead") == "Bo Chen (team_lead, slack U02BO)"
    configured()
    assert "no contact configured" in sev.contact("cto", {})


def test_open_writes_state_and_timeline_beside_the_runs(store):
    opened = inc.open_incident(title="payments API failing", severity="P1", incident_id="INC-1",
                               services=["payments/api"], started=T0 - 5 * MIN, now=T0,
                               alert={"title": "HighErrorRate", "source": "alertmanager"})
    data = json.loads((Path(store) / "INC-1" / "incident.json").read_text())
    assert data["incident"] == "INC-1" and data["runs"] == []
    assert data["state"]["severity"] == "P1" and data["state"]["status"] == "investigating"
    assert [e["kind"] for e in data["timeline"]] == ["alert", "opened"]
    assert opened.started == T0 - 5 * MIN and opened.opened == T0
    with pytest.raises(ParameterError, match="already open"):
        inc.open_incident(title="again", severity="P1", incident_id="INC-1", now=T0)
    with pytest.raises(ParameterError, match="severity 'P9'"):
        inc.open_incident(title="x", severity="P9", incident_id="INC-2", now=T0)
    with pytest.raises(NotFound, match="no such incident"):
        inc.load("INC-404")


def test_updates_are_events_and_resolve_sets_the_time(store):
    inc.open_incident(title="t", severity="P2", incident_id="INC-3", now=T0)
    inc.update("INC-3", status="identified", severity="P1", now=T0 + 3 * MIN)
    inc.add_event("INC-3", "note", "customer support informed", at=T0 + 4 * MIN)
    done = inc.resolve("INC-3", summary="rolled back", now=T0 + 40 * MIN)
    kinds = [(e.kind, e.ts - T0) for e in inc.timeline(done)]
    assert kinds == [("opened", 0 * MIN), ("severity", 3 * MIN), ("status", 3 * MIN), ("note", 4 * MIN),
                     ("status", 40 * MIN), ("resolved", 40 * MIN)]
    assert done.resolved == T0 + 40 * MIN and done.duration(T0 + 90 * MIN) == 40 * MIN
    with pytest.raises(ParameterError, match="status 'fixed'"):
        inc.update("INC-3", status="fixed")


def test_timeline_merges_what_the_runs_recorded(store):
    inc.open_incident(title="t", severity="P1", incident_id="INC-4", now=T0)

    def runner_writes(data):  # what runner._update_incident writes (it keeps the other keys)
        run = {"runbook": "pod_crashloop", "started": inc.utc(T0 + 2 * MIN), "updated": inc.utc(T0 + 3 * MIN),
               "status": "succeeded", "notebook": "n.ipynb", "html": "n.html",
               "findings": [{"kind": "finding", "title": "OOMKilled", "severity": "high",
                             "ts": inc.utc(T0 + 2.5 * MIN)}],
               "actions": [{"kind": "action", "title": "rollout undo", "outcome": "dry-run",
                            "command": "kubectl rollout undo deployment/api", "ts": inc.utc(T0 + 2.7 * MIN)}]}
        return {**data, "runs": [*data.get("runs", []), run]}

    open_store(store).update_json("INC-4/incident.json", runner_writes)
    lines = [e.text for e in inc.timeline(inc.load("INC-4"))]
    assert lines == ["opened P1: t", "run started: pod_crashloop",
                     "pod_crashloop: finding (high): OOMKilled",
                     "pod_crashloop: action dry-run: rollout undo", "run succeeded: pod_crashloop"]


def test_a_p0_opened_16_minutes_ago_without_update_is_overdue_and_escalation_due(store):
    p0 = inc.open_incident(title="everything down", severity="P0", incident_id="INC-5", now=T0)
    due = inc.due(p0, now=T0 + 16 * MIN)
    assert due.update_overdue and due.next_update == T0 + 15 * MIN
    assert due.statuspage_overdue is False and due.next_statuspage == T0 + 30 * MIN
    assert [s.role for s, _ in due.escalations_due] == ["team_lead", "engineering_manager"]
    assert due.escalations_due[0][1] == "Bo Chen (team_lead, slack U02BO)"
    step, who, at = due.next_escalation
    assert (step.role, at) == ("vp_engineering", T0 + 30 * MIN) and who.startswith("Di Egan")
    assert due.actions_overdue and {a.key for a in due.actions_pending} == {
        "page_oncall", "notify_leadership", "war_room", "status_page", "commander"}
    text = "\n".join(due.lines())
    assert "update: OVERDUE at 09:15 UTC (1 min overdue" in text
    assert "escalate NOW: Cy Diaz (engineering_manager" in text
    # one minute earlier nothing about the update is late yet
    assert not inc.due(p0, now=T0 + 14 * MIN).update_overdue


def test_what_is_done_leaves_the_due_list(store):
    inc.open_incident(title="t", severity="P0", incident_id="INC-6", commander="Ana", now=T0)
    inc.add_event("INC-6", "update", "posted", at=T0 + 10 * MIN)
    inc.add_event("INC-6", "escalated", "escalated to team_lead", at=T0 + 6 * MIN, role="team_lead")
    inc.add_event("INC-6", "done", "done: war_room", at=T0 + 2 * MIN, action="war_room")
    due = inc.due(inc.load("INC-6"), now=T0 + 16 * MIN)
    assert not due.update_overdue and due.next_update == T0 + 25 * MIN
    assert [s.role for s, _ in due.escalations_due] == ["engineering_manager"]
    assert {a.key for a in due.actions_pending} == {"page_oncall", "notify_leadership", "status_page"}
    resolved = inc.resolve("INC-6", now=T0 + 20 * MIN)
    after = inc.due(resolved, now=T0 + 99 * MIN)  # nothing is due on a resolved incident
    assert not (after.update_overdue or after.statuspage_overdue or after.escalations_due
                or after.next_escalation or after.actions_pending)


def test_concurrent_writers_lose_no_event_locally(store):
    inc.open_incident(title="t", severity="P2", incident_id="INC-7", now=T0)

    def writer(n: int) -> None:
        for i in range(10):
            inc.add_event("INC-7", "note", f"w{n}-{i}")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    notes = {e.text for e in inc.timeline(inc.load("INC-7")) if e.kind == "note"}
    assert notes == {f"w{n}-{i}" for n in range(6) for i in range(10)}


def test_list_shows_opened_incidents_newest_first(store):
    inc.open_incident(title="old", severity="P3", incident_id="INC-A", now=T0)
    inc.open_incident(title="new", severity="P2", incident_id="INC-B", now=T0 + MIN)
    open_store(store).update_json("adhoc-20261130/incident.json", lambda d: {"runs": []})
    assert [i.id for i in inc.list_incidents()] == ["INC-B", "INC-A"]
