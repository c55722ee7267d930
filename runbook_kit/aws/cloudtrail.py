"""CloudTrail LookupEvents over a window, as a DataFrame: who changed what, and when.

"What changed just before it broke" is the first question of an incident. LookupEvents answers it for
the last 90 days of management events, with two quirks this helper hides: it accepts at most ONE
lookup attribute per call, and it pages 50 events at a time. So the most selective filter asked for is
sent to the service and the others are applied here, page by page, with a cap (`max_events`) so a busy
account cannot turn a lookup into minutes of paging — a capped answer says so in a finding.

Columns: time (UTC), event, user, source, resources, read_only, parameters (the request parameters
from the CloudTrail record: a deployment id, a service name), event_id. Newest first, as the API.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from runbook_kit import clients, record
from runbook_kit.errors import backend_call

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["COLUMNS", "lookup_events"]

COLUMNS = ["time", "event", "user", "source", "resources", "read_only", "parameters", "event_id"]
# most selective first: the one sent to the service
_ATTRIBUTES = (
    ("event_name", "EventName"),
    ("resource_name", "ResourceName"),
    ("username", "Username"),
    ("event_source", "EventSource"),
)


def _window(
    *,
    start: dt.datetime | None,
    end: dt.datetime | None,
    minutes: float,
    around: Any | None,
    around_minutes: float,
) -> tuple[dt.datetime, dt.datetime]:
    if around is not None:
        import pandas as pd

        center = pd.Timestamp(around).to_pydatetime()
        if center.tzinfo is None:
            center = center.replace(tzinfo=dt.UTC)
        half = dt.timedelta(minutes=around_minutes)
        return center - half, min(center + half, dt.datetime.now(dt.UTC))
    end = end or dt.datetime.now(dt.UTC)
    return start or end - dt.timedelta(minutes=minutes), end


def _row(event: dict[str, Any]) -> dict[str, Any]:
    try:
        detail = json.loads(event.get("CloudTrailEvent") or "{}")
    except ValueError:
        detail = {}
    resources = [r.get("ResourceName", "") for r in event.get("Resources") or []]
    read_only = event.get("ReadOnly", detail.get("readOnly"))
    return {
        "time": event.get("EventTime"),
        "event": event.get("EventName", ""),
        "user": event.get("Username") or (detail.get("userIdentity") or {}).get("userName", ""),
        "source": event.get("EventSource", ""),
        "resources": ", ".join(r for r in resources if r),
        "read_only": str(read_only).lower() == "true",
        "parameters": detail.get("requestParameters") or {},
        "event_id": event.get("EventId", ""),
    }


@record.read_step("CloudTrail events", fix="cloudtrail:LookupEvents", columns=COLUMNS)
def lookup_events(
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    minutes: float = 60,
    around: Any | None = None,
    around_minutes: float = 30,
    read_only: bool | None = None,
    event_name: str = "",
    resource_name: str = "",
    username: str = "",
    event_source: str = "",
    max_events: int = 1000,
    cloudtrail: Any | None = None,
) -> pd.DataFrame:
    """Events in the window matching every filter given (newest first).

    The window is `start`..`end` (default: the last `minutes`), or `around` a moment ± `around_minutes`
    (the spike start, typically). `read_only=False` keeps the write events only.
    """
    import pandas as pd

    cloudtrail = cloudtrail or clients.aws("cloudtrail")
    start, end = _window(start=start, end=end, minutes=minutes, around=around, around_minutes=around_minutes)
    wanted = {
        "event_name": event_name,
        "resource_name": resource_name,
        "username": username,
        "event_source": event_source,
    }
    given = [(key, attr) for key, attr in _ATTRIBUTES if wanted[key]]
    kwargs: dict[str, Any] = {"StartTime": start, "EndTime": end}
    if given:
        key, attr = given[0]
        kwargs["LookupAttributes"] = [{"AttributeKey": attr, "AttributeValue": wanted[key]}]
    elif read_only is not None:
        kwargs["LookupAttributes"] = [{"AttributeKey": "ReadOnly", "AttributeValue": str(read_only).lower()}]

    def keep(row: dict[str, Any], raw: dict[str, Any]) -> bool:
        if read_only is not None and row["read_only"] != read_only:
            return False
        names = {r.get("ResourceName") for r in raw.get("Resources") or []}
        return (
            (not event_name or row["event"] == event_name)
            and (not username or row["user"] == username)
            and (not event_source or row["source"] == event_source)
            and (not resource_name or resource_name in names)
        )

    rows: list[dict[str, Any]] = []
    capped = False
    with backend_call("aws", "cloudtrail lookup-events"):
        for page in cloudtrail.get_paginator("lookup_events").paginate(**kwargs):
            for raw in page.get("Events", []):
                row = _row(raw)
                if keep(row, raw):
                    rows.append(row)
            if len(rows) >= max_events:
                capped = True
                break
    if capped:
        record.finding(
            f"CloudTrail lookup stopped at {max_events} events: older events in the window are not shown",
            severity="medium",
            start=start,
            end=end,
            filters=kwargs.get("LookupAttributes"),
        )
    frame = pd.DataFrame(rows[:max_events], columns=COLUMNS)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    frame["read_only"] = frame["read_only"].astype(bool)
    frame.attrs.update(start=start, end=end)
    return frame.sort_values("time", ascending=False, kind="stable").reset_index(drop=True)
