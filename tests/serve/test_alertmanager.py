"""A real Alertmanager (Debian package) → runbook serve → pod_crashloop on the sandbox → the record."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from serve_harness import wait_for

from runbook_kit import incident
from runbook_sandbox import timeline as tl

NS, DEP = tl.CRASHLOOP_NAMESPACE, tl.CRASHLOOP_DEPLOYMENT
ROUTE = {
    "name": "crashloop",
    "match": {"alertname": "KubePodCrashLooping"},
    "runbook": "pod_crashloop",
    "parameters": {"namespace": "{labels.namespace}", "deployment": "{labels.deployment}"},
    "incident": "alert-{labels.namespace}-{labels.deployment}",
}


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_two_alertmanagers_one_run_record_names_oomkilled_resolved_in_timeline(
    serve, alertmanager, fresh_sandbox
):
    sandbox = fresh_sandbox("crashloop", parts=("k8s",))
    server = serve(routes=[ROUTE], env=sandbox.env)
    webhook = f"{server.url}/webhook/alertmanager"
    pair = [alertmanager(webhook, server.dir / "token"), alertmanager(webhook, server.dir / "token")]
    started = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=3)
    alert = {
        "labels": {
            "alertname": "KubePodCrashLooping",
            "namespace": NS,
            "deployment": DEP,
            "severity": "critical",
        },
        "annotations": {"summary": f"pods of {NS}/{DEP} are crash looping"},
        "startsAt": _iso(started),
    }
    for am in pair:  # an HA pair: both notify the receiver of the same alert
        am.post_alerts([alert])

    def both_delivered():
        q = server.queue()
        try:
            rows = q.query("SELECT duplicates FROM alerts WHERE status = 'firing'")
        finally:
            q.close()
        return rows and rows[0]["duplicates"] >= 1

    wait_for(both_delivered, timeout=60, what="the notifications of both Alertmanagers")
    [run] = server.finished_runs(1, timeout=240)
    assert run["state"] == "succeeded", run
    assert json.loads(run["parameters"]) == {"namespace": NS, "deployment": DEP, "dry_run": True}
    nb = json.loads(Path(run["record"]).read_text())
    entries = nb["metadata"]["runbook_kit"]["entries"]
    cause = next(e for e in entries if e["kind"] == "finding" and e["severity"] == "high")
    assert cause["details"]["reason"] == "OOMKilled"
    actions = [e for e in entries if e["kind"] == "action"]
    assert actions and all(a["outcome"] == "dry-run" for a in actions), actions
    assert run["incident"] == f"alert-{NS}-{DEP}"

    for am in pair:  # the alert resolves
        am.post_alerts([{**alert, "endsAt": _iso(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))}])
    resolved = wait_for(
        lambda: [e for e in server.events(incident=run["incident"]) if e["kind"] == "resolved"],
        timeout=60,
        what="the resolved notification in the timeline",
    )
    assert "no run is started for a resolved alert" in resolved[0]["text"]
    assert len(server.runs()) == 1
    # the incident the route names was opened from the alert (severity label critical → P1), and the
    # resolution is in its timeline, which people and the postmortem read
    def in_incident():
        opened = incident.load(run["incident"], store=str(server.store))
        return opened if any(e["kind"] == "alert-resolved" for e in opened.events) else None

    opened = wait_for(in_incident, timeout=30, what="the resolution in the incident's timeline")
    assert (opened.severity, opened.status) == ("P1", "investigating")
    assert opened.title == f"pods of {NS}/{DEP} are crash looping"
    assert abs((opened.started - started).total_seconds()) < 1  # deadlines count from startsAt
    assert [r["runbook"] for r in opened.runs] == ["pod_crashloop"]
