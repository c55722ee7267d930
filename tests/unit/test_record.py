from __future__ import annotations

import pandas as pd
import pytest

from runbook_kit import record


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
