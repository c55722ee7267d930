"""CloudFormation stacks with a history: what moto cannot backdate, answered from a planted book.

A real account changes all the time; a `what_changed` timeline must show those changes *and* still
name the deployment as the one nearest the symptom. moto records stack events at the moment a stack
is created (it cannot create history), and creating one costs seconds (its template parser imports
every service), so the sandbox plants the stacks' events in a `StackBook` and the gap fill answers
`ListStacks` and `DescribeStackEvents` (query protocol, serialised from botocore's model) from it,
together with any stack created through moto while the sandbox runs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
import uuid
from typing import Any

from runbook_sandbox import timeline as tl
from runbook_sandbox.aws.cloudtrail import ACCOUNT_ID, ApiError

__all__ = ["STACKS", "StackBook", "describe_stack_events", "list_stacks", "seed_stacks"]

# (stack, minutes before the anchor its last change finished, resources, last operation)
STACKS = (
    ("storefront-cache", 150, ("CacheCluster", "AWS::ElastiCache::CacheCluster"), "UPDATE"),
    ("shared-network", 60 * 24 * 9, ("PrivateSubnetA", "AWS::EC2::Subnet"), "CREATE"),
)


@dataclasses.dataclass
class StackBook:
    stacks: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # name -> summary
    events: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)  # name -> newest first


def seed_stacks(book: StackBook, anchor: dt.datetime) -> None:
    for name, ago, (logical, kind), operation in STACKS:
        end = (anchor - dt.timedelta(minutes=ago)).replace(microsecond=0)
        unique = uuid.uuid5(uuid.NAMESPACE_URL, name)
        stack_id = f"arn:aws:cloudformation:us-east-1:{ACCOUNT_ID}:stack/{name}/{unique}"
        created = end if operation == "CREATE" else end - dt.timedelta(days=40)
        steps = [
            (f"{operation}_IN_PROGRESS", name, "AWS::CloudFormation::Stack", "User Initiated"),
            (f"{operation}_IN_PROGRESS", logical, kind, ""),
            (f"{operation}_COMPLETE", logical, kind, ""),
            (f"{operation}_COMPLETE", name, "AWS::CloudFormation::Stack", ""),
        ]
        events = []
        for i, (status, resource, rtype, reason) in enumerate(steps):
            event = {
                "StackId": stack_id,
                "EventId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{name}/{i}")),
                "StackName": name,
                "LogicalResourceId": resource,
                "ResourceType": rtype,
                "PhysicalResourceId": stack_id if resource == name else f"{resource.lower()}-{name}",
                "Timestamp": end - dt.timedelta(seconds=40 * (len(steps) - 1 - i)),
                "ResourceStatus": status,
            }
            if reason:
                event["ResourceStatusReason"] = reason
            events.append(event)
        book.events[name] = events[::-1]
        summary = {
            "StackId": stack_id,
            "StackName": name,
            "CreationTime": created,
            "StackStatus": f"{operation}_COMPLETE",
            "TemplateDescription": f"{tl.LATENCY_NAMESPACE} {name}",
        }
        if operation == "UPDATE":
            summary["LastUpdatedTime"] = end
        book.stacks[name] = summary


def _moto_stacks(region: str) -> list[Any]:
    """Stacks created through moto, only if its CloudFormation was ever used (importing it costs seconds)."""
    models = sys.modules.get("moto.cloudformation.models")
    if models is None:
        return []
    return list(models.cloudformation_backends[ACCOUNT_ID][region].stacks.values())


def list_stacks(book: StackBook, region: str, request: dict[str, Any]) -> dict[str, Any]:
    wanted = set(request.get("StackStatusFilter") or [])
    summaries = list(book.stacks.values())
    summaries += [
        {"StackId": s.stack_id, "StackName": s.name, "CreationTime": s.creation_time, "StackStatus": s.status}
        for s in _moto_stacks(region)
        if s.name not in book.stacks
    ]
    return {"StackSummaries": [s for s in summaries if not wanted or s["StackStatus"] in wanted]}


def describe_stack_events(book: StackBook, region: str, request: dict[str, Any]) -> dict[str, Any] | None:
    name = (
        str(request.get("StackName", "")).split("/")[1]
        if "/" in str(request.get("StackName", ""))
        else str(request.get("StackName", ""))
    )
    if name in book.events:
        return {"StackEvents": book.events[name]}
    if any(s.name == name for s in _moto_stacks(region)):
        return None  # moto's own stack: moto answers
    raise ApiError("ValidationError", f"Stack with id {name} does not exist", 400)
