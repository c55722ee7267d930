"""Correlating a spike start with change events, on plain frames: the shapes an on-call engineer meets."""

from __future__ import annotations

import pandas as pd
import pytest

from runbook_kit import record
from runbook_kit.aws.alb import Spike
from runbook_kit.investigate import change_events, diagnose_cause, find_cause, plan_rollback_of_cause
from runbook_kit.investigate.changes import COLUMNS

START = pd.Timestamp("2026-11-29T03:21:00Z")


def at(minutes: float) -> pd.Timestamp:
    return START + pd.Timedelta(minutes=minutes)


def change(minutes: float, source: str, kind: str, what: str, **extra) -> dict:
    return {
        "time": at(minutes),
        "source": source,
        "kind": kind,
        "change": what,
        "who": extra.pop("who", ""),
        "target": extra.pop("target", ""),
        "ref": extra.pop("ref", what),
        **extra,
    }


def frame(*rows: dict) -> pd.DataFrame:
    df = pd.DataFrame(list(rows), columns=COLUMNS)
    df["time"] = pd.to_datetime(df["time"], utc=True)
    return df


def test_no_change_near_the_spike_names_no_cause_and_points_at_the_nearest_one():
    changes = frame(change(-120, "cloudtrail", "write", "PutBucketPolicy"))
    result = find_cause(changes, start=START, tolerance_minutes=30)
    assert result.cause is None and result.candidates.empty
    assert (
        "no change in the 30 min" in result.why
        and "PutBucketPolicy" in result.why
        and "120 min" in result.why
    )


def test_a_deploy_just_before_the_spike_is_the_cause():
    changes = frame(
        change(-0.7, "codedeploy", "deploy", "deploy d-1", ref="d-1"),
        change(-60, "cloudtrail", "write", "PutBucketPolicy"),
    )
    result = find_cause(changes, start=START)
    assert result.cause is not None and result.cause["ref"] == "d-1"
    assert result.offset_min == pytest.approx(-0.7) and result.related == []
    assert list(result.candidates["change"]) == ["deploy d-1"], "outside the tolerance: not a candidate"


def test_of_two_separate_changes_the_closest_before_the_spike_wins():
    changes = frame(
        change(-25, "codedeploy", "deploy", "deploy d-old", ref="d-old"),
        change(-2, "cloudtrail", "write", "ModifyDBParameterGroup"),
    )
    result = find_cause(changes, start=START, group_minutes=5)
    assert result.cause["change"] == "ModifyDBParameterGroup"
    assert result.related == [], "25 minutes apart: two bursts, not one"
    assert result.candidates["likely_cause"].tolist() == [False, True]


def test_within_one_release_burst_the_deploy_is_named_not_the_last_api_call():
    changes = frame(
        change(-3.7, "cloudtrail", "write", "RegisterTaskDefinition"),
        change(-0.7, "cloudtrail", "write", "CreateDeployment"),
        change(-0.7, "codedeploy", "deploy", "deploy d-2", ref="d-2"),
        change(
            -0.7,
            "kubernetes",
            "rollout",
            "rollout to revision 3",
            revision=3,
            previous_revision=2,
            target="deployment/checkout in storefront",
        ),
        change(-0.4, "cloudtrail", "write", "UpdateService"),
    )
    result = find_cause(changes, start=START)
    assert result.cause["ref"] == "d-2"
    assert {r["change"] for r in result.related} == {
        "RegisterTaskDefinition",
        "CreateDeployment",
        "rollout to revision 3",
        "UpdateService",
    }
    assert result.members("kubernetes")[0]["previous_revision"] == 2


def test_a_change_in_the_spike_start_minute_bin_counts_one_after_the_slack_does_not():
    assert find_cause(frame(change(0.5, "kubernetes", "rollout", "r")), start=START).cause is not None
    assert find_cause(frame(change(10, "kubernetes", "rollout", "r")), start=START).cause is None


def test_correlate_records_the_cause_with_its_evidence():
    spike = Spike(detected=True, metric="p99_ms", baseline=250, level=3000, start=START)
    changes = frame(
        change(-0.7, "codedeploy", "deploy", "deploy d-3", ref="d-3", who="ci"),
        change(-0.7, "kubernetes", "rollout", "rollout 3", revision=3, previous_revision=2),
    )
    before = len(record.entries_this_session())
    diagnose_cause(spike=spike, changes=changes)
    [entry] = record.entries_this_session()[before:]
    assert entry.severity == "high" and entry.title.startswith("Likely cause: deploy d-3")
    assert entry.details["deployment_id"] == "d-3" and entry.details["k8s_revision"] == 3
    assert entry.details["minutes_before_spike"] == pytest.approx(0.7)


def test_without_a_spike_there_is_nothing_to_correlate():
    before = len(record.entries_this_session())
    result = diagnose_cause(spike=Spike(detected=False, metric="p99_ms", baseline=250.0), changes=frame())
    assert result.cause is None
    [entry] = record.entries_this_session()[before:]
    assert entry.severity == "info" and "nothing to correlate" in entry.title


def test_a_cause_that_is_not_a_rollout_of_the_deployment_gives_a_no_op_plan_with_the_manual_command():
    changes = frame(change(-1, "codedeploy", "deploy", "deploy d-4", ref="d-4", target="app/prod"))
    plan = plan_rollback_of_cause(cause=find_cause(changes, start=START), namespace="shop", deployment="api")
    assert plan.nothing_to_do and not plan.targets
    assert "aws deploy stop-deployment --deployment-id d-4" in plan.reason


def test_change_events_take_the_deploys_author_from_cloudtrail():
    deploys = pd.DataFrame(
        [
            {
                "deployment_id": "d-5",
                "application": "app",
                "group": "prod",
                "status": "Succeeded",
                "created": at(-1),
                "completed": at(4),
                "creator": "user",
                "description": "v2",
            }
        ]
    )
    trail = pd.DataFrame(
        [
            {
                "time": at(-1),
                "event": "CreateDeployment",
                "user": "ci-bot",
                "source": "codedeploy.amazonaws.com",
                "resources": "app, prod",
                "read_only": False,
                "parameters": {"deploymentId": "d-5"},
                "event_id": "e1",
            },
            {
                "time": at(-2),
                "event": "DescribeStacks",
                "user": "bob",
                "source": "cloudformation.amazonaws.com",
                "resources": "",
                "read_only": True,
                "parameters": {},
                "event_id": "e2",
            },
        ]
    )
    rollouts = pd.DataFrame(
        [
            {"revision": 1, "created": at(-9000), "change_cause": "v1", "images": "x:1"},
            {"revision": 2, "created": at(-1), "change_cause": "", "images": "x:2"},
        ]
    )
    changes = change_events(deploys=deploys, trail=trail, rollouts=rollouts, namespace="ns", deployment="api")
    deploy = changes[changes["source"] == "codedeploy"].iloc[0]
    assert deploy["who"] == "ci-bot" and deploy["ref"] == "d-5"
    assert set(changes["source"]) == {"codedeploy", "cloudtrail", "kubernetes"}
    assert "DescribeStacks" not in " ".join(changes["change"]), "read-only events are not changes"
    latest = changes[changes["source"] == "kubernetes"].iloc[0]
    assert latest["revision"] == 2 and latest["previous_revision"] == 1 and latest["change"].endswith("x:2")
