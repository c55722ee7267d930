"""Pick a mitigation plan by name: the notebooks' `mitigation` / `action` parameters.

A parameter chooses; this module maps the name to the plan helper and its arguments, so a notebook
cell stays one `rk.` call and an unknown name fails as a ParameterError listing the valid ones.
"""

from __future__ import annotations

from typing import Any

from runbook_kit.errors import ParameterError
from runbook_kit.guard import Plan
from runbook_kit.k8s import mitigate, nodeops
from runbook_kit.k8s.diagnose import CrashloopDiagnosis
from runbook_kit.plans import plan_no_change

__all__ = ["CRASHLOOP_MITIGATIONS", "K8S_ACTIONS", "plan_action", "plan_mitigation"]

CRASHLOOP_MITIGATIONS = ("recommended", "none", "rollback", "raise_memory", "restart")
K8S_ACTIONS = ("status", "rollback", "scale", "restart", "delete_pod", "cordon", "uncordon", "drain")


def plan_mitigation(
    *, mitigation: str, diagnosis: CrashloopDiagnosis, revision_number: int | None = None, context: str = ""
) -> Plan:
    """The crash-loop mitigation plan: `recommended` follows the diagnosis; `none` changes nothing."""
    if mitigation not in CRASHLOOP_MITIGATIONS:
        known = ", ".join(CRASHLOOP_MITIGATIONS)
        raise ParameterError(f"mitigation must be one of {known}, not {mitigation!r}")
    chosen = diagnosis.recommendation if mitigation == "recommended" else mitigation
    ns, dep = diagnosis.namespace, diagnosis.deployment
    target = f"deployment/{dep or '?'} in namespace {ns}"
    if chosen == "none":
        return plan_no_change(action="no mitigation", target=target, backend="k8s", reason=diagnosis.reason)
    if not dep:
        raise ParameterError(f"mitigation {chosen!r} needs a deployment; the crashing pods have none")
    why = f"diagnosis: {diagnosis.cause}; {diagnosis.reason}"
    if chosen == "rollback":
        return mitigate.plan_rollback(
            namespace=ns, deployment=dep, revision_number=revision_number, context=context, reason=why
        )
    if chosen == "restart":
        return mitigate.plan_restart(namespace=ns, deployment=dep, context=context, reason=why)
    if diagnosis.memory is None:
        raise ParameterError("raise_memory needs an OOMKilled diagnosis with a known limit or peak")
    return mitigate.plan_set_memory(
        namespace=ns,
        deployment=dep,
        container=diagnosis.container,
        memory=diagnosis.memory.new_quantity,
        context=context,
        reason=diagnosis.memory.explanation,
    )


def plan_action(
    *,
    action: str,
    namespace: str = "",
    deployment: str = "",
    replicas: int | None = None,
    revision_number: int | None = None,
    pod: str = "",
    node: str = "",
    max_pods: int = 20,
    context: str = "",
) -> Plan:
    """The plan for one action of the Kubernetes mitigation menu (`status` changes nothing)."""
    if action not in K8S_ACTIONS:
        raise ParameterError(f"action must be one of {', '.join(K8S_ACTIONS)}, not {action!r}")

    def need(**values: Any) -> None:
        missing = [k for k, v in values.items() if v in ("", None)]
        if missing:
            raise ParameterError(f"action {action!r} needs {', '.join(missing)}")

    if action == "status":
        return plan_no_change(action="status only", target=f"namespace {namespace}", backend="k8s",
                              reason="action = 'status': read-only")
    if action in ("cordon", "uncordon", "drain"):
        need(node=node)
        if action == "drain":
            return nodeops.plan_drain(node=node, max_pods=max_pods, context=context)
        fn = nodeops.plan_cordon if action == "cordon" else nodeops.plan_uncordon
        return fn(node=node, context=context)
    if action == "delete_pod":
        need(namespace=namespace, pod=pod)
        return mitigate.plan_delete_pod(namespace=namespace, pod=pod, context=context)
    need(namespace=namespace, deployment=deployment)
    if action == "rollback":
        return mitigate.plan_rollback(
            namespace=namespace, deployment=deployment, revision_number=revision_number, context=context
        )
    if action == "scale":
        need(replicas=replicas)
        assert replicas is not None
        return mitigate.plan_scale(
            namespace=namespace, deployment=deployment, replicas=replicas, context=context
        )
    return mitigate.plan_restart(namespace=namespace, deployment=deployment, context=context)
