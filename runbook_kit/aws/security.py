"""Security events: GuardDuty and Security Hub findings, most severe first, read only.

During an incident the question is "is this an attack?" as much as "what broke?". Both services
rate severity on different scales (GuardDuty 0-10, Security Hub's label and 0-100 `Normalized`), so
one frame puts them on Security Hub's 0-100 scale with the label beside it. Findings are context, not
a cause: a port probe on an instance is always there; `security_findings` lists them for the record
and `what_changed` shows them next to the changes without ranking them among the causes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from runbook_kit import clients
from runbook_kit.errors import backend_call

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["COLUMNS", "guardduty_findings", "security_findings", "securityhub_findings"]

COLUMNS = [
    "source",
    "severity",
    "label",
    "type",
    "title",
    "resource",
    "first_seen",
    "last_seen",
    "count",
    "id",
]


def _label(normalized: float) -> str:
    return (
        "CRITICAL"
        if normalized >= 90
        else "HIGH"
        if normalized >= 70
        else "MEDIUM"
        if normalized >= 40
        else "LOW"
        if normalized >= 1
        else "INFORMATIONAL"
    )


def _gd_resource(resource: dict[str, Any]) -> str:
    kind = resource.get("ResourceType", "")
    instance = (resource.get("InstanceDetails") or {}).get("InstanceId")
    user = (resource.get("AccessKeyDetails") or {}).get("UserName")
    return f"{kind} {instance or user or ''}".strip()


def guardduty_findings(
    *,
    minutes: float | None = None,
    min_severity: float = 0,
    max_results: int = 50,
    guardduty: Any | None = None,
) -> pd.DataFrame:
    """GuardDuty findings of every detector (not archived), updated within `minutes` if given."""
    guardduty = guardduty or clients.aws("guardduty")
    criterion: dict[str, Any] = {"service.archived": {"Eq": ["false"]}}
    if min_severity:
        criterion["severity"] = {"GreaterThanOrEqual": int(min_severity)}
    if minutes is not None:
        since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)
        criterion["updatedAt"] = {"GreaterThanOrEqual": int(since.timestamp() * 1000)}
    rows = []
    with backend_call("aws", "guardduty list-detectors"):
        detectors = guardduty.list_detectors().get("DetectorIds") or []
    for detector in detectors:
        with backend_call("aws", "guardduty list-findings"):
            ids = (
                guardduty.list_findings(
                    DetectorId=detector,
                    FindingCriteria={"Criterion": criterion},
                    SortCriteria={"AttributeName": "severity", "OrderBy": "DESC"},
                    MaxResults=max_results,
                ).get("FindingIds")
                or []
            )
        if not ids:
            continue
        with backend_call("aws", "guardduty get-findings"):
            findings = guardduty.get_findings(DetectorId=detector, FindingIds=ids).get("Findings") or []
        for f in findings:
            service = f.get("Service") or {}
            normalized = float(f.get("Severity", 0)) * 10
            rows.append(
                {
                    "source": "guardduty",
                    "severity": normalized,
                    "label": _label(normalized),
                    "type": f.get("Type"),
                    "title": f.get("Title"),
                    "resource": _gd_resource(f.get("Resource") or {}),
                    "first_seen": service.get("EventFirstSeen") or f.get("CreatedAt"),
                    "last_seen": service.get("EventLastSeen") or f.get("UpdatedAt"),
                    "count": service.get("Count"),
                    "id": f.get("Id"),
                }
            )
    return _frame(rows)


def securityhub_findings(
    *,
    minutes: float | None = None,
    labels: Sequence[str] = ("CRITICAL", "HIGH", "MEDIUM"),
    max_results: int = 50,
    securityhub: Any | None = None,
) -> pd.DataFrame:
    """Active Security Hub findings with these severity labels, updated within `minutes` if given."""
    securityhub = securityhub or clients.aws("securityhub")
    filters: dict[str, Any] = {
        "RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}],
        "SeverityLabel": [{"Value": v, "Comparison": "EQUALS"} for v in labels],
    }
    if minutes is not None:
        filters["UpdatedAt"] = [{"DateRange": {"Value": max(1, int(minutes // 1440) or 1), "Unit": "DAYS"}}]
    with backend_call("aws", "securityhub get-findings"):
        answer = securityhub.get_findings(
            Filters=filters,
            MaxResults=max_results,
            SortCriteria=[{"Field": "SeverityNormalized", "SortOrder": "desc"}],
        )
    rows = []
    for f in answer.get("Findings") or []:
        severity = f.get("Severity") or {}
        label = severity.get("Label") or _label(float(severity.get("Normalized", 0)))
        if labels and label not in labels:  # not every implementation filters server-side
            continue
        rows.append(
            {
                "source": "securityhub",
                "severity": float(severity.get("Normalized", 0)),
                "label": label,
                "type": ", ".join(f.get("Types") or []),
                "title": f.get("Title"),
                "resource": ", ".join(r.get("Id", "") for r in f.get("Resources") or []),
                "first_seen": f.get("FirstObservedAt") or f.get("CreatedAt"),
                "last_seen": f.get("LastObservedAt") or f.get("UpdatedAt"),
                "count": None,
                "id": f.get("Id"),
            }
        )
    return _frame(rows)


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame(rows, columns=COLUMNS)
    for column in ("first_seen", "last_seen"):
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    return frame.sort_values(["severity", "last_seen"], ascending=False, kind="stable").reset_index(drop=True)


def security_findings(
    *,
    guardduty: pd.DataFrame | None = None,
    securityhub: pd.DataFrame | None = None,
    resources: Sequence[str] = (),
) -> pd.DataFrame:
    """Both sources in one frame, most severe first (pure; either frame may be None).

    `resources` (instance ids, ARNs, names of the resources involved in the incident) marks the
    findings about them in the `involved` column; the account's other findings stay listed."""
    import pandas as pd

    parts = [f for f in (guardduty, securityhub) if f is not None and not f.empty]
    frame = _frame(pd.concat(parts).to_dict("records") if parts else [])
    wanted = [r for r in resources if r]
    frame["involved"] = [any(r in str(text) for r in wanted) for text in frame["resource"]]
    return frame
