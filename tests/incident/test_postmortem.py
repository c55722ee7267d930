"""From opening to postmortem with real runs (kernels), the runner's thread posts, and re-runs."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from runbook_kit import incident as inc
from runbook_kit.postmortem import write_postmortem
from runbook_kit.runner import run_notebook

PARAM_SECRET = "pm-secret-passed-as-a-parameter"

CRASH = """import runbook_kit as rk
rk.finding("pods OOMKilled under the lowered memory limit (256Mi)", severity="high", restarts=7)
rk.finding("<script>alert(1)</script> in a log line", severity="critical")
rk.finding("token given: " + api_token, severity="low")
plan = rk.Plan(action="rollout undo", target="deployment/api in namespace payments", backend="k8s",
               command="kubectl rollout undo deployment/api -n payments --to-revision=2",
               execute=lambda dry: {"ok": True})
rk.apply(plan, dry_run=dry_run)
"""
VERIFY = """import runbook_kit as rk
rk.finding("verdict: resolved — 3 check(s) passing", severity="info")
"""


def _notebook(path: Path, *sources: str, params: str) -> str:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# test"), cell,
                *(nbformat.v4.new_code_cell(s) for s in sources)]
    nbformat.write(nb, path)
    return str(path)


@pytest.fixture
def incident_with_runs(tmp_path, comms, store):
    inc.open_incident(title="payments/api crashlooping", severity="P1", incident_id="INC-PM",
                      services=["payments/api"], impact="card payments fail", store=store)
    crash = _notebook(tmp_path / "pod_crashloop.ipynb", CRASH,
                      params="dry_run = True  # plan only\napi_token = ''  # a secret\n")
    verify = _notebook(tmp_path / "verify_resolution.ipynb", VERIFY, params="dry_run = True  # unused\n")
    first = run_notebook(crash, parameters={"dry_run": False, "api_token": PARAM_SECRET}, incident="INC-PM",
                         store=store)
    second = run_notebook(verify, incident="INC-PM", store=store)
    assert (first.status, second.status) == ("succeeded", "succeeded"), first.failure
    inc.resolve("INC-PM", summary="rolled back to revision 2", store=store)
    return first, second


def test_postmortem_from_the_records(incident_with_runs, store, comms):
    crash, verify = incident_with_runs
    md_path, html_path = write_postmortem("INC-PM", store=store)
    md = Path(md_path).read_text()
    # the timeline, in time order, with each step
    timeline = md.split("## Timeline (UTC)")[1].split("## Root cause")[0]
    order = ["opened P1", "run started: pod_crashloop", "OOMKilled", "action applied: rollout undo",
             "run succeeded: pod_crashloop", "run started: verify_resolution",
             "run succeeded: verify_resolution", "resolved: rolled back to revision 2"]
    positions = [timeline.index(step) for step in order]
    assert positions == sorted(positions)
    # root cause: the finding, linked to its record cell, confirmed by the later verification run
    root = md.split("## Root cause")[1].split("## Resolution")[0]
    assert "OOMKilled under the lowered memory limit" in root
    assert f"({crash.html_path}#cell-id=" in root.replace("<", "").replace(">", "")
    assert "confirmed: [verification passed]" in root
    # resolution: the applied command; records: every run, both files
    resolution = md.split("## Resolution")[1].split("## What went well")[0]
    assert "`kubectl rollout undo deployment/api -n payments --to-revision=2`" in resolution
    for run in (crash, verify):
        assert run.notebook_path in md and run.html_path in md
    # the runner told the incident thread about each run, with the record link
    posts = [r["body"]["text"] for r in json.loads(
        __import__("urllib.request").request.urlopen(comms.url + "/_sandbox/received").read())
        if r["service"] == "slack" and r["body"].get("thread_ts")]
    assert any("runbook `pod_crashloop` succeeded" in p and crash.html_path in p for p in posts)
    # no secret anywhere; run data escaped in the HTML
    page = Path(html_path).read_text()
    for text in (md, page, json.dumps(posts), Path(store, "INC-PM", "incident.json").read_text()):
        assert PARAM_SECRET not in text
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_rerun_keeps_what_people_wrote(incident_with_runs, store):
    md_path, _ = write_postmortem("INC-PM", store=store)
    text = Path(md_path).read_text()
    prompt = "_What went well? (detection, tooling, people, communication)_"
    assert prompt in text and "<!-- human:went_well -->" in text
    Path(md_path).write_text(text.replace(prompt, "The crashloop runbook named the cause in 2 minutes."))
    inc.add_event("INC-PM", "note", "late note", store=store)
    md_path, html_path = write_postmortem("INC-PM", store=store)
    again = Path(md_path).read_text()
    assert "The crashloop runbook named the cause in 2 minutes." in again and prompt not in again
    assert "late note" in again  # the rest is refreshed
    assert "The crashloop runbook named the cause" in Path(html_path).read_text()
    assert "human:" not in Path(html_path).read_text()


def test_an_incident_spanning_days_has_dates_in_its_timeline(store):
    import datetime as dt

    from runbook_kit.store import open_store

    t0 = dt.datetime(2026, 11, 28, 23, 40, tzinfo=dt.UTC)
    inc.open_incident(title="slow burn", severity="P2", incident_id="INC-DAYS", commander="Ana", now=t0,
                      store=store)
    run = {"runbook": "db_connection_exhaustion", "started": inc.utc(t0 + dt.timedelta(minutes=30)),
           "updated": inc.utc(t0 + dt.timedelta(minutes=31)), "status": "failed",
           "failure": "cell 7: `rk.pg.snapshot()` — Unavailable", "notebook": None, "html": None,
           "findings": [], "actions": []}
    open_store(store).update_json("INC-DAYS/incident.json", lambda d: {**d, "runs": [run]})
    inc.resolve("INC-DAYS", summary="leak fixed", store=store, now=t0 + dt.timedelta(days=1, hours=2))
    md = Path(write_postmortem("INC-DAYS", store=store)[0]).read_text()
    assert "- **Date**: 2026-11-28 – 2026-11-30 (UTC)" in md
    assert "- **Duration**: 1 d 2 h 00 min" in md
    assert "- 2026-11-29 00:10  run started: db_connection_exhaustion" in md
    assert "run failed: db_connection_exhaustion — cell 7" in md  # a failed run is marked, not hidden
    assert "- **Incident commander**: Ana" in md and "human:commander" not in md
    assert "_No high or critical finding was recorded" in md
