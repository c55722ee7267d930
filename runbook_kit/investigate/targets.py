"""Scale out when, and only when, the load balancer's targets are saturated.

More replicas help a service whose healthy targets are all slow *because* traffic grew; they do not
help a bad deployment (every target slow at steady traffic: roll back) or a bad subset of targets
(take them out). So the scale-out plan reads the target assessment: anything but `saturation` gives a
no-op plan that says why, and saturation gives `kubectl scale` to `factor` times the current replicas,
never above `max_replicas` (the blast radius), through the Kubernetes guard (server-side dry run).
"""

from __future__ import annotations

import math
from typing import Any

from runbook_kit.aws.elb import TargetAssessment
from runbook_kit.guard import Plan

__all__ = ["plan_scale_out"]


def plan_scale_out(
    assessment: TargetAssessment,
    *,
    namespace: str,
    deployment: str,
    factor: float = 1.5,
    max_replicas: int = 20,
    context: str = "",
    apps: Any | None = None,
) -> Plan:
    """`kubectl scale` to ceil(current x factor) (at most `max_replicas`) when the diagnosis is saturation."""
    from runbook_kit.k8s import _api
    from runbook_kit.k8s.mitigate import plan_scale

    if assessment.cause != "saturation" or not deployment:
        why = (
            f"the targets' diagnosis is {assessment.cause!r}, not saturation: more replicas would not help"
            if deployment
            else "no deployment given"
        )
        return Plan(
            action="scale out",
            target=f"deployment/{deployment or '(none)'} in {namespace}",
            backend="k8s",
            command="# nothing to do",
            execute=lambda dry_run: None,
            nothing_to_do=True,
            reason=why,
        )
    api = _api.apps(context, apps)
    current = int(
        (
            _api.read(
                api.read_namespaced_deployment,
                deployment,
                namespace,
                op=f"read deployment {namespace}/{deployment}",
            ).get("spec")
            or {}
        ).get("replicas", 1)
    )
    wanted = min(max_replicas, max(current + 1, math.ceil(current * factor)))
    if wanted <= current:
        return Plan(
            action="scale out",
            target=f"deployment/{deployment} in {namespace}",
            backend="k8s",
            command="# nothing to do",
            execute=lambda dry_run: None,
            nothing_to_do=True,
            reason=f"already at {current} replicas, max_replicas is {max_replicas}: raise it deliberately",
        )
    return plan_scale(
        namespace=namespace,
        deployment=deployment,
        replicas=wanted,
        context=context,
        apps=api,
        reason=f"{assessment.title}; scale out ×{factor:g}, capped at {max_replicas}",
    )
