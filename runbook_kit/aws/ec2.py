"""EC2 instance health and the two instance mitigations: reboot, and replacement through its ASG.

Status checks are how EC2 says whose fault a dead instance is: a failed *system* check is AWS's
host (power, network, hardware: reboot does not help, a new host does), a failed *instance* check is
the guest (kernel, file system, exhausted memory: a reboot often does). Scheduled events
(`instance-retirement`, `system-reboot`) say AWS already knows. `instance_health` puts the checks,
the time they failed and the events in one row per instance.

Mitigations are guarded plans. A reboot sends EC2's own `DryRun=True` in a dry run, so the server
checks the permission and the instance state without rebooting (`DryRunOperation` is success). A
replacement terminates the instance *in its Auto Scaling group* without decrementing the desired
capacity, so the group launches a new one; the API has no dry run, so a dry run sends nothing.
Both touch one instance per run unless `max_instances` is raised.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from runbook_kit import clients
from runbook_kit.errors import Conflict, NotFound, backend_call
from runbook_kit.guard import Plan

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "autoscaling_group_of",
    "instance_health",
    "instance_metrics",
    "plan_reboot_instance",
    "plan_replace_instance",
]

_COLUMNS = [
    "instance_id",
    "zone",
    "state",
    "system_status",
    "instance_status",
    "failed_checks",
    "impaired_since",
    "events",
]
STATUS_METRICS = ("StatusCheckFailed_System", "StatusCheckFailed_Instance", "CPUUtilization")


def _failed(check: dict[str, Any]) -> list[tuple[str, Any]]:
    return [
        (d.get("Name", ""), d.get("ImpairedSince"))
        for d in check.get("Details") or []
        if d.get("Status") == "failed"
    ]


def health_rows(statuses: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """DescribeInstanceStatus entries -> one row per instance (pure), impaired first."""
    import pandas as pd

    rows = []
    for s in statuses:
        system, instance = s.get("SystemStatus") or {}, s.get("InstanceStatus") or {}
        failed = [(f"system {name}", since) for name, since in _failed(system)]
        failed += [(f"instance {name}", since) for name, since in _failed(instance)]
        times = [since for _, since in failed if since is not None]
        rows.append(
            {
                "instance_id": s.get("InstanceId"),
                "zone": s.get("AvailabilityZone"),
                "state": (s.get("InstanceState") or {}).get("Name"),
                "system_status": system.get("Status"),
                "instance_status": instance.get("Status"),
                "failed_checks": ", ".join(name for name, _ in failed),
                "impaired_since": pd.to_datetime(min(times), utc=True) if times else pd.NaT,
                "events": "; ".join(
                    f"{e.get('Code')} not before {e.get('NotBefore')}: {e.get('Description')}"
                    for e in s.get("Events") or []
                ),
            }
        )
    frame = pd.DataFrame(rows, columns=_COLUMNS)
    return frame.sort_values("failed_checks", ascending=False, key=lambda c: c.ne("")).reset_index(drop=True)


def instance_health(*, instance_ids: Sequence[str], ec2: Any | None = None) -> pd.DataFrame:
    """Status checks, the moment they failed, and scheduled events of each instance (all states)."""
    ec2 = ec2 or clients.aws("ec2")
    statuses: list[dict[str, Any]] = []
    with backend_call("aws", "ec2 describe-instance-status"):
        for page in ec2.get_paginator("describe_instance_status").paginate(
            InstanceIds=list(instance_ids), IncludeAllInstances=True
        ):
            statuses += page.get("InstanceStatuses") or []
    return health_rows(statuses)


def instance_metrics(*, instance_id: str, minutes: float = 60, cloudwatch: Any | None = None) -> pd.DataFrame:
    """StatusCheckFailed (system, instance) and CPUUtilization per minute: when did it go wrong."""
    from runbook_kit.aws.cloudwatch import metric_frame

    return metric_frame(
        namespace="AWS/EC2",
        metrics=STATUS_METRICS,
        dimensions={"InstanceId": instance_id},
        stats=("Maximum",),
        minutes=minutes,
        cloudwatch=cloudwatch,
    )


def autoscaling_group_of(*, instance_id: str, autoscaling: Any | None = None) -> dict[str, Any] | None:
    """{"group", "lifecycle_state", "health_status", "desired", "min", "max"}; None: not in a group."""
    autoscaling = autoscaling or clients.aws("autoscaling")
    with backend_call("aws", f"autoscaling describe-auto-scaling-instances {instance_id}"):
        found = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"]
    if not found:
        return None
    group = found[0]["AutoScalingGroupName"]
    with backend_call("aws", f"autoscaling describe-auto-scaling-groups {group}"):
        info = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]
    return {
        "group": group,
        "lifecycle_state": found[0].get("LifecycleState"),
        "health_status": found[0].get("HealthStatus"),
        "desired": info.get("DesiredCapacity"),
        "min": info.get("MinSize"),
        "max": info.get("MaxSize"),
        "instances": [i["InstanceId"] for i in info.get("Instances") or []],
    }


def _state(ec2: Any, instance_id: str) -> str:
    with backend_call("aws", f"ec2 describe-instances {instance_id}"):
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    states = [i["State"]["Name"] for r in reservations for i in r["Instances"]]
    if not states:
        raise NotFound("aws", f"ec2 describe-instances {instance_id}", f"instance {instance_id} not found")
    return str(states[0])


def plan_reboot_instance(
    *, instance_id: str, wanted: bool = True, reason: str = "", max_instances: int = 1, ec2: Any | None = None
) -> Plan:
    """`aws ec2 reboot-instances`; EC2's DryRun validates it server-side. A no-op plan unless `wanted`."""
    ec2 = ec2 or clients.aws("ec2")
    command = f"aws ec2 reboot-instances --instance-ids {instance_id}"

    def execute(dry_run: bool) -> Any:
        try:
            with backend_call("aws", f"ec2 reboot-instances {instance_id}"):
                return ec2.reboot_instances(InstanceIds=[instance_id], DryRun=dry_run)
        except Conflict as exc:
            if dry_run and "DryRunOperation" in str(exc):  # EC2's "would have succeeded"
                return {"DryRunOperation": "Request would have succeeded, but DryRun flag is set."}
            raise

    state = _state(ec2, instance_id) if instance_id and wanted else ""
    return Plan(
        action="reboot instance",
        target=f"EC2 instance {instance_id or '(none)'}",
        backend="aws",
        command=command,
        execute=execute,
        server_dry_run=True,
        observe=lambda: {"state": _state(ec2, instance_id)},
        changes={"state": state},
        targets=[instance_id] if wanted and instance_id else [],
        max_targets=max_instances,
        nothing_to_do=not (wanted and instance_id),
        reason=reason,
        undo="a reboot cannot be undone; the instance keeps its id, volumes and addresses",
    )


def plan_replace_instance(
    *,
    instance_id: str,
    wanted: bool = True,
    reason: str = "",
    max_instances: int = 1,
    autoscaling: Any | None = None,
    ec2: Any | None = None,
    then: Callable[[dict[str, Any]], Any] | None = None,
) -> Plan:
    """Terminate in the Auto Scaling group, desired capacity unchanged: the group launches a new one.

    `then` (e.g. wait for the replacement node) runs after the termination, inside the same guarded
    write, with its answer; what it returns is the result."""
    autoscaling = autoscaling or clients.aws("autoscaling")
    ec2 = ec2 or clients.aws("ec2")
    group = (
        autoscaling_group_of(instance_id=instance_id, autoscaling=autoscaling)
        if wanted and instance_id
        else None
    )
    command = (
        f"aws autoscaling terminate-instance-in-auto-scaling-group --instance-id {instance_id} "
        "--no-should-decrement-desired-capacity"
    )

    def execute(dry_run: bool) -> Any:  # no server-side dry run: only called to apply
        if group is None:
            raise NotFound(
                "aws",
                "autoscaling terminate-instance-in-auto-scaling-group",
                f"{instance_id} belongs to no Auto Scaling group: nothing would replace it",
            )
        with backend_call("aws", f"autoscaling terminate-instance-in-auto-scaling-group {instance_id}"):
            answer = autoscaling.terminate_instance_in_auto_scaling_group(
                InstanceId=instance_id, ShouldDecrementDesiredCapacity=False
            )
        result = {"activity": (answer.get("Activity") or {}).get("Description")}
        return then(result) if then else result

    def observe() -> dict[str, Any]:
        now = autoscaling_group_of(instance_id=instance_id, autoscaling=autoscaling) or {}
        members = []
        if group:
            with backend_call("aws", f"autoscaling describe-auto-scaling-groups {group['group']}"):
                info = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group["group"]])
            members = [i["InstanceId"] for g in info["AutoScalingGroups"] for i in g["Instances"]]
        return {"state": _state(ec2, instance_id), "in_group": bool(now), "group_instances": members}

    changes: dict[str, Any] = {
        "group": group["group"] if group else None,
        "desired_capacity": group["desired"] if group else None,
        "should_decrement_desired_capacity": False,
    }
    return Plan(
        action="replace instance",
        target=f"EC2 instance {instance_id or '(none)'}",
        backend="aws",
        command=command,
        execute=execute,
        observe=observe,
        changes=changes,
        targets=[instance_id] if wanted and instance_id else [],
        max_targets=max_instances,
        nothing_to_do=not (wanted and instance_id),
        reason=reason,
        undo="termination cannot be undone: the group's new instance takes its place "
        "(its pods were drained first)",
    )
