"""A real `runbook serve` on 127.0.0.1: auth, bad input, dedupe, resolution, cooldown, storm, metrics."""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml
from serve_harness import PROBE_ROUTE, TOKEN, am_alert, am_payload, http, wait_for


def _probe(target: str, seconds: float = 0.0, **kw):
    return am_alert({"alertname": "Probe", "target": target}, annotations={"seconds": str(seconds)}, **kw)


def test_alert_becomes_a_dry_run_record_with_labels_as_parameters(serve):
    server = serve()
    code, answer = server.post("alertmanager", am_payload(_probe("db-7")))
    assert code == 202 and answer["stored"] == 1 and answer["queued"] == 1, answer

    [run] = server.finished_runs(1)
    assert run["state"] == "succeeded", run
    assert run["incident"] == "INC-db-7"
    assert json.loads(run["parameters"]) == {"target": "db-7", "seconds": 0.0, "dry_run": True}
    nb = json.loads(Path(run["record"]).read_text())
    meta = nb["metadata"]["runbook_kit"]
    assert meta["status"] == "succeeded"
    assert meta["parameters"] == {"target": "db-7", "seconds": 0.0, "dry_run": True}
    assert [e["title"] for e in meta["entries"]] == ["probed db-7 (dry_run=True)"]
    injected = next(c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", []))
    assert "target = 'db-7'" in "".join(injected["source"])
    kinds = [e["kind"] for e in server.events(incident="INC-db-7")]
    assert kinds == ["firing", "run-succeeded"]


def test_credentials_are_required_and_compared(serve):
    server = serve()
    body = am_payload(_probe("x"))
    assert server.post("alertmanager", body, token=None)[0] == 401
    assert server.post("alertmanager", body, token=TOKEN + "x")[0] == 401
    assert server.post("alertmanager", body, token=TOKEN[:-1])[0] == 401
    basic = base64.b64encode(f"alertmanager:{TOKEN}".encode()).decode()
    assert server.post("alertmanager", body, {"Authorization": f"Basic {basic}"}, token=None)[0] == 401
    assert server.post("grafana", body)[0] == 404  # not configured: not served
    assert server.runs() == []


def test_basic_credentials(serve, tmp_path):
    (tmp_path / "pw").write_text("s3cret-pw\n")
    server = serve(
        sources={"alertmanager": {"basic": {"username": "am", "password": {"file": str(tmp_path / "pw")}}}}
    )
    good = base64.b64encode(b"am:s3cret-pw").decode()
    wrong_user = base64.b64encode(b"xx:s3cret-pw").decode()
    assert (
        server.post(
            "alertmanager", am_payload(_probe("b")), {"Authorization": f"Basic {wrong_user}"}, token=None
        )[0]
        == 401
    )
    assert (
        server.post("alertmanager", am_payload(_probe("b")), {"Authorization": "Basic %%%"}, token=None)[0]
        == 401
    )
    assert (
        server.post("alertmanager", am_payload(_probe("b")), {"Authorization": f"Basic {good}"}, token=None)[
            0
        ]
        == 202
    )


def test_malformed_bodies_get_4xx_never_5xx(serve):
    server = serve(max_body=4096)
    bad = [
        b"",
        b"{nope",
        b"[]",
        b"null",
        b'"text"',
        "\udcff".encode("utf-8", "surrogatepass"),
        b"\xff\xfe\x00",
        json.dumps({"version": "3", "alerts": []}).encode(),
        json.dumps({"version": "4", "alerts": {}}).encode(),
        json.dumps({"version": "4", "alerts": [1]}).encode(),
        json.dumps({"version": "4", "alerts": [{"status": "firing"}]}).encode(),
        json.dumps({"version": "4", "alerts": [{**_probe("x"), "labels": {"a": 1}}]}).encode(),
        json.dumps({"version": "4", "alerts": [{**_probe("x"), "status": "maybe"}]}).encode(),
        json.dumps({"version": "4", "alerts": [{**_probe("x"), "startsAt": None}]}).encode(),
        json.dumps({"version": "4", "alerts": [{**_probe("x"), "fingerprint": 7}]}).encode(),
        json.dumps({"version": "4", "alerts": [{**_probe("x"), "annotations": []}]}).encode(),
    ]
    for body in bad:
        code, answer = server.post("alertmanager", body)
        assert code == 400, (body, code, answer)
        assert answer["error"].startswith("alertmanager:"), answer
    big = json.dumps(am_payload(_probe("x" * 5000))).encode()
    assert server.post("alertmanager", big)[0] == 413
    assert server.runs() == []
    assert server.post("alertmanager", am_payload(_probe("ok")))[0] == 202  # still serving


def test_same_notification_twice_gives_one_run(serve):
    server = serve()
    body = am_payload(_probe("dup"))
    answers = [server.post("alertmanager", body)[1] for _ in range(3)]
    assert [a["stored"] for a in answers] == [1, 0, 0]
    assert [a["duplicates"] for a in answers] == [0, 1, 1]
    server.finished_runs(1)
    assert len(server.runs()) == 1
    code, metrics = http("GET", f"{server.url}/metrics")
    text = metrics.decode()
    assert code == 200
    assert 'runbook_serve_alerts_deduplicated_total{source="alertmanager"} 2' in text
    assert 'runbook_serve_alerts_received_total{source="alertmanager"} 1' in text
    assert 'runbook_serve_runs{state="succeeded"} 1' in text
    assert "runbook_serve_queue_depth 0" in text
    assert 'runbook_serve_run_duration_seconds_count{runbook="probe"} 1' in text


def test_resolved_cancels_queued_runs_and_starts_nothing(serve):
    server = serve(concurrency=1)
    assert server.post("alertmanager", am_payload(_probe("slow", 8)))[0] == 202
    wait_for(lambda: any(r["state"] == "running" for r in server.runs()), timeout=30, what="the slow run")
    assert server.post("alertmanager", am_payload(_probe("queued")))[0] == 202
    code, answer = server.post("alertmanager", am_payload(_probe("queued", status="resolved")))
    assert code == 202 and answer["cancelled"] == 1 and answer["queued"] == 0, answer
    # a resolved alert of an episode that never fired here starts nothing either
    code, answer = server.post("alertmanager", am_payload(_probe("never-seen", status="resolved")))
    assert answer["queued"] == 0

    runs = server.finished_runs(2)
    by_target = {json.loads(r["parameters"])["target"]: r for r in runs}
    assert by_target["queued"]["state"] == "cancelled"
    assert "resolved" in by_target["queued"]["reason"]
    assert by_target["slow"]["state"] == "succeeded"
    assert len(server.runs()) == 2
    timeline = server.events(incident="INC-queued")
    assert [e["kind"] for e in timeline] == ["firing", "resolved"]
    assert "no run is started for a resolved alert" in timeline[-1]["text"]
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "runbook_kit.cli",
            "serve",
            "-c",
            str(server.dir / "serve.yaml"),
            "--timeline",
            "INC-queued",
        ],
        capture_output=True,
        text=True,
        env=server.env,
    )
    assert shown.returncode == 0, shown.stderr
    assert [line.split()[1] for line in shown.stdout.splitlines()] == ["firing", "resolved"]


def test_cooldown_per_episode(serve):
    server = serve(routes=[{**PROBE_ROUTE, "cooldown": 600}])
    assert server.post("alertmanager", am_payload(_probe("flap")))[1]["queued"] == 1
    server.post("alertmanager", am_payload(_probe("flap", status="resolved")))
    again = server.post("alertmanager", am_payload(_probe("flap", starts="2026-11-30T10:05:00Z")))[1]
    assert again["stored"] == 1 and again["queued"] == 0
    server.finished_runs(1)
    q = server.queue()
    try:
        decisions = [r["decision"] for r in q.query("SELECT decision FROM alerts ORDER BY id")]
    finally:
        q.close()
    assert decisions[0] == "queued run 1" and decisions[1] == "resolved"
    assert decisions[2].startswith("cooldown")


def test_storm_breaker_runs_diagnosis_only_and_notes_it_once(serve):
    route = {**PROBE_ROUTE, "parameters": {"target": "{labels.target}"}}
    server = serve(routes=[route], storm={"episodes_per_minute": 2}, concurrency=1)
    answers = [server.post("alertmanager", am_payload(_probe(f"s{i}")))[1] for i in range(6)]
    assert sum(a["stored"] for a in answers) == 6
    assert sum(a["queued"] for a in answers) == 3  # 2 before the storm, then one diagnosis per route
    storms = [e for e in server.events() if e["kind"] == "storm"]
    assert len(storms) == 1
    server.finished_runs(3)
    [diagnosis] = [r for r in server.runs() if r["reason"] == "storm breaker: diagnosis only"]
    assert json.loads(diagnosis["parameters"])["dry_run"] is True


def test_unroutable_alert_is_stored_with_the_reason(serve):
    server = serve()
    alert = am_alert({"alertname": "Probe"}, annotations={"seconds": "0"})  # no target label
    code, answer = server.post("alertmanager", am_payload(alert))
    assert code == 202 and answer == {"stored": 1, "duplicates": 0, "queued": 0, "cancelled": 0, "runs": []}
    [event] = [e for e in server.events() if e["kind"] == "unroutable"]
    assert "the alert has no label 'target'" in event["text"]


def test_truncated_alerts_are_noted(serve):
    server = serve()
    assert server.post("alertmanager", am_payload(_probe("t"), truncated=3))[0] == 202
    notes = [e["text"] for e in server.events() if e["kind"] == "note"]
    assert notes and "truncated 3 alert(s)" in notes[0]


def _check(tmp_path, config):
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.run(
        [sys.executable, "-m", "runbook_kit.cli", "serve", "-c", str(path), "--check-config"],
        capture_output=True,
        text=True,
    )


def test_check_config_validates_routes_against_the_runbooks(tmp_path):
    (tmp_path / "tok").write_text("t\n")
    sources = {"alertmanager": {"bearer_token": {"file": str(tmp_path / "tok")}}}
    route = {
        "name": "crash",
        "match": {"alertname": "KubePodCrashLooping"},
        "runbook": "pod_crashloop",
        "parameters": {"namespace": "{labels.namespace}", "deployment": "{labels.deployment}"},
    }
    ok = _check(tmp_path, {"sources": sources, "routes": [route]})
    assert ok.returncode == 0, ok.stderr
    assert "crash: pod_crashloop (dry run)" in ok.stdout

    cases = {
        "declares no parameter 'replicas'": {**route, "parameters": {"replicas": "{labels.x}"}},
        "decided by the route's 'mutate'": {**route, "parameters": {"dry_run": False}},
        "unknown placeholder {labels}": {**route, "parameters": {"namespace": "{labels}"}},
        "unknown placeholder {__import__('os')}": {
            **route,
            "parameters": {"namespace": "{__import__('os')}"},
        },
        "parameter 'revision' expects int": {**route, "parameters": {"revision": "latest"}},
        "no runbook named": {**route, "runbook": "nope"},
        "give 'match' or 'match_re'": {k: v for k, v in route.items() if k != "match"},
    }
    for needle, bad in cases.items():
        result = _check(tmp_path, {"sources": sources, "routes": [bad]})
        assert result.returncode == 2, (needle, result.stderr)
        assert needle in result.stderr, (needle, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr

    inline = _check(tmp_path, {"sources": {"alertmanager": {"bearer_token": "plain"}}, "routes": []})
    assert inline.returncode == 2 and "never inline" in inline.stderr
    unauthenticated = _check(tmp_path, {"sources": {"alertmanager": {}}, "routes": []})
    assert unauthenticated.returncode == 2 and "no unauthenticated mode" in unauthenticated.stderr


def test_503_only_when_the_alert_could_not_be_stored(serve):
    server = serve()
    blocker = sqlite3.connect(server.queue_path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the database: the alert cannot be stored
    try:
        code, answer = server.post("alertmanager", am_payload(_probe("retry-me")))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert code == 503 and "retry" in answer["error"]
    assert server.runs() == []
    code, answer = server.post("alertmanager", am_payload(_probe("retry-me")))  # the sender's retry
    assert code == 202 and answer["stored"] == 1 and answer["queued"] == 1
    _, metrics = http("GET", f"{server.url}/metrics")
    assert "runbook_serve_store_failures_total 1" in metrics.decode()


def test_the_receivers_credentials_never_reach_a_run(serve):
    env = {"RK_TEST_SERVE_TOKEN": TOKEN, "RK_TEST_VISIBLE": "1"}
    server = serve(env=env, sources={"alertmanager": {"bearer_token": {"env": "RK_TEST_SERVE_TOKEN"}}})
    assert server.post("alertmanager", am_payload(_probe("env")))[0] == 202
    [run] = server.finished_runs(1)
    [finding] = json.loads(Path(run["record"]).read_text())["metadata"]["runbook_kit"]["entries"]
    assert finding["details"]["env"] == ["RK_TEST_VISIBLE"]
