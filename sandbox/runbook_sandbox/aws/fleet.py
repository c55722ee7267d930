"""EC2 instance health and target health: what moto cannot impair, answered in the real API's shape.

moto reports every running instance as `ok` / `passed` and every registered target as `healthy`, so an
instance with a failed status check (the `node` scenario's degraded host) cannot be expressed through
its API. `FleetHealth` holds what the sandbox planted (which instance fails which check since when,
its scheduled events); the gap fills answer `DescribeInstanceStatus` (EC2 protocol) and
`DescribeTargetHealth` (query protocol) from moto's own instances and target groups with that health
laid over them, serialised from botocore's output shapes like every other gap fill:

* an impaired instance: `SystemStatus` `impaired` with `reachability` `failed` since the moment it
  failed, an `instance-retirement` scheduled event, and its targets `unhealthy`
  (`Target.FailedHealthChecks`), which is what an ALB health check sees of a dead host;
* a terminated instance is not running: absent unless `IncludeAllInstances`, and its targets are
  `draining` (`Target.DeregistrationInProgress`), as after an Auto Scaling termination.

A reboot does not clear a system status check (the host is at fault); replacing the instance does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from runbook_sandbox.aws.cloudtrail import ACCOUNT_ID, ApiError
from runbook_sandbox.aws.query_protocol import ec2_list

__all__ = ["FleetHealth", "Impairment", "describe_instance_status", "describe_target_health"]

_STATES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}


@dataclasses.dataclass(frozen=True)
class Impairment:
    since: dt.datetime
    check: str = "system"  # system | instance
    event_code: str = "instance-retirement"
    event_description: str = "The instance is running on degraded hardware"


@dataclasses.dataclass
class FleetHealth:
    impaired: dict[str, Impairment] = dataclasses.field(default_factory=dict)

    def impair(self, instance_id: str, impairment: Impairment) -> None:
        self.impaired[instance_id] = impairment


def _check(status: str, since: dt.datetime | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {"Name": "reachability", "Status": "failed" if since else "passed"}
    if since:
        detail["ImpairedSince"] = since
    return {"Status": status, "Details": [detail]}


def _status_row(instance: Any, health: FleetHealth) -> dict[str, Any]:
    state = instance.state
    row: dict[str, Any] = {
        "InstanceId": instance.id,
        "AvailabilityZone": instance.placement.zone,
        "InstanceState": {"Code": _STATES.get(state, 16), "Name": state},
    }
    if state != "running":
        row["InstanceStatus"] = row["SystemStatus"] = {"Status": "not-applicable"}
        return row
    bad = health.impaired.get(instance.id)
    row["SystemStatus"] = _check("impaired", bad.since) if bad and bad.check == "system" else _check("ok")
    row["InstanceStatus"] = _check("impaired", bad.since) if bad and bad.check == "instance" else _check("ok")
    row["AttachedEbsStatus"] = {"Status": "ok", "Details": [{"Name": "reachability", "Status": "passed"}]}
    if bad and bad.event_code:
        row["Events"] = [
            {
                "InstanceEventId": f"instance-event-{instance.id[2:19]}",
                "Code": bad.event_code,
                "Description": bad.event_description,
                "NotBefore": (bad.since + dt.timedelta(days=14)).replace(microsecond=0),
            }
        ]
    return row


def _matches(row: dict[str, Any], filters: list[dict[str, Any]]) -> bool:
    fields = {
        "instance-id": row["InstanceId"],
        "availability-zone": row["AvailabilityZone"],
        "instance-state-name": row["InstanceState"]["Name"],
        "instance-status.status": row["InstanceStatus"]["Status"],
        "system-status.status": row["SystemStatus"]["Status"],
        "event.code": ",".join(e["Code"] for e in row.get("Events", [])),
    }
    for f in filters:
        name, values = f.get("Name", ""), ec2_list(f.get("Value"))
        if name not in fields:
            raise ApiError("InvalidParameterValue", f"The filter '{name}' is invalid", 400)
        if fields[name] not in values:
            return False
    return True


def describe_instance_status(ec2: Any, health: FleetHealth, request: dict[str, Any]) -> dict[str, Any]:
    wanted = ec2_list(request.get("InstanceId"))
    include_all = str(request.get("IncludeAllInstances", "false")).lower() == "true"
    instances = {i.id: i for r in ec2.reservations.values() for i in r.instances}
    missing = [i for i in wanted if i not in instances]
    if missing:
        raise ApiError(
            "InvalidInstanceID.NotFound", f"The instance IDs '{', '.join(missing)}' do not exist", 400
        )
    chosen = [instances[i] for i in wanted] if wanted else list(instances.values())
    rows = [_status_row(i, health) for i in chosen if include_all or i.state == "running"]
    filters = ec2_list(request.get("Filter"))
    return {"InstanceStatuses": [r for r in rows if _matches(r, filters)]}


def describe_target_health(
    elbv2: Any, ec2: Any, health: FleetHealth, request: dict[str, Any]
) -> dict[str, Any]:
    arn = request.get("TargetGroupArn", "")
    group = elbv2.target_groups.get(arn)
    if group is None:
        raise ApiError("TargetGroupNotFound", f"Target groups '{arn}' not found", 400)
    instances = {i.id: i for r in ec2.reservations.values() for i in r.instances}
    registered = [dict(t) for t in group.targets.values()]
    draining = [dict(t) for t in getattr(group, "terminated_targets", {}).values()]
    asked = request.get("Targets") or []
    rows = []
    for target, leaving in [(t, False) for t in registered] + [(t, True) for t in draining]:
        if asked and target["Id"] not in {a.get("Id") for a in asked}:
            continue
        instance = instances.get(target["Id"])
        state: dict[str, Any]
        if leaving or (instance is not None and instance.state in ("shutting-down", "terminated")):
            state = {
                "State": "draining",
                "Reason": "Target.DeregistrationInProgress",
                "Description": "Target deregistration is in progress",
            }
        elif instance is not None and instance.state != "running":
            state = {
                "State": "unused",
                "Reason": "Target.InvalidState",
                "Description": f"Target is in the {instance.state} state",
            }
        elif target["Id"] in health.impaired:
            state = {
                "State": "unhealthy",
                "Reason": "Target.FailedHealthChecks",
                "Description": "Health checks failed",
            }
        else:
            state = {"State": "healthy"}
        rows.append(
            {
                "Target": {"Id": target["Id"], "Port": int(target.get("Port") or group.port)},
                "HealthCheckPort": str(group.health_check_port or "traffic-port"),
                "TargetHealth": state,
            }
        )
    return {"TargetHealthDescriptions": rows}


def backends(region: str) -> tuple[Any, Any]:
    from moto.ec2.models import ec2_backends
    from moto.elbv2.models import elbv2_backends

    return ec2_backends[ACCOUNT_ID][region], elbv2_backends[ACCOUNT_ID][region]
