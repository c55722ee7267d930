"""plan_latency_mitigation: which plan the latency runbook gets, from the cause and the targets (no backend).

The branches that read the deployment (a rollback of a rollout, a scale out) are exercised against the
sandbox in tests/runbooks/latency/test_latency_mitigation.py.
"""

from __future__ import annotations

import pandas as pd

from runbook_kit.aws.elb import TargetAssessment
from runbook_kit.investigate import find_cause, plan_latency_mitigation
from runbook_kit.investigate.changes import COLUMNS

START = pd.Timestamp("2026-11-29T03:21:00Z")
SLOW = TargetAssessment("all_slow", "every target healthy but slow in checkout", "medium",
                        mitigation="roll back a recent deployment; scaling out would not help")
SUBSET = TargetAssessment("unhealthy_subset", "1 of 3 targets unhealthy (Target.FailedHealthChecks): i-0bad",
                          "high", ("i-0bad",), "take the unhealthy targets out (replace the instance)")


def changes(*rows: dict) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=COLUMNS)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame


def deploy(minutes: float, ref: str) -> dict:
    return {"time": START + pd.Timedelta(minutes=minutes), "source": "codedeploy", "kind": "deploy",
            "change": f"deploy {ref}", "who": "ci", "target": "shop/prod", "ref": ref}


def test_nothing_correlated_and_targets_merely_slow_gives_the_rollbacks_no_op():
    plan = plan_latency_mitigation(cause=find_cause(changes(), start=START), targets=SLOW,
                                   namespace="shop", deployment="api")
    assert plan.nothing_to_do and plan.action == "rollout undo"
    assert "nothing to roll back" in plan.reason


def test_a_bad_subset_of_targets_is_named_with_what_to_do_by_hand_and_no_rollback():
    cause = find_cause(changes(deploy(-1, "d-7")), start=START)
    plan = plan_latency_mitigation(cause=cause, targets=SUBSET, namespace="shop", deployment="api")
    assert plan.nothing_to_do and plan.action == "take unhealthy targets out"
    assert "i-0bad" in plan.reason and "node_health" in plan.reason
    assert "aws deploy stop-deployment --deployment-id d-7" in plan.reason, "the cause's manual undo is kept"


def test_saturation_without_a_deployment_is_a_no_op_that_says_so():
    saturated = TargetAssessment("saturation", "every target healthy but slow while requests rose", "high")
    plan = plan_latency_mitigation(cause=find_cause(changes(), start=START), targets=saturated,
                                   namespace="shop", deployment="")
    assert plan.nothing_to_do and plan.action == "scale out" and "no deployment given" in plan.reason
