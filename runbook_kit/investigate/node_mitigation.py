"""Mitigations of a sick node as guarded plans, chosen by the node assessment: reboot, drain, replace.

`mitigation = "recommended"` follows `assess_node` (a failed system check -> replace, a failed
instance check -> reboot, a kubelet problem -> drain and replace); naming one overrides it. A step
that is not part of the chosen mitigation is a no-op plan saying why, so the runbook's cells stay
the same whatever is chosen. More nodes in scope than `max_nodes` is refused by the guard (a plan
whose targets are every NotReady node). The replacement waits for a *new* Ready node and for the
old one to be gone before it counts as applied. A reboot or replacement of a node whose diagnosis
lacks evidence (`assessment.missing`: the status checks or the group could not be read) carries it as
`missing_evidence`, so the guard refuses it; a drain needs only Kubernetes and stays plannable.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pandas as pd

from runbook_kit import record
from runbook_kit.errors import ParameterError, Unavailable
from runbook_kit.guard import Plan
from runbook_kit.investigate.nodes import MITIGATIONS, NodeAssessment

__all__ = ["plan_node_drain", "plan_node_reboot", "plan_node_replacement", "verify_node_replacement"]


def _chosen(assessment: NodeAssessment, mitigation: str) -> str:
    if mitigation not in MITIGATIONS:
        raise ParameterError(f"mitigation must be one of {', '.join(MITIGATIONS)}, got {mitigation!r}")
    return assessment.mitigation if mitigation == "recommended" else mitigation


def _noop(action: str, assessment: NodeAssessment, why: str) -> Plan:
    return Plan(
        action=action,
        target=f"node/{assessment.node or '(none)'}",
        backend="k8s",
        command="# nothing to do",
        execute=lambda dry_run: None,
        nothing_to_do=True,
        reason=why,
    )


def _unread(action: str, assessment: NodeAssessment) -> Plan:
    """A reboot or replacement that cannot be planned: the evidence it needs was a gap. Refused."""
    return Plan(
        action=action,
        target=f"node/{assessment.node} (EC2 instance {assessment.instance_id})",
        backend="aws",
        command="(not planned: the EC2 state it depends on could not be read)",
        execute=lambda dry_run: None,
        missing_evidence=assessment.missing,
        reason="planned without the instance's status checks and group would be guessing",
    )


def _radius(action: str, assessment: NodeAssessment, max_nodes: int, backend: str) -> Plan | None:
    """A plan the guard refuses when more nodes are in scope than `max_nodes`."""
    if len(assessment.nodes) <= max_nodes:
        return None
    return Plan(
        action=action,
        target=f"{len(assessment.nodes)} NotReady nodes",
        backend=backend,
        command="# one node per run",
        execute=lambda dry_run: None,
        targets=list(assessment.nodes),
        max_targets=max_nodes,
        reason=assessment.reason,
    )


def plan_node_drain(
    assessment: NodeAssessment,
    *,
    mitigation: str = "recommended",
    max_pods: int = 20,
    max_nodes: int = 1,
    context: str = "",
    core: Any | None = None,
) -> Plan:
    """Cordon and drain the node when the mitigation is `replace` or `drain` (a no-op plan otherwise)."""
    from runbook_kit.k8s.nodeops import plan_drain

    chosen = _chosen(assessment, mitigation)
    if chosen not in ("replace", "drain") or not assessment.node:
        return _noop("drain", assessment, f"mitigation is {chosen!r}: the node is not drained")
    return _radius("drain", assessment, max_nodes, "k8s") or plan_drain(
        node=assessment.node, max_pods=max_pods, context=context, core=core, reason=assessment.reason
    )


def plan_node_reboot(
    assessment: NodeAssessment, *, mitigation: str = "recommended", max_nodes: int = 1, ec2: Any | None = None
) -> Plan:
    """Reboot the instance when the mitigation is `reboot` (EC2 DryRun validates it in a dry run)."""
    from runbook_kit.aws.ec2 import plan_reboot_instance

    chosen = _chosen(assessment, mitigation)
    wanted = chosen == "reboot" and bool(assessment.instance_id)
    if wanted and (over := _radius("reboot instance", assessment, max_nodes, "aws")):
        return over
    reason = assessment.reason if wanted else f"mitigation is {chosen!r}: no reboot"
    if not wanted:
        return _noop("reboot instance", assessment, reason)
    if assessment.missing:
        return _unread("reboot instance", assessment)
    return plan_reboot_instance(
        instance_id=assessment.instance_id, reason=reason, max_instances=max_nodes, ec2=ec2
    )


def _replacement_ready(before: set[str], old: str, context: str, core: Any | None) -> dict[str, Any]:
    from runbook_kit.k8s.instances import instance_nodes

    nodes = instance_nodes(context=context, core=core)
    new = nodes[nodes["instance_id"].notna() & ~nodes["instance_id"].isin(before)]
    ready_new = new[new["ready"] == "True"]
    return {
        "old_node_present": bool((nodes["instance_id"] == old).any()),
        "new_nodes": list(new["node"]),
        "new_nodes_ready": list(ready_new["node"]),
    }


def plan_node_replacement(
    assessment: NodeAssessment,
    *,
    mitigation: str = "recommended",
    max_nodes: int = 1,
    wait_seconds: int = 300,
    context: str = "",
    core: Any | None = None,
    autoscaling: Any | None = None,
    ec2: Any | None = None,
) -> Plan:
    """Terminate the instance in its group (capacity kept), then wait for a new node to be Ready."""
    from runbook_kit.aws.ec2 import plan_replace_instance

    chosen = _chosen(assessment, mitigation)
    if chosen != "replace" or not assessment.instance_id:
        return _noop("replace instance", assessment, f"mitigation is {chosen!r}: the instance is kept")
    if over := _radius("replace instance", assessment, max_nodes, "aws"):
        return over
    if assessment.missing:
        return _unread("replace node", assessment)
    before = {*assessment.known_instances, *assessment.group_instances, *assessment.instances}

    def wait_for_new_node(answer: dict[str, Any]) -> Any:
        deadline = time.monotonic() + wait_seconds
        while True:
            state = _replacement_ready(before, assessment.instance_id, context, core)
            if state["new_nodes_ready"] and not state["old_node_present"]:
                return {**answer, **state}
            if time.monotonic() > deadline:
                raise Unavailable(
                    "k8s",
                    "wait for the replacement node",
                    f"no new Ready node within {wait_seconds} s: {state}",
                )
            time.sleep(1)

    inner = plan_replace_instance(
        instance_id=assessment.instance_id,
        reason=assessment.reason,
        max_instances=max_nodes,
        autoscaling=autoscaling,
        ec2=ec2,
        then=wait_for_new_node,  # inside the guarded write: the guard seals plans, they do not nest
    )

    def observe() -> dict[str, Any]:
        return {
            **(inner.observe() if inner.observe else {}),
            **_replacement_ready(before, assessment.instance_id, context, core),
        }

    return dataclasses.replace(
        inner,
        action="replace node",
        target=f"node/{assessment.node} (EC2 instance {assessment.instance_id})",
        observe=observe,
        command=inner.command + f"  # then wait up to {wait_seconds} s for a new Ready node",
        changes={**inner.changes, "wait_seconds": wait_seconds},
    )


def verify_node_replacement(
    assessment: NodeAssessment, *, context: str = "", core: Any | None = None, ec2: Any | None = None
) -> pd.DataFrame:
    """Where things stand after the mitigation: old instance and node, new nodes, the stranded pods."""
    from runbook_kit.aws.ec2 import _state
    from runbook_kit.k8s import _api

    if not assessment.instance_id:
        return pd.DataFrame(columns=["check", "value"])
    from runbook_kit import clients

    state = _replacement_ready(
        {*assessment.known_instances, *assessment.group_instances, *assessment.instances},
        assessment.instance_id,
        context,
        core,
    )
    api = _api.core(context, core)
    still = [
        f"{p['metadata']['namespace']}/{p['metadata']['name']}"
        for p in _api.list_items(
            api.list_pod_for_all_namespaces,
            op=f"list pods on {assessment.node}",
            field_selector=f"spec.nodeName={assessment.node}",
        )
    ]
    stranded_left = sorted(set(assessment.stranded_pods) & set(still))
    instance_state = "unknown (not readable, see the gap)"
    with record.degrade(f"EC2 state of {assessment.instance_id}", fix="ec2:DescribeInstances") as step:
        instance_state = _state(ec2 or clients.aws("ec2"), assessment.instance_id)
    rows = [
        ("old instance state", instance_state),
        ("old node present", state["old_node_present"]),
        ("new nodes", ", ".join(state["new_nodes"]) or "-"),
        ("new nodes Ready", ", ".join(state["new_nodes_ready"]) or "-"),
        ("stranded pods still on the old node", len(stranded_left)),
    ]
    replaced = instance_state in ("shutting-down", "terminated") and bool(state["new_nodes_ready"])
    if replaced:
        record.finding(
            f"node {assessment.node} replaced: instance {assessment.instance_id} {instance_state}, "
            f"new node(s) Ready: {', '.join(state['new_nodes_ready'])}",
            severity="info",
        )
    else:
        record.finding(
            f"node {assessment.node} not replaced (instance {instance_state}, "
            f"{len(stranded_left)} pod(s) still bound to it)",
            severity="info",
        )
    frame = pd.DataFrame(rows, columns=["check", "value"])
    if step.gap:
        frame.attrs["gap"] = step.gap
    return frame
