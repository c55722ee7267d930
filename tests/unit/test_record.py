from __future__ import annotations

import pandas as pd
import pytest

from runbook_kit import record
from runbook_kit.errors import Forbidden, NotConfigured, NotFound, Throttled, Unavailable


def test_entries_round_trip_through_notebook_outputs():
    entry = record.finding(
        "3 pods OOMKilled",
        severity="high",
        pods=pd.DataFrame({"pod": ["a", "b"]}),
        limit="256Mi",
        ts=pd.Timestamp("2026-11-29T01:00:00Z"),
    )
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "outputs": [
                    {"output_type": "display_data", "data": {record.MIME: entry.to_json(), "text/plain": "x"}}
                ],
            }
        ]
    }
    [back] = record.read_entries(nb)
    assert back == entry
    assert back.details["pods"] == {"rows": [{"pod": "a"}, {"pod": "b"}], "total_rows": 2}
    assert back.ts.endswith("Z") and back.details["ts"].startswith("2026-11-29T01:00:00")


def test_severity_is_checked():
    with pytest.raises(ValueError, match="severity"):
        record.finding("x", severity="urgent")


def test_entries_are_redacted_when_written(monkeypatch):
    monkeypatch.setenv("SOME_API_TOKEN", "tok-1234567890")
    entry = record.event("paged with tok-1234567890", url="postgresql://a:pw123456@h/d")
    assert "tok-1234567890" not in entry.title and "pw123456" not in entry.details["url"]


def test_summary_lists_findings_by_severity_and_actions():
    entries = [
        record.Entry("finding", "minor", "low"),
        record.Entry("finding", "cause", "critical"),
        record.Entry("action", "rollout undo", outcome="dry-run", command="kubectl rollout undo"),
    ]
    text = record.summary_markdown(
        entries, status="failed", runbook="pod_crashloop", incident="INC-1", failure="cell 4 failed"
    )
    assert text.index("cause") < text.index("minor")
    assert "FAILED" in text and "cell 4 failed" in text and "`kubectl rollout undo`" in text


def test_a_gap_names_what_is_missing_why_and_the_fix():
    entry = record.gap("CloudTrail events", why="aws lookup events: permission denied",
                       fix="grant: cloudtrail:LookupEvents")
    assert entry.kind == "gap" and entry.one_line() == (
        "[gap] CloudTrail events: aws lookup events: permission denied")
    text = record.summary_markdown([record.Entry("finding", "cause", "high"), entry], status="succeeded",
                                   runbook="api_latency_spike", incident="INC-1")
    assert "⚠️ completed with gaps" in text and "✅" not in text
    assert "## Gaps" in text
    assert ("**CloudTrail events**: aws lookup events: permission denied — fix: grant: "
            "cloudtrail:LookupEvents") in text
    assert record.has_gaps([entry]) and record.status_of([entry]) == "completed-with-gaps"
    assert record.status_of([record.Entry("finding", "x")]) == "succeeded"
    failed = record.summary_markdown([entry], status="failed", runbook="r", incident="i")
    assert "FAILED" in failed and "## Gaps" in failed  # a failure stays a failure


@pytest.mark.parametrize("error", [
    Forbidden("aws", "lookup events", "AccessDenied: not authorized to perform cloudtrail:LookupEvents"),
    Unavailable("aws", "lookup events", "cannot connect to 10.0.0.1:443 (timed out)"),
    Throttled("aws", "lookup events", "ThrottlingException: Rate exceeded"),
    NotConfigured("aws", "create cloudtrail client", "no AWS credentials found; set AWS_PROFILE"),
])
def test_a_read_step_turns_partial_access_into_a_gap_and_an_empty_frame(error):
    calls = []

    @record.read_step("CloudTrail events in {region}", fix="cloudtrail:LookupEvents",
                      columns=["time", "event", "user"])
    def lookup(*, region: str) -> pd.DataFrame:
        calls.append(region)
        raise error

    frame = lookup(region="eu-west-1")
    assert calls == ["eu-west-1"] and list(frame.columns) == ["time", "event", "user"] and frame.empty
    assert frame.attrs["gap"]["what"] == "CloudTrail events in eu-west-1"
    assert record.missing(frame, pd.DataFrame()) == [f"CloudTrail events in eu-west-1: {error}"]
    last = record.entries_this_session()[-1]
    assert last.kind == "gap" and last.details["why"] == str(error)
    assert last.details["fix"].endswith("cloudtrail:LookupEvents") and last.details["step"] == "lookup"


def test_not_found_and_other_errors_stay_errors():
    @record.read_step("deployment", columns=["x"])
    def read() -> pd.DataFrame:
        raise NotFound("k8s", "read deployment payments/api", 'deployments.apps "api" not found')

    before = len(record.entries_this_session())
    with pytest.raises(NotFound):
        read()
    with pytest.raises(ZeroDivisionError), record.degrade("anything"):
        raise ZeroDivisionError
    assert len(record.entries_this_session()) == before


def test_degrade_records_the_gap_and_goes_on():
    with record.degrade("metrics.k8s.io usage", fix="serve metrics-server") as step:
        raise Unavailable("k8s", "list pod metrics", "503 service unavailable")
    assert step.gap is not None and step.gap["fix"].endswith("serve metrics-server")
    assert record.entries_this_session()[-1].title == "metrics.k8s.io usage"
    with record.degrade("fine") as ok:
        pass
    assert ok.gap is None


def test_gap_frame_records_the_gap_and_marks_the_empty_frame():
    before = len(record.entries_this_session())
    frame = record.gap_frame(["a", "b"], what="5xx rate of app/web/1", why="no datapoint in 60 min",
                             fix="check the parameter load_balancer")
    [entry] = record.entries_this_session()[before:]
    assert entry.kind == "gap" and entry.details["fix"] == "check the parameter load_balancer"
    assert list(frame.columns) == ["a", "b"] and frame.empty
    assert record.missing(frame) == ["5xx rate of app/web/1: no datapoint in 60 min"]
    assert record.status_of([entry]) == record.GAPS_STATUS
