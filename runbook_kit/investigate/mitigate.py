"""From a likely cause to a rollback plan: undo the rollout that started the spike, nothing else.

The rollback itself is `runbook_kit.k8s.plan_rollback` (a guarded JSON patch, server-side dry run);
this module only decides *which* revision to return to and whether a rollback fits the cause at all.
It returns to the revision before the one named as cause — not blindly "the previous revision", which
is wrong once someone has rolled forward since. A cause that is not a rollout of this deployment (a
CodeDeploy deploy of something else, an IAM or S3 change) gets a no-op plan whose reason says what to
undo by hand and with which command: a runbook must not roll back an innocent deployment.
"""

from __future__ import annotations

from typing import Any

from runbook_kit.guard import Plan
from runbook_kit.investigate.correlate import Correlation
from runbook_kit.k8s.mitigate import plan_rollback
from runbook_kit.plans import plan_no_change

__all__ = ["plan_rollback_of_cause"]


def _manual(cause: dict[str, Any]) -> str:
    if cause["source"] == "codedeploy":
        app, _, group = str(cause["target"]).partition("/")
        return (
            f"roll back CodeDeploy deployment {cause['ref']}: `aws deploy stop-deployment --deployment-id "
            f"{cause['ref']} --auto-rollback-enabled` while it runs, else redeploy the previous revision "
            f"with "
            f"`aws deploy create-deployment --application-name {app} --deployment-group-name {group} "
            f"--revision <previous revision>`"
        )
    who = cause["who"] or "its author"
    return f"revert {cause['change']} by {who} (CloudTrail event {cause['ref']}) by hand"


def plan_rollback_of_cause(
    *, cause: Correlation, namespace: str, deployment: str, context: str = "", apps: Any | None = None
) -> Plan:
    """`kubectl rollout undo --to-revision=<before the cause>` when the cause is a rollout of this deployment.

    Any other cause gets a no-op plan that says what to undo by hand.
    """
    target = f"deployment/{deployment} in {namespace}"
    if cause.cause is None:
        return plan_no_change(
            action="rollout undo",
            target=target,
            backend="k8s",
            reason=f"no change is correlated with the spike ({cause.why}): nothing to roll back",
        )
    rollout = next((r for r in cause.members("kubernetes") if r["target"] == target), None)
    if rollout is None:
        return plan_no_change(
            action="rollout undo",
            target=target,
            backend="k8s",
            reason=f"the likely cause is not a rollout of {target}: {_manual(cause.cause)}",
        )
    if not rollout.get("previous_revision"):
        return plan_no_change(
            action="rollout undo",
            target=target,
            backend="k8s",
            reason=f"revision {rollout['revision']} has no earlier revision to return to",
        )
    lead = -(cause.offset_min or 0.0)
    why = (
        f"the likely cause of the latency spike is {cause.cause['change']}, {abs(lead):.1f} min "
        f"{'before' if lead >= 0 else 'after'} the spike start; revision {rollout['revision']} of {target} "
        "shipped with it"
    )
    return plan_rollback(
        namespace=namespace,
        deployment=deployment,
        revision_number=int(rollout["previous_revision"]),
        context=context,
        apps=apps,
        reason=why,
    )
