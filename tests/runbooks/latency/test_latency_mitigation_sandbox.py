"""plan_latency_mitigation against the sandbox's latency scenario: rollback first, scale out on saturation."""

from __future__ import annotations

import pandas as pd
import pytest

from runbook_kit import guard, k8s
from runbook_kit.aws import elb
from runbook_kit.investigate import find_cause, plan_latency_mitigation
from runbook_kit.investigate.changes import COLUMNS
from runbook_sandbox import timeline as tl

pytestmark = [pytest.mark.sandbox]

NS, NAME = tl.LATENCY_NAMESPACE, tl.LATENCY_SERVICE
SATURATED = elb.TargetAssessment("saturation", "every target healthy but slow while requests rose ×2.0",
                                 "high", mitigation="scale out")


def changes(*rows: dict) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=COLUMNS)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame


def rollout_cause(revision: int, previous: int):
    start = pd.Timestamp.now(tz="UTC")
    row = {"time": start - pd.Timedelta(minutes=1), "source": "kubernetes", "kind": "rollout",
           "change": f"rollout of {NAME} to revision {revision}", "who": "", "ref": f"rev-{revision}",
           "target": f"deployment/{NAME} in {NS}", "revision": revision, "previous_revision": previous}
    return find_cause(changes(row), start=start)


def test_saturation_with_no_rollout_to_undo_scales_out_within_the_cap(use_sandbox):
    cause = find_cause(changes(), start=pd.Timestamp.now(tz="UTC"))
    plan = plan_latency_mitigation(cause=cause, targets=SATURATED, namespace=NS, deployment=NAME,
                                   factor=1.5, max_replicas=4)
    assert plan.command.startswith(f"kubectl scale deployment/{NAME}"), plan.command
    assert plan.changes == {"replicas_before": 3, "replicas": 4} and plan.server_dry_run
    assert guard.apply(plan).outcome == "dry-run"
    assert k8s.deployment_status(namespace=NS, deployment=NAME).iloc[0]["replicas"] == 3


def test_a_rollout_named_as_cause_is_rolled_back_even_when_the_targets_look_saturated(use_sandbox):
    plan = plan_latency_mitigation(cause=rollout_cause(3, 2), targets=SATURATED, namespace=NS,
                                   deployment=NAME)
    assert not plan.nothing_to_do and "--to-revision=2" in plan.command
    assert "scale out only if it persists after the rollback" in plan.reason


def test_the_sandbox_targets_say_deployment_so_the_planted_cause_is_rolled_back(use_sandbox):
    health = elb.target_health(load_balancer=tl.LATENCY_LOAD_BALANCER)
    targets = elb.assess_targets(health=health, metrics=elb.target_group_metrics(
        load_balancer=tl.LATENCY_LOAD_BALANCER, minutes=180))
    assert targets.cause == "all_slow"
    plan = plan_latency_mitigation(cause=rollout_cause(3, 2), targets=targets, namespace=NS, deployment=NAME)
    assert "kubectl rollout undo" in plan.command and "targets: every target healthy but slow" in plan.reason
