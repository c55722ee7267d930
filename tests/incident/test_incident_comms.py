"""Messages through the real SDKs to the sandbox's Slack / Statuspage / PagerDuty server."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request

from click.testing import CliRunner

from runbook_kit import comms as rk_comms
from runbook_kit import incident as inc
from runbook_kit.cli import cli


def received(server, service=None):
    with urllib.request.urlopen(server.url + "/_sandbox/received") as resp:
        got = json.loads(resp.read())
    return [r for r in got if service is None or r["service"] == service]


def invoke(*args):
    return CliRunner().invoke(cli, ["incident", *args], catch_exceptions=False)


def test_open_starts_a_thread_pages_dry_run_and_plans_the_status_page(comms):
    result = invoke("open", "--title", "checkout 5xx", "--severity", "P1", "--service", "payments/api",
                    "--impact", "30% of card payments fail", "--id", "INC-10")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == "INC-10"
    slack = received(comms, "slack")
    header, update = slack[0]["body"], slack[1]["body"]
    assert header["channel"] == "C0INCIDENTS" and "thread_ts" not in header
    assert header["text"].startswith("🟠 P1 · INVESTIGATING · INC-10: checkout 5xx")
    assert update["thread_ts"] and "Next update in: 30 minutes" in update["text"]
    assert slack[2]["path"] == "/api/chat.update"
    # P1 leadership: the engineering manager gets the update directly
    assert any(r["body"].get("channel") == "U03CY" for r in slack)
    # external messages were shown and recorded, not sent
    assert received(comms, "statuspage") == [] and received(comms, "pagerduty") == []
    events = {e.kind: e for e in inc.timeline(inc.load("INC-10"))}
    assert events["statuspage"].details["outcome"] == "dry-run"
    assert events["statuspage"].details["command"].startswith("curl -X POST")
    assert "$STATUSPAGE_API_KEY" in events["statuspage"].details["command"]
    assert events["page"].details["outcome"] == "dry-run"


def test_update_posts_every_field_to_the_thread_and_not_to_the_status_page(comms):
    assert invoke("open", "--title", "checkout 5xx", "--severity", "P1", "--service", "payments/api",
                  "--id", "INC-11").exit_code == 0
    before = len(received(comms, "slack"))
    result = invoke("update", "INC-11", "--status", "identified", "--impact", "card payments fail",
                    "--action", "rolling back deployment/api")
    assert result.exit_code == 0, result.output
    posted = [r for r in received(comms, "slack")[before:] if r["body"].get("thread_ts")]
    text = posted[0]["body"]["text"]
    for field in ("Severity: P1", "Status: IDENTIFIED", "Impact: card payments fail", "Started At: ",
                  "Services Affected: payments/api", "Current Action: rolling back deployment/api",
                  "Next update in: 30 minutes"):
        assert field in text
    header = [r for r in received(comms, "slack") if r["path"] == "/api/chat.update"][-1]
    assert "IDENTIFIED" in header["body"]["text"]
    assert received(comms, "statuspage") == []
    assert "statuspage: dry-run" in result.stderr
    # the thread is one: every reply hangs off the first message
    assert len({r["body"]["thread_ts"] for r in received(comms, "slack") if r["body"].get("thread_ts")}) == 1


def test_send_external_creates_then_updates_the_status_page_incident_and_resolves_the_page(comms):
    assert invoke("open", "--title", "all down", "--severity", "P0", "--id", "INC-12",
                  "--send-external").exit_code == 0
    assert invoke("update", "INC-12", "--status", "monitoring", "--send-external").exit_code == 0
    assert invoke("resolve", "INC-12", "--summary", "rolled back", "--send-external").exit_code == 0
    sp = received(comms, "statuspage")
    assert [(r["method"], r["authorization"]) for r in sp] == [("POST", "OAuth"), ("PATCH", "OAuth"),
                                                                ("PATCH", "OAuth")]
    assert sp[0]["body"]["incident"]["name"] == "all down"
    assert [r["body"]["incident"]["status"] for r in sp] == ["investigating", "monitoring", "resolved"]
    assert "rolled back" not in json.dumps(sp)  # the public text carries no internal action
    pd = received(comms, "pagerduty")
    assert [(r["body"]["event_action"], r["body"]["dedup_key"]) for r in pd] == [
        ("trigger", "INC-12"), ("resolve", "INC-12")]
    assert pd[0]["body"]["payload"]["severity"] == "critical"
    done = inc.due(inc.load("INC-12"), now=dt.datetime.now(dt.UTC))
    assert done.actions_pending == ()


def test_slack_429_retry_after_is_honoured(comms):
    inc.open_incident(title="t", severity="P2", incident_id="INC-13")
    req = urllib.request.Request(comms.url + "/_sandbox/rate_limit", method="POST",
                                 data=json.dumps({"count": 1, "retry_after": 1}).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req).read()
    assert rk_comms.post_update("INC-13") == [("slack", "sent")]
    first, second = received(comms, "slack")[:2]
    assert first["body"] == second["body"] and second["at"] - first["at"] >= 0.9


def test_unreachable_slack_is_recorded_and_the_command_exits_3(comms, monkeypatch):
    monkeypatch.setenv("RUNBOOK_SLACK_API_URL", "http://127.0.0.1:9/api/")
    result = invoke("open", "--title", "t", "--severity", "P3", "--id", "INC-14")
    assert result.exit_code == 3
    assert "slack: failed" in result.stderr
    assert inc.load("INC-14").title == "t"  # the incident exists all the same
    kinds = [(e.kind, e.details.get("outcome")) for e in inc.timeline(inc.load("INC-14"))]
    assert ("update", "failed") in kinds
    failed = inc.load("INC-14")  # an update that did not go out does not reset the clock
    assert inc.due(failed, now=failed.opened).next_update == failed.started + dt.timedelta(hours=24)


def test_secrets_never_reach_a_message_or_the_timeline(comms, monkeypatch):
    secret = "hunter2-very-secret-value"
    monkeypatch.setenv("ORDERS_DB_PASSWORD", secret)
    assert invoke("open", "--title", f"db down, password={secret}", "--severity", "P1", "--id", "INC-15",
                  "--impact", f"login with {secret} fails", "--send-external").exit_code == 0
    assert invoke("note", "INC-15", f"tried {secret}").exit_code == 0
    everything = json.dumps(received(comms)) + json.dumps(
        [e.text for e in inc.timeline(inc.load("INC-15"))]) + json.dumps(inc.load("INC-15").events)
    assert secret not in everything
    assert "REDACTED" in everything


def test_commands_refuse_bad_input_with_one_line(comms):
    for args, message in ((["status", "INC-404"], "no such incident"),
                          (["open", "--title", "t", "--severity", "P7"], "severity 'P7'"),
                          (["note", "INC-404"], "nothing to note"),
                          (["open", "--title", "t", "--severity", "P1", "--id", "../x"], "not allowed")):
        result = invoke(*args)
        assert result.exit_code == 2, args
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_status_shows_what_is_due(comms):
    started = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=16)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert invoke("open", "--title", "down", "--severity", "P0", "--id", "INC-16", "--started", started,
                  "--commander", "Ana").exit_code == 0
    # opening posted an update: 16 min after the start the next is due 15 min after that post
    out = invoke("status", "INC-16").stdout
    assert "escalate NOW: Bo Chen (team_lead" in out and "escalate NOW: Cy Diaz" in out
    assert "next escalation: Di Egan" in out
    assert "immediate action not done (OVERDUE): open a war room [--done war_room]" in out
    assert invoke("note", "INC-16", "--done", "war_room", "--escalated", "team_lead").exit_code == 0
    out = invoke("status", "INC-16").stdout
    assert "war room" not in out and "escalate NOW: Bo Chen" not in out
    assert invoke("list").stdout.startswith("INC-16  P0  investigating")


def test_without_slack_the_update_is_printed_for_a_person_to_post(store):
    result = invoke("open", "--title", "search slow", "--severity", "P2", "--service", "search/api",
                    "--id", "INC-17")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "INC-17" and "Status: INVESTIGATING" in result.stdout
    assert "Next update in: 120 minutes" in result.stdout
    assert "slack: not configured" in result.stderr
    opened = inc.load("INC-17")
    shown = [e for e in opened.events if e.get("kind") == "update"]
    assert shown[0]["outcome"] == "shown" and shown[0]["text"].startswith("update (INVESTIGATING): shown")
    # shown to a person counts as told: the next update is due a cadence after it
    assert inc.due(opened, now=opened.opened).next_update == inc.parse_time(shown[0]["ts"]) + dt.timedelta(
        minutes=120)


def test_note_refuses_unknown_action_keys_and_roles(store):
    inc.open_incident(title="t", severity="P1", incident_id="INC-18")
    typo = invoke("note", "INC-18", "--done", "page_on_call")
    assert typo.exit_code == 2
    assert "not an immediate action of P1 (one of: investigate, join_channel" in typo.stderr
    assert invoke("note", "INC-18", "--escalated", "ceo").exit_code == 2
    assert [e for e in inc.load("INC-18").events if e.get("kind") in ("done", "escalated")] == []
    assert invoke("note", "INC-18", "--done", "page_oncall", "--escalated", "team_lead").exit_code == 0
