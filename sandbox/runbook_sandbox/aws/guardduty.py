"""GuardDuty findings: moto keeps detectors but answers `ListFindings` with "Not yet implemented".

The sandbox plants findings (in the API's member names) on a `FindingBook`; the gap fill answers the
two REST-JSON calls a runbook and `aws guardduty list-findings` make, `POST /detector/{id}/findings`
and `POST /detector/{id}/findings/get`, serialised to the wire names (`findingIds`, `createdAt`,
`resource.instanceDetails`...) from botocore's GuardDuty model. ListFindings understands the
criteria an on-call engineer uses (`severity` gte/gt, `updatedAt` gte in epoch milliseconds,
`service.archived` eq, `type` eq, `resource.instanceDetails.instanceId` eq) and sorts on one
attribute, highest severity first by default.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any

from runbook_sandbox.aws.cloudtrail import ApiError

__all__ = ["PATH", "FindingBook", "answer"]

PATH = re.compile(r"^/detector/(?P<detector>[^/]+)/findings(?P<get>/get)?$")


@functools.cache
def _model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("guardduty")


def wire(value: Any, shape: Any) -> Any:
    """API member names -> the JSON wire names of the model (`FindingIds` -> `findingIds`)."""
    kind = shape.type_name
    if kind == "structure":
        return {
            member.serialization.get("name", name): wire(value[name], member)
            for name, member in shape.members.items()
            if name in value and value[name] is not None
        }
    if kind == "list":
        return [wire(item, shape.member) for item in value]
    if kind == "map":
        return {k: wire(v, shape.value) for k, v in value.items()}
    return value


@dataclasses.dataclass
class FindingBook:
    findings: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def add(self, finding: dict[str, Any]) -> None:
        self.findings.append(finding)


def _field(finding: dict[str, Any], path: str) -> Any:
    aliases = {
        "severity": "Severity",
        "updatedAt": "UpdatedAt",
        "type": "Type",
        "service.archived": "Archived",
        "resource.instanceDetails.instanceId": "InstanceId",
        "resource.resourceType": "ResourceType",
    }
    key = aliases.get(path)
    if key is None:
        raise ApiError(
            "BadRequestException", f"The request is rejected because {path} is not a valid criterion", 400
        )
    if key == "Archived":
        return bool((finding.get("Service") or {}).get("Archived", False))
    if key == "InstanceId":
        return ((finding.get("Resource") or {}).get("InstanceDetails") or {}).get("InstanceId")
    if key == "ResourceType":
        return (finding.get("Resource") or {}).get("ResourceType")
    if key == "UpdatedAt":
        import datetime as dt

        return int(dt.datetime.fromisoformat(finding["UpdatedAt"].replace("Z", "+00:00")).timestamp() * 1000)
    return finding.get(key)


_COMPARE = {
    "gt": float.__gt__,
    "greaterThan": float.__gt__,
    "gte": float.__ge__,
    "greaterThanOrEqual": float.__ge__,
    "lt": float.__lt__,
    "lessThan": float.__lt__,
    "lte": float.__le__,
    "lessThanOrEqual": float.__le__,
}


def _keep(finding: dict[str, Any], criteria: dict[str, Any]) -> bool:
    for path, condition in criteria.items():
        value = _field(finding, path)
        for op, operand in condition.items():
            if op in ("eq", "equals", "neq", "notEquals"):
                hit = str(value).lower() in [str(v).lower() for v in operand]
                if hit != (op in ("eq", "equals")):
                    return False
            elif op in _COMPARE:
                if not _COMPARE[op](float(value), float(operand)):
                    return False
            else:
                raise ApiError("BadRequestException", f"unsupported condition {op!r} on {path}", 400)
    return True


def answer(
    book: FindingBook, detector_ids: list[str], path: str, body: dict[str, Any]
) -> dict[str, Any] | None:
    """The wire answer for a GuardDuty findings path, or None when the path is not ours."""
    match = PATH.match(path)
    if match is None:
        return None
    if match["detector"] not in detector_ids:
        raise ApiError(
            "BadRequestException",
            "The request is rejected because the input detectorId is not owned by the current account.",
            400,
        )
    if match["get"]:
        wanted = list(body.get("findingIds") or [])
        by_id = {f["Id"]: f for f in book.findings}
        found = [by_id[i] for i in wanted if i in by_id]  # in the order asked (ListFindings sorted them)
        output = _model().operation_model("GetFindings").output_shape
        return dict(wire({"Findings": found}, output))
    criteria = ((body.get("findingCriteria") or {}).get("criterion")) or {}
    kept = [f for f in book.findings if _keep(f, criteria)]
    sort = body.get("sortCriteria") or {"attributeName": "severity", "orderBy": "DESC"}
    attribute = sort.get("attributeName") or "severity"
    kept.sort(key=lambda f: (_field(f, attribute), f["Id"]), reverse=sort.get("orderBy", "ASC") == "DESC")
    start = int(body.get("nextToken") or 0)
    size = int(body.get("maxResults") or 50)
    page = kept[start : start + size]
    result: dict[str, Any] = {"FindingIds": [f["Id"] for f in page]}
    if start + size < len(kept):
        result["NextToken"] = str(start + size)
    return dict(wire(result, _model().operation_model("ListFindings").output_shape))
