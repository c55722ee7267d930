"""A route that may mutate: the alert is re-checked with a real Alertmanager right before the run."""

from __future__ import annotations

import json
from pathlib import Path

from serve_harness import PROBE_ROUTE, am_alert, am_payload, free_port

MUTATE = {**PROBE_ROUTE, "name": "fix", "mutate": True}


def _alert(target):
    return {"labels": {"alertname": "Probe", "target": target}, "annotations": {"seconds": "0"}}


def test_mutating_run_only_while_the_alert_fires(serve, alertmanager, tmp_path):
    server = serve(start=False, routes=[MUTATE])
    am = alertmanager(f"{server.url}/webhook/alertmanager", server.dir / "token")
    server.config["sources"]["alertmanager"]["api_urls"] = [am.url]
    (server.dir / "serve.yaml").write_text(json.dumps(server.config))
    server.start()

    am.post_alerts([_alert("live")])  # Alertmanager notifies; it still holds the alert when re-asked
    [run] = server.finished_runs(1)
    assert run["state"] == "succeeded", run
    assert json.loads(run["parameters"])["dry_run"] is False
    record = json.loads(Path(run["record"]).read_text())["metadata"]["runbook_kit"]
    assert record["parameters"]["dry_run"] is False

    # posted straight to the receiver: Alertmanager does not know it, so it is not firing there
    code, answer = server.post(
        "alertmanager",
        am_payload(am_alert({"alertname": "Probe", "target": "ghost"}, annotations={"seconds": "0"})),
    )
    assert code == 202 and answer["queued"] == 1
    runs = server.finished_runs(2)
    ghost = next(r for r in runs if json.loads(r["parameters"])["target"] == "ghost")
    assert ghost["state"] == "cancelled" and "no longer active" in ghost["reason"], ghost
    assert ghost["record"] is None


def test_mutating_run_becomes_a_dry_run_when_it_cannot_recheck(serve):
    server = serve(
        routes=[MUTATE],
        sources={
            "alertmanager": {
                "bearer_token": {"file": "TOKEN"},
                "api_urls": [f"http://127.0.0.1:{free_port()}"],
            }
        },
        start=False,
    )
    server.config["sources"]["alertmanager"]["bearer_token"]["file"] = str(server.dir / "token")
    (server.dir / "serve.yaml").write_text(json.dumps(server.config))
    server.start()
    server.post(
        "alertmanager",
        am_payload(am_alert({"alertname": "Probe", "target": "blind"}, annotations={"seconds": "0"})),
    )
    [run] = server.finished_runs(1)
    assert run["state"] == "succeeded"
    assert run["reason"].startswith("dry run: cannot reach Alertmanager"), run
    record = json.loads(Path(run["record"]).read_text())["metadata"]["runbook_kit"]
    assert record["parameters"]["dry_run"] is True
