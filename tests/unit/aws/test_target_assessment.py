"""assess_targets on plain frames: a bad subset, saturation and a slow deployment are three causes."""

from __future__ import annotations

import pandas as pd

from runbook_kit.aws.elb import HEALTH_COLUMNS, METRIC_COLUMNS, assess_targets
from runbook_kit.investigate.targets import plan_scale_out


def health(*states: str) -> pd.DataFrame:
    rows = [
        ["web", f"t{i}", 80, None, s, "Target.FailedHealthChecks" if s == "unhealthy" else "", ""]
        for i, s in enumerate(states)
    ]
    return pd.DataFrame(rows, columns=HEALTH_COLUMNS)


def metrics(p99_ms: float, growth: float | None) -> pd.DataFrame:
    return pd.DataFrame([["web", 3.0, 0.0, 0.0, 10.0, 100.0, p99_ms, p99_ms, growth]], columns=METRIC_COLUMNS)


def test_a_bad_subset_is_named_with_its_targets_and_reasons() -> None:
    a = assess_targets(health=health("healthy", "unhealthy", "healthy"), metrics=metrics(300, 1.0))
    assert a.cause == "unhealthy_subset" and a.unhealthy == ("t1",)
    assert "Target.FailedHealthChecks" in a.title


def test_slow_at_steady_traffic_is_not_saturation_and_scaling_is_a_noop() -> None:
    a = assess_targets(health=health("healthy", "healthy"), metrics=metrics(3100, 1.05))
    assert a.cause == "all_slow" and "scaling out would not help" in a.mitigation
    plan = plan_scale_out(a, namespace="shop", deployment="web")
    assert plan.nothing_to_do and "not saturation" in plan.reason


def test_slow_while_requests_climb_is_saturation() -> None:
    a = assess_targets(health=health("healthy", "healthy"), metrics=metrics(2500, 1.8))
    assert a.cause == "saturation" and a.severity == "high"
    assert assess_targets(health=health(), metrics=metrics(2500, 1.8)).cause == "no_targets"
    assert assess_targets(health=health("healthy"), metrics=metrics(200, 3.0)).cause == "healthy"


def test_security_findings_share_one_scale_and_mark_the_resources_involved() -> None:
    from runbook_kit.aws.security import COLUMNS, security_findings

    gd = pd.DataFrame(
        [
            [
                "guardduty",
                20.0,
                "LOW",
                "Recon:EC2/PortProbeUnprotectedPort",
                "probe",
                "Instance i-1",
                "2026-11-28T10:00:00Z",
                "2026-11-30T10:00:00Z",
                41,
                "a",
            ]
        ],
        columns=COLUMNS,
    )
    hub = pd.DataFrame(
        [
            [
                "securityhub",
                70.0,
                "HIGH",
                "",
                "EC2.19 open port",
                "arn:sg/sg-1",
                "2026-11-24T10:00:00Z",
                "2026-11-30T09:00:00Z",
                None,
                "b",
            ]
        ],
        columns=COLUMNS,
    )
    frame = security_findings(guardduty=gd, securityhub=hub, resources=["i-1"])
    assert list(frame["label"]) == ["HIGH", "LOW"] and list(frame["involved"]) == [False, True]
    assert security_findings().empty
