"""The latency runbook's AWS helpers against the sandbox: Logs Insights, CloudTrail, CodeDeploy, ALB."""

from __future__ import annotations

import datetime as dt

import pytest

from runbook_kit import aws, record
from runbook_kit.errors import NotFound
from runbook_sandbox import timeline as tl
from runbook_sandbox.aws.seed import CI_USER, CODEDEPLOY_APP

pytestmark = [pytest.mark.sandbox]

ACCEPTANCE = "fields @timestamp, @message | filter @message like /ERROR/ | sort @timestamp desc | limit 100"


def test_logs_insights_returns_only_error_lines_newest_first(use_sandbox):
    frame = aws.insights_query(log_group=tl.LATENCY_LOG_GROUP, query=ACCEPTANCE, minutes=180)
    assert list(frame.columns) == ["@timestamp", "@message"]
    assert len(frame) == 100
    assert frame["@message"].str.contains("ERROR").all()
    assert frame["@timestamp"].is_monotonic_decreasing
    assert frame.attrs["status"] == "Complete" and frame.attrs["statistics"]["recordsMatched"] >= 100


def test_error_timeline_rises_after_the_deploy(use_sandbox):
    frame = aws.error_timeline(log_group=tl.LATENCY_LOG_GROUP, minutes=180)
    deploy = tl.at(use_sandbox.anchor, tl.LATENCY_DEPLOY_AGO)
    before = frame[frame["bin"] < deploy - dt.timedelta(minutes=5)]["errors"]
    after = frame[frame["bin"] > deploy + dt.timedelta(minutes=5)]["errors"]
    assert after.median() > 10 * max(1, before.median())


def test_an_unknown_log_group_is_not_found(use_sandbox):
    with pytest.raises(NotFound, match="no-such-group"):
        aws.insights_query(log_group="/no-such-group", query=ACCEPTANCE)


class _NeverDone:
    """A Logs client whose query never completes (the sandbox always completes at once)."""

    def __init__(self) -> None:
        self.stopped: list[str] = []

    def start_query(self, **_: object) -> dict:
        return {"queryId": "q-1"}

    def get_query_results(self, *, queryId: str) -> dict:
        return {"status": "Running", "results": [[{"field": "@message", "value": "ERROR partial"}]]}

    def stop_query(self, *, queryId: str) -> dict:
        self.stopped.append(queryId)
        return {"success": True}


def test_a_query_that_outlives_its_timeout_is_stopped_and_said_to_be_partial():
    logs = _NeverDone()
    before = len(record.entries_this_session())
    frame = aws.insights_query(log_group="/g", query=ACCEPTANCE, timeout_s=0.05, poll_s=0.01, logs=logs)
    assert logs.stopped == ["q-1"] and frame.attrs["status"] == "Running" and len(frame) == 1
    [entry] = record.entries_this_session()[before:]
    assert "timed out" in entry.title and "partial" in entry.title and entry.severity == "medium"


def test_cloudtrail_filters_combine_server_and_client_side(use_sandbox):
    deploy = tl.at(use_sandbox.anchor, tl.LATENCY_DEPLOY_AGO)
    writes = aws.lookup_events(around=deploy, around_minutes=30, read_only=False)
    assert set(writes["event"]) == {"RegisterTaskDefinition", "CreateDeployment", "UpdateService"}
    assert not writes["read_only"].any() and writes["time"].is_monotonic_decreasing
    mine = aws.lookup_events(
        around=deploy, around_minutes=30, username=CI_USER, event_source="ecs.amazonaws.com"
    )
    assert set(mine["event"]) == {"RegisterTaskDefinition", "UpdateService"}
    created = aws.lookup_events(minutes=240, event_name="CreateDeployment")
    assert len(created) == 1 and created.iloc[0]["parameters"]["applicationName"] == CODEDEPLOY_APP


def test_codedeploy_lists_the_seeded_deployment_and_rejects_an_unknown_application(use_sandbox):
    frame = aws.deployments(application=CODEDEPLOY_APP, minutes=180)
    [row] = frame.to_dict(orient="records")
    assert row["status"] == "Succeeded" and row["group"] == "prod" and "payments client" in row["description"]
    deploy = tl.at(use_sandbox.anchor, tl.LATENCY_DEPLOY_AGO)
    assert abs(row["created"] - deploy) < dt.timedelta(seconds=2)
    assert aws.deployments(application=CODEDEPLOY_APP, minutes=30).empty, "the deploy is 75 minutes old"
    with pytest.raises(NotFound):
        aws.deployments(application="no-such-app")


def test_alb_frame_has_one_row_per_minute_with_latency_and_errors(use_sandbox):
    frame = aws.alb_metrics(load_balancer=tl.LATENCY_LOAD_BALANCER, minutes=180)
    assert frame["timestamp"].diff().dropna().eq(dt.timedelta(minutes=1)).all()
    assert frame[["avg_ms", "p99_ms", "requests"]].notna().all().all()
    assert (frame["p99_ms"] >= frame["avg_ms"]).all()
    arn = f"arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/{tl.LATENCY_LOAD_BALANCER}"
    assert len(aws.alb_metrics(load_balancer=arn, minutes=30)) == len(
        aws.alb_metrics(load_balancer=tl.LATENCY_LOAD_BALANCER, minutes=30)
    )
