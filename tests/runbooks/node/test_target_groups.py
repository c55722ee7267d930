"""Target group health and metrics against the sandbox: a bad subset (node) vs everyone slow (latency)."""

from __future__ import annotations

from typing import Any

from runbook_kit.aws import elb
from runbook_sandbox import timeline as tl


def test_the_node_scenario_has_an_unhealthy_subset(use_sandbox: Any) -> None:
    health = elb.target_health(load_balancer=f"{tl.NODE_NAMESPACE}-alb")
    assert list(health["state"]) == ["unhealthy", "healthy", "healthy"]
    assert health.iloc[0]["reason"] == "Target.FailedHealthChecks"
    metrics = elb.target_group_metrics(target_group=tl.NODE_TARGET_GROUP, minutes=60)
    row = metrics.iloc[0]
    assert (row["healthy_hosts"], row["unhealthy_hosts"], row["max_unhealthy_hosts"]) == (2.0, 1.0, 1.0)
    assert row["p99_ms"] < 1000
    verdict = elb.assess_targets(health=health, metrics=metrics)
    assert verdict.cause == "unhealthy_subset" and verdict.unhealthy == (health.iloc[0]["target"],)


def test_the_latency_scenario_is_every_target_slow_not_a_subset(use_sandbox: Any) -> None:
    health = elb.target_health(load_balancer=tl.LATENCY_LOAD_BALANCER)
    assert len(health) == 3 and set(health["state"]) == {"healthy"}
    metrics = elb.target_group_metrics(load_balancer=tl.LATENCY_LOAD_BALANCER, minutes=180)
    row = metrics.iloc[0]
    assert (
        row["target_group"] == "storefront-checkout"
        and row["p99_ms"] > 2500
        and row["avg_ms"] < row["max_ms"]
    )
    assert row["target_5xx"] > 0
    assert elb.assess_targets(health=health, metrics=metrics).cause == "all_slow"


def test_scale_out_only_on_saturation_and_dry_run_by_default(use_sandbox: Any) -> None:
    import json
    import urllib.request

    from runbook_kit import guard, record
    from runbook_kit.investigate.targets import plan_scale_out

    ns, name = tl.LATENCY_NAMESPACE, tl.LATENCY_SERVICE
    health = elb.target_health(load_balancer=tl.LATENCY_LOAD_BALANCER)
    verdict = elb.assess_targets(
        health=health, metrics=elb.target_group_metrics(load_balancer=tl.LATENCY_LOAD_BALANCER)
    )
    assert plan_scale_out(verdict, namespace=ns, deployment=name).nothing_to_do  # a deploy, not saturation

    saturated = elb.TargetAssessment("saturation", "slow while requests climb", "high")
    plan = plan_scale_out(saturated, namespace=ns, deployment=name, factor=1.5, max_replicas=4)
    assert plan.changes == {"replicas_before": 3, "replicas": 4} and plan.server_dry_run
    with urllib.request.urlopen(f"{use_sandbox.k8s_url}/_sandbox/requests", timeout=10) as response:
        before = len(json.load(response))
    result = guard.apply(plan)  # dry run unless said otherwise
    assert result.outcome == "dry-run" and record.entries_this_session()[-1].outcome == "dry-run"
    with urllib.request.urlopen(f"{use_sandbox.k8s_url}/_sandbox/requests", timeout=10) as response:
        writes = [r for r in json.load(response)[before:] if r["method"] != "GET"]
    assert writes and all(r["query"].get("dryRun") == "All" for r in writes)
