"""A sick node, from both sides: the Kubernetes node, the EC2 instance behind it, and what to do.

`node_snapshot` reads once (nodes, the instance's status checks and events, its Auto Scaling group,
the pods stranded on the node); `assess_node` is pure and names the cause and the mitigation that
fits it; `diagnose_node` records that as findings. The cause decides the mitigation:

* a failed **system** status check is the AWS host: a reboot does not move the instance off it, a
  replacement does -> cordon, drain, replace through the Auto Scaling group;
* a failed **instance** status check is the guest (kernel, disk, memory) -> reboot first;
* healthy checks on a NotReady node is the kubelet or the network -> drain, then replace;
* several NotReady nodes at once is not a node problem (an AZ, the control plane, a bad AMI
  rollout): replacing them one by one is refused by the blast radius (`max_nodes`, default 1).

Reads that cannot be done (no EC2 or Auto Scaling permission) are recorded as gaps (`record.gap`;
the run completes with gaps); the assessment carries them (`missing`), and a reboot or replacement
planned on them carries them as `Plan.missing_evidence`, which the guard refuses.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from runbook_kit import record
from runbook_kit.errors import NotFound

__all__ = [
    "MITIGATIONS",
    "NodeAssessment",
    "NodeSnapshot",
    "assess_node",
    "diagnose_node",
    "node_metrics",
    "node_snapshot",
]

MITIGATIONS = ("recommended", "replace", "reboot", "drain", "none")


@dataclasses.dataclass(frozen=True)
class NodeSnapshot:
    nodes: pd.DataFrame  # every node with its instance (rk.k8s.instance_nodes)
    chosen: tuple[str, ...]  # the node(s) this run is about: given, or every NotReady instance-backed node
    health: pd.DataFrame  # rk.aws.instance_health of their instances
    groups: dict[str, dict[str, Any] | None]  # instance -> its Auto Scaling group (None: in none)
    stranded: dict[str, list[str]]  # node -> pods (namespace/name) bound to it
    gaps: tuple[str, ...] = ()  # "what: why" of each read that was a gap (recorded; `record.missing`)


@dataclasses.dataclass(frozen=True)
class NodeAssessment:
    node: str  # the node this run is about ("" when there is none)
    instance_id: str
    cause: str
    mitigation: str  # replace | reboot | drain | none
    severity: str
    reason: str
    nodes: tuple[str, ...]  # every node in scope (more than one: blast radius)
    instances: tuple[str, ...]
    group: str = ""
    group_instances: tuple[str, ...] = ()
    known_instances: tuple[
        str, ...
    ] = ()  # every instance behind a node when read: a new node is not one of these
    stranded_pods: tuple[str, ...] = ()
    evidence: dict[str, Any] = dataclasses.field(default_factory=dict)
    missing: tuple[str, ...] = ()  # gaps the diagnosis lacks: plans that need them carry them (refused)


def node_snapshot(
    *,
    node: str = "",
    context: str = "",
    core: Any | None = None,
    ec2: Any | None = None,
    autoscaling: Any | None = None,
) -> NodeSnapshot:
    """Read the node(s), their instances' status checks and groups, and the pods bound to them."""
    from runbook_kit.aws.ec2 import autoscaling_group_of, instance_health
    from runbook_kit.k8s import _api
    from runbook_kit.k8s.instances import instance_nodes

    nodes = instance_nodes(context=context, core=core)
    if node:
        if node not in set(nodes["node"]):
            raise NotFound("k8s", f"read node {node}", f"node {node} not found")
        chosen: tuple[str, ...] = (node,)
    else:
        sick = nodes[(nodes["ready"] != "True") & nodes["instance_id"].notna()]
        chosen = tuple(sick["node"])
    instances = [i for i in nodes.set_index("node").loc[list(chosen), "instance_id"] if i] if chosen else []
    gaps: list[str] = []
    health = pd.DataFrame()
    groups: dict[str, dict[str, Any] | None] = {}
    if instances:
        what = f"EC2 status checks of {', '.join(instances)}"
        try:
            with record.degrade(what, fix="ec2:DescribeInstanceStatus") as step:
                health = instance_health(instance_ids=instances, ec2=ec2)
        except NotFound:  # the instance is gone: the assessment says "not found", nothing is missing
            step.gap = None
        if step.gap:
            health.attrs["gap"] = step.gap
            gaps += record.missing(health)
        for instance in instances:
            fix = "autoscaling:DescribeAutoScalingInstances, DescribeAutoScalingGroups"
            with record.degrade(f"Auto Scaling group of {instance}", fix=fix) as step:
                groups[instance] = autoscaling_group_of(instance_id=instance, autoscaling=autoscaling)
            if step.gap:
                gaps.append(f"{step.gap['what']}: {step.gap['why']}")
    api = _api.core(context, core)
    stranded = {
        name: [
            f"{p['metadata']['namespace']}/{p['metadata']['name']}"
            for p in _api.list_items(
                api.list_pod_for_all_namespaces,
                op=f"list pods on {name}",
                field_selector=f"spec.nodeName={name}",
            )
        ]
        for name in chosen
    }
    return NodeSnapshot(
        nodes=nodes, chosen=chosen, health=health, groups=groups, stranded=stranded, gaps=tuple(gaps)
    )


def node_metrics(snapshot: NodeSnapshot, *, minutes: float = 60, cloudwatch: Any | None = None) -> Any:
    """A figure of StatusCheckFailed (system, instance) and CPUUtilization of the chosen instance."""
    from runbook_kit.aws.cloudwatch import plot_metrics
    from runbook_kit.aws.ec2 import instance_metrics

    rows = snapshot.nodes.set_index("node")
    instances = [str(rows.loc[n, "instance_id"]) for n in snapshot.chosen if rows.loc[n, "instance_id"]]
    if not instances:
        return pd.DataFrame(columns=["timestamp", "metric", "stat", "value"])
    with record.degrade(f"CloudWatch metrics of {instances[0]}", fix="cloudwatch:GetMetricData") as step:
        frame = instance_metrics(instance_id=instances[0], minutes=minutes, cloudwatch=cloudwatch)
    if step.gap:
        empty = pd.DataFrame(columns=["timestamp", "metric", "stat", "value"])
        empty.attrs["gap"] = step.gap
        return empty
    return plot_metrics(frame, title=f"EC2 instance {instances[0]}", units={"CPUUtilization": "%"})


def assess_node(snapshot: NodeSnapshot) -> NodeAssessment:
    """Name the cause and the mitigation that fits it (pure)."""
    if not snapshot.chosen:
        return NodeAssessment(
            node="",
            instance_id="",
            cause="no NotReady node backed by an EC2 instance",
            mitigation="none",
            severity="info",
            reason="every node is Ready",
            nodes=(),
            instances=(),
        )
    rows = snapshot.nodes.set_index("node")
    node = snapshot.chosen[0]
    instance = str(rows.loc[node, "instance_id"] or "")
    instances = tuple(str(rows.loc[n, "instance_id"] or "") for n in snapshot.chosen)
    base: dict[str, Any] = {
        "node": node,
        "instance_id": instance,
        "nodes": snapshot.chosen,
        "instances": instances,
        "stranded_pods": tuple(snapshot.stranded.get(node, [])),
        "known_instances": tuple(str(i) for i in snapshot.nodes["instance_id"] if i),
    }
    group = snapshot.groups.get(instance)
    group_unread = [g for g in snapshot.gaps if g.startswith(f"Auto Scaling group of {instance}:")]
    if group:
        base.update(group=group["group"], group_instances=tuple(group.get("instances") or ()))
    ready = f"node {node} Ready={rows.loc[node, 'ready']} ({rows.loc[node, 'ready_reason']})"
    health = snapshot.health.set_index("instance_id") if not snapshot.health.empty else None
    unread = record.missing(snapshot.health)
    if health is None or instance not in health.index:
        why = "instance status not readable (see the gap)" if unread else f"instance {instance} not found"
        return NodeAssessment(
            **base,
            cause=f"{ready}; {why}",
            mitigation="drain" if unread else "none",
            severity="medium",
            reason="without the instance's status checks the kit does not "
            "reboot or replace it; draining moves the pods off the node",
            evidence={"gaps": snapshot.gaps},
            missing=tuple(unread) + tuple(group_unread),
        )
    h = health.loc[instance]
    evidence = {
        "system_status": h["system_status"],
        "instance_status": h["instance_status"],
        "failed_checks": h["failed_checks"],
        "impaired_since": h["impaired_since"],
        "events": h["events"],
        "group": base.get("group", ""),
        "stranded_pods": len(base["stranded_pods"]),
    }
    if len(snapshot.chosen) > 1:
        return NodeAssessment(
            **base,
            cause=f"{len(snapshot.chosen)} nodes are NotReady at once: {', '.join(snapshot.chosen)}",
            mitigation="replace",
            severity="critical",
            reason="several nodes at once is rarely one bad host (an AZ, the control plane, a "
            "bad AMI): replacing them is over the blast radius unless max_nodes is raised",
            evidence=evidence,
        )
    if h["system_status"] == "impaired":
        since = f" since {h['impaired_since']:%H:%M} UTC" if pd.notna(h["impaired_since"]) else ""
        cause = (
            f"{ready}: EC2 instance {instance} failed its system status check ({h['failed_checks']}){since}"
        )
        if h["events"]:
            cause += f"; scheduled: {h['events']}"
        if not group and group_unread:  # the group could not be read: a replacement would be a guess
            return NodeAssessment(
                **base,
                cause=cause,
                mitigation="drain",
                severity="critical",
                reason="the host is at fault but the Auto Scaling group could not be read (see the gap): "
                "drain it; replace it once the group is readable",
                evidence=evidence,
                missing=tuple(group_unread),
            )
        if not group:
            return NodeAssessment(
                **base,
                cause=cause,
                mitigation="drain",
                severity="critical",
                reason="the host is at fault but no Auto Scaling group owns the instance: drain "
                "it, then stop/start it (a new host) by hand",
                evidence=evidence,
            )
        return NodeAssessment(
            **base,
            cause=cause,
            mitigation="replace",
            severity="critical",
            reason="a failed system check is the AWS host: a reboot stays on it; cordon, drain "
            f"and replace the instance through {group['group']}",
            evidence=evidence,
        )
    if h["instance_status"] == "impaired":
        return NodeAssessment(
            **base,
            cause=f"{ready}: EC2 instance {instance} failed its instance status check ({h['failed_checks']})",
            mitigation="reboot",
            severity="critical",
            reason="a failed instance check is the guest OS (kernel, disk, memory): a reboot "
            "usually clears it; replace if it fails again",
            evidence=evidence,
        )
    if rows.loc[node, "ready"] == "True":
        return NodeAssessment(
            **base,
            cause=f"{ready}; EC2 status checks pass: node and instance healthy",
            mitigation="none",
            severity="info",
            reason="nothing to mitigate: look elsewhere (pods, the application, its dependencies)",
            evidence=evidence,
        )
    return NodeAssessment(
        **base,
        cause=f"{ready}; EC2 status checks pass: kubelet, runtime or network on the node",
        mitigation="replace" if group else "drain",
        severity="medium",
        missing=tuple(group_unread),
        reason="the instance is up but the kubelet is not reporting: drain, then replace "
        "(or inspect the kubelet through SSM first)",
        evidence=evidence,
    )


def diagnose_node(snapshot: NodeSnapshot) -> NodeAssessment:
    """Record the cause and the recommended mitigation as findings; return the assessment."""
    a = assess_node(snapshot)
    record.finding(
        a.cause,
        severity=a.severity,
        node=a.node,
        instance_id=a.instance_id,
        recommended=a.mitigation,
        reason=a.reason,
        missing=list(a.missing),
        **a.evidence,
    )
    if a.stranded_pods:
        record.finding(
            f"{len(a.stranded_pods)} pod(s) stranded on {a.node}",
            severity="medium",
            pods=list(a.stranded_pods),
        )
    return a
