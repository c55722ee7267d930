"""Load balancer target groups: health per target (with the reason), hosts, 5xx and latency per group.

The load balancer's own p99 says *that* users wait; its target groups say *where*. A subset of
unhealthy targets (a dead host, a bad AZ, pods failing their health check) is a different cause from
a deployment that made every target slow, and from saturation (every target healthy and slow while
requests climb): each has its own mitigation (take the bad targets out, roll back, scale up).
`target_health` is the `aws elbv2 describe-target-health` table for every group of a load balancer;
`target_group_metrics` one row per group over the window (healthy/unhealthy hosts now and at worst,
5xx, TargetResponseTime avg/max/p99); `assess_targets` (pure) names which of the three it is.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any

from runbook_kit import clients, record
from runbook_kit.aws.cloudwatch import metric_frame
from runbook_kit.errors import NotFound, backend_call

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["TargetAssessment", "assess_targets", "diagnose_targets", "target_group_metrics", "target_health"]

HEALTH_COLUMNS = ["target_group", "target", "port", "zone", "state", "reason", "description"]
METRIC_COLUMNS = [
    "target_group",
    "healthy_hosts",
    "unhealthy_hosts",
    "max_unhealthy_hosts",
    "target_5xx",
    "avg_ms",
    "max_ms",
    "p99_ms",
    "request_growth",
]
RECENT_MINUTES = 15  # "now" for request growth: the last quarter hour against the rest of the window


def _groups(load_balancer: str, target_group: str, elbv2: Any) -> list[dict[str, Any]]:
    with backend_call("aws", "elbv2 describe-target-groups"):
        if target_group:
            key = "TargetGroupArns" if target_group.startswith("arn:") else "Names"
            return list(elbv2.describe_target_groups(**{key: [target_group]})["TargetGroups"])
        if not load_balancer:
            raise NotFound("aws", "elbv2 describe-target-groups", "name a load balancer or a target group")
        arn = load_balancer
        if not arn.startswith("arn:"):
            name = load_balancer.split("/")[1] if load_balancer.count("/") == 2 else load_balancer
            arn = elbv2.describe_load_balancers(Names=[name])["LoadBalancers"][0]["LoadBalancerArn"]
        groups = []
        for page in elbv2.get_paginator("describe_target_groups").paginate(LoadBalancerArn=arn):
            groups += page["TargetGroups"]
        return groups


@record.read_step("load balancer target health", columns=HEALTH_COLUMNS,
                  fix="elasticloadbalancing:DescribeTargetGroups, DescribeTargetHealth")
def target_health(
    *, load_balancer: str = "", target_group: str = "", elbv2: Any | None = None
) -> pd.DataFrame:
    """Every target of the group (or of every group of the load balancer): state, reason; unhealthy first."""
    import pandas as pd

    elbv2 = elbv2 or clients.aws("elbv2")
    rows = []
    for group in _groups(load_balancer, target_group, elbv2):
        with backend_call("aws", f"elbv2 describe-target-health {group['TargetGroupName']}"):
            found = elbv2.describe_target_health(TargetGroupArn=group["TargetGroupArn"])
        for d in found["TargetHealthDescriptions"]:
            health = d.get("TargetHealth") or {}
            rows.append(
                {
                    "target_group": group["TargetGroupName"],
                    "target": d["Target"]["Id"],
                    "port": d["Target"].get("Port"),
                    "zone": d["Target"].get("AvailabilityZone"),
                    "state": health.get("State"),
                    "reason": health.get("Reason", ""),
                    "description": health.get("Description", ""),
                }
            )
    frame = pd.DataFrame(rows, columns=HEALTH_COLUMNS)
    return frame.sort_values(
        ["state", "target_group", "target"], key=lambda c: c.ne("unhealthy") if c.name == "state" else c
    ).reset_index(drop=True)


@record.read_step("load balancer target group metrics", columns=METRIC_COLUMNS,
                  fix="elasticloadbalancing:DescribeTargetGroups, cloudwatch:GetMetricData")
def target_group_metrics(
    *,
    load_balancer: str = "",
    target_group: str = "",
    minutes: float = 60,
    elbv2: Any | None = None,
    cloudwatch: Any | None = None,
) -> pd.DataFrame:
    """One row per target group over the window: hosts (last, worst), 5xx sum, latency avg/max/p99 (ms)."""
    import pandas as pd

    elbv2 = elbv2 or clients.aws("elbv2")
    rows = []
    for group in _groups(load_balancer, target_group, elbv2):
        for lb in group.get("LoadBalancerArns") or []:
            dims = {
                "TargetGroup": group["TargetGroupArn"].split(":", 5)[5],
                "LoadBalancer": lb.split(":loadbalancer/", 1)[1],
            }
            frame = metric_frame(
                namespace="AWS/ApplicationELB",
                dimensions=dims,
                minutes=minutes,
                metrics=(
                    "HealthyHostCount",
                    "UnHealthyHostCount",
                    "HTTPCode_Target_5XX_Count",
                    "TargetResponseTime",
                    "RequestCount",
                ),
                stats=("Average", "Maximum", "Sum", "p99"),
                cloudwatch=cloudwatch,
            )

            series = functools.partial(_series, frame)
            latency = series("TargetResponseTime", "Average")
            rows.append(
                {
                    "target_group": group["TargetGroupName"],
                    "healthy_hosts": _last(series("HealthyHostCount", "Average")),
                    "unhealthy_hosts": _last(series("UnHealthyHostCount", "Average")),
                    "max_unhealthy_hosts": float(series("UnHealthyHostCount", "Maximum").max() or 0),
                    "target_5xx": float(series("HTTPCode_Target_5XX_Count", "Sum").sum()),
                    "avg_ms": round(1000 * float(latency.mean()), 1) if len(latency) else None,
                    "max_ms": round(1000 * float(series("TargetResponseTime", "Maximum").max()), 1)
                    if len(latency)
                    else None,
                    "p99_ms": round(1000 * float(series("TargetResponseTime", "p99").max()), 1)
                    if len(latency)
                    else None,
                    "request_growth": _growth(frame),
                }
            )
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def _series(frame: pd.DataFrame, metric: str, stat: str) -> pd.Series:
    part = frame[(frame["metric"] == metric) & (frame["stat"] == stat)]
    return part.sort_values("timestamp")["value"]


def _growth(frame: pd.DataFrame) -> float | None:
    """Requests per minute in the last RECENT_MINUTES against the rest of the window (None: no data)."""
    import pandas as pd

    part = frame[(frame["metric"] == "RequestCount") & (frame["stat"] == "Sum")].sort_values("timestamp")
    if len(part) < 2 * RECENT_MINUTES:
        return None
    recent = part[part["timestamp"] >= part["timestamp"].max() - pd.Timedelta(minutes=RECENT_MINUTES - 1)]
    before = part.drop(recent.index)["value"].mean()
    return round(float(recent["value"].mean() / before), 2) if before else None


def _last(s: pd.Series) -> float | None:
    return float(s.iloc[-1]) if len(s) else None


@dataclasses.dataclass(frozen=True)
class TargetAssessment:
    cause: str  # unhealthy_subset | all_unhealthy | saturation | all_slow | healthy | no_targets | unknown
    title: str
    severity: str
    unhealthy: tuple[str, ...] = ()
    mitigation: str = ""


def assess_targets(
    *, health: pd.DataFrame, metrics: pd.DataFrame, slow_ms: float = 1000, saturation_growth: float = 1.5
) -> TargetAssessment:
    """Which kind of target problem this is (pure): a bad subset, saturation, everyone slow, or none.

    Saturation: every target healthy, p99 over `slow_ms`, and requests of the last quarter hour at
    least `saturation_growth` times the rest of the window's. A read that could not be done (a gap)
    gives `unknown` where it matters: no health, no verdict; healthy targets without their metrics,
    no saturation (nothing is scaled on evidence the runbook lacks)."""
    if record.missing(health):
        return TargetAssessment(
            "unknown",
            f"target health not known ({'; '.join(record.missing(health))}): a bad subset, saturation or "
            "a slow deployment cannot be told apart",
            "medium",
            mitigation="check the target groups by hand (`aws elbv2 describe-target-health`)",
        )
    if health.empty:
        return TargetAssessment(
            "no_targets",
            "no registered targets: the load balancer has nowhere to send requests",
            "high",
            mitigation="register targets / check the target group binding",
        )
    bad = health[health["state"] == "unhealthy"]
    if len(bad) and len(bad) < len(health):
        reasons = ", ".join(sorted(set(bad["reason"])))
        return TargetAssessment(
            "unhealthy_subset",
            f"{len(bad)} of {len(health)} targets unhealthy ({reasons}): {', '.join(bad['target'])}",
            "high",
            tuple(bad["target"]),
            "take the unhealthy targets out (replace the instance, drain the node); the rest serve",
        )
    if len(bad):
        return TargetAssessment(
            "all_unhealthy",
            f"all {len(bad)} targets unhealthy",
            "critical",
            tuple(bad["target"]),
            "roll back the last change or fix the health check",
        )
    if record.missing(metrics):
        return TargetAssessment(
            "unknown",
            f"all {len(health)} targets healthy; their latency and traffic not known "
            f"({'; '.join(record.missing(metrics))}): saturation cannot be told",
            "medium",
        )
    slow = metrics[metrics["p99_ms"].fillna(0) >= slow_ms] if not metrics.empty else metrics
    if len(slow):
        names = ", ".join(slow["target_group"])
        growth = float(slow["request_growth"].fillna(1).max())
        if growth >= saturation_growth:
            return TargetAssessment(
                "saturation",
                f"every target healthy but slow in {names} (p99 up to {slow['p99_ms'].max():.0f} ms) while "
                f"requests rose ×{growth:.1f}: saturation",
                "high",
                mitigation="scale out (more replicas); then find where the traffic comes from",
            )
        return TargetAssessment(
            "all_slow",
            f"every target healthy but slow in {names} (p99 up to {slow['p99_ms'].max():.0f} ms), requests "
            f"steady (×{growth:.1f}): a deployment or a dependency, not a bad subset nor saturation",
            "medium",
            mitigation="roll back a recent deployment; scaling out would not help",
        )
    return TargetAssessment("healthy", f"all {len(health)} targets healthy", "info")


def diagnose_targets(
    *, health: pd.DataFrame, metrics: pd.DataFrame, slow_ms: float = 1000
) -> TargetAssessment:
    """Record the target assessment as a finding; return it."""
    a = assess_targets(health=health, metrics=metrics, slow_ms=slow_ms)
    record.finding(
        a.title, severity=a.severity, cause=a.cause, unhealthy=list(a.unhealthy), mitigation=a.mitigation
    )
    return a
