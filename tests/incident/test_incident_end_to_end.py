"""Issue 11's acceptance on the sandbox: open → crashloop dry run → update → rollback → verify →
resolve → postmortem, with the real runner, kernels, Kubernetes API server and Slack stand-in."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from runbook_kit import incident as inc
from runbook_kit.cli import cli
from runbook_kit.runner import run_notebook
from runbook_sandbox import timeline as tl

NS, DEP = tl.CRASHLOOP_NAMESPACE, tl.CRASHLOOP_DEPLOYMENT
SECRET = "e2e-secret-planted-in-a-parameter"


def _incident(*args: str) -> str:
    result = CliRunner().invoke(cli, ["incident", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_one_incident_from_the_alert_to_the_postmortem(fresh_sandbox, comms, store, tmp_path):
    k8s = fresh_sandbox("crashloop", parts=("k8s",))
    env = {**k8s.env}
    _incident("open", "--title", "payments/api crash-looping", "--severity", "P1", "--service", f"{NS}/{DEP}",
              "--impact", "card payments fail", "--id", "INC-E2E")

    triage = run_notebook("triage", parameters={"namespace": NS, "cloudtrail": False}, incident="INC-E2E",
                          store=store, env=env, timeout=600)
    suggested = {e.title.split(":")[0]: e for e in triage.findings}
    assert "suggested severity P1" in suggested and "next runbook" in suggested
    assert suggested["next runbook"].details["command"] == (
        f"runbook run pod_crashloop -p namespace {NS} -p deployment {DEP} --incident INC-E2E")

    diagnosis = run_notebook("pod_crashloop", parameters={"namespace": NS, "deployment": DEP},
                             incident="INC-E2E", store=store, env=env, timeout=600)
    assert diagnosis.status == "succeeded", diagnosis.failure
    cause = next(e for e in diagnosis.findings if e.severity == "high")
    assert "OOMKilled" in cause.title

    before = len(json.loads(urllib.request.urlopen(comms.url + "/_sandbox/received").read()))
    _incident("update", "INC-E2E", "--status", "identified", "--action", "rolling back deployment/api")
    sent = json.loads(urllib.request.urlopen(comms.url + "/_sandbox/received").read())[before:]
    assert {r["service"] for r in sent} == {"slack"}  # the thread, not the status page
    assert any("Status: IDENTIFIED" in r["body"].get("text", "") for r in sent)

    health = [f"{k8s.k8s_url}/_sandbox/health/{NS}/{DEP}"]  # the service answers from its state
    failing = run_notebook("verify_resolution", parameters={"namespace": NS, "deployment": DEP, "wait_s": 0,
                                                            "health_urls": health},
                           incident="INC-E2E", store=store, env=env, timeout=600)
    verdict = failing.findings[-1]
    assert "NOT resolved — 2 check(s) failing: health endpoint" in verdict.title, verdict.title

    fix = run_notebook("pod_crashloop", parameters={"namespace": NS, "deployment": DEP,
                                                    "mitigation": "rollback", "dry_run": False,
                                                    "verify_timeout_s": 60},
                       incident="INC-E2E", store=store, env=env, timeout=600)
    assert fix.status == "succeeded", fix.failure
    assert any(e.kind == "action" and e.outcome == "applied" for e in fix.entries)

    passing = run_notebook("verify_resolution", parameters={"namespace": NS, "deployment": DEP, "wait_s": 90,
                                                            "health_urls": health},
                           incident="INC-E2E", store=store, env=env, timeout=600)
    assert passing.findings[-1].title == "verdict: resolved — 2 check(s) passing", passing.findings[-1].title

    _incident("resolve", "INC-E2E", "--summary", "rolled back to the previous revision")
    md_path = _incident("postmortem", "INC-E2E").splitlines()[0]
    md = Path(md_path).read_text()
    timeline = md.split("## Timeline (UTC)")[1].split("## Root cause")[0]
    steps = ["opened P1", "triage: finding (high): suggested severity P1",
             "pod_crashloop: finding (high): ", "run succeeded: pod_crashloop",
             "status: investigating → identified", "verdict: NOT resolved", "action applied: rollout undo",
             "verify_resolution: finding (info): verdict: resolved", "run succeeded: verify_resolution",
             "resolved: rolled back"]
    at = 0
    for step in steps:  # each step appears after the one before: the timeline is in time order
        found = timeline.find(step, at)
        assert found >= 0, f"{step!r} missing after position {at}:\n{timeline}"
        at = found + 1
    root = md.split("## Root cause (draft from the records)")[1].split("## Resolution")[0]
    first_line = root.strip().splitlines()[0]
    assert "OOMKilled" in first_line and tl.CRASHLOOP_BAD_LIMIT in first_line
    assert diagnosis.html_path in first_line and "#cell-id=" in first_line and "confirmed" in first_line
    resolution = md.split("## Resolution")[1].split("## What went well")[0]
    assert "kubectl rollout undo deployment/api" in resolution
    for run in (triage, diagnosis, failing, fix, passing):
        assert run.notebook_path in md and run.html_path in md
    assert len(inc.load("INC-E2E").runs) == 5
