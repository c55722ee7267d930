"""The latency runbook's mitigation: roll back the change that started it, or scale out, or neither.

Three diagnoses meet here and each has its own fix (issue 13):
  * a change correlated with the spike that is a rollout of the service's deployment: roll it back
    (`plan_rollback_of_cause`). It comes first: it returns to a state known to have been good, and a
    release that slows every target is not fixed by more replicas of it;
  * otherwise, every target healthy but slow while requests climbed (`saturation`): scale out
    (`plan_scale_out`, capped at `max_replicas`, server-side dry run);
  * otherwise, an unhealthy subset (or all, or none registered): a no-op plan that names the targets
    and says what to do by hand (replace the host: the `node_health` runbook). Anything else: the
    rollback's own no-op plan, whose reason says what to undo by hand.
`plan_latency_mitigation` returns one Plan and touches nothing (reading the deployment's replica
count, as `plan_scale_out` does, is a read); `rk.apply` runs it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from runbook_kit.aws.elb import TargetAssessment
from runbook_kit.guard import Plan
from runbook_kit.investigate.correlate import Correlation
from runbook_kit.investigate.mitigate import plan_rollback_of_cause
from runbook_kit.investigate.targets import plan_scale_out
from runbook_kit.plans import plan_no_change

__all__ = ["plan_latency_mitigation"]

_BAD_TARGETS = ("unhealthy_subset", "all_unhealthy", "no_targets")


def plan_latency_mitigation(
    *,
    cause: Correlation,
    targets: TargetAssessment,
    namespace: str,
    deployment: str,
    factor: float = 1.5,
    max_replicas: int = 20,
    context: str = "",
    apps: Any | None = None,
) -> Plan:
    """The rollback of the cause when it is a rollout of `deployment`; else scale out on saturation;
    else a no-op plan that says why (and, for bad targets, which ones and what to do by hand)."""
    rollback = plan_rollback_of_cause(
        cause=cause, namespace=namespace, deployment=deployment, context=context, apps=apps
    )
    if not rollback.nothing_to_do:
        note = f"targets: {targets.title}"
        if targets.cause == "saturation":
            note += " (scale out only if it persists after the rollback)"
        return dataclasses.replace(rollback, reason=f"{rollback.reason}; {note}")
    if targets.cause == "saturation":
        return plan_scale_out(
            targets, namespace=namespace, deployment=deployment, factor=factor, max_replicas=max_replicas,
            context=context, apps=apps,
        )
    if targets.cause in _BAD_TARGETS:
        return plan_no_change(
            action="take unhealthy targets out",
            target=f"the target groups of deployment/{deployment} in {namespace}",
            backend="k8s",
            reason=f"{targets.title}: {targets.mitigation} (the node_health runbook replaces a bad host); "
            f"no rollback: {rollback.reason}",
        )
    return rollback
