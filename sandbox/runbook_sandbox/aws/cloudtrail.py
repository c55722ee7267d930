"""CloudTrail `LookupEvents` for the sandbox: an event store with the real service's filters and shape.

moto does not implement LookupEvents, and "who changed what just before the incident" is the first
question of most runbooks. The trail holds seeded events (a CI user's deploy before the latency
spike) and, when the server records them, the write calls that go through the sandbox, so a runbook
that mitigates can find its own change in the trail afterwards.

Semantics follow the API reference: newest first; one lookup attribute at most; MaxResults 1..50
(default 50); an opaque NextToken; a default window of the last 90 days; `CloudTrailEvent` is the
full record as a JSON *string*.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ACCOUNT_ID", "ApiError", "Trail", "TrailEvent"]

ACCOUNT_ID = "123456789012"
_KEYS = {
    "EventId",
    "EventName",
    "ReadOnly",
    "Username",
    "ResourceType",
    "ResourceName",
    "EventSource",
    "AccessKeyId",
}


class ApiError(Exception):
    """An error the sandbox answers in the service's own shape (`__type` + `message`, HTTP 400)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass(frozen=True)
class TrailEvent:
    event_name: str
    event_source: str
    event_time: dt.datetime
    username: str
    access_key_id: str = "AKIASANDBOXEXAMPLE01"
    read_only: bool = False
    resources: tuple[tuple[str, str], ...] = ()  # (ResourceType, ResourceName)
    request_parameters: dict[str, Any] = field(default_factory=dict)
    region: str = "us-east-1"
    user_agent: str = "aws-cli/2.15.0"
    source_ip: str = "203.0.113.10"
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def record(self) -> dict[str, Any]:
        """The CloudTrail record (what CloudTrailEvent carries, as JSON)."""
        return {
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "IAMUser",
                "principalId": "AIDA" + self.username.upper().replace("-", "")[:17],
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/{self.username}",
                "accountId": ACCOUNT_ID,
                "accessKeyId": self.access_key_id,
                "userName": self.username,
            },
            "eventTime": self.event_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": self.event_source,
            "eventName": self.event_name,
            "awsRegion": self.region,
            "sourceIPAddress": self.source_ip,
            "userAgent": self.user_agent,
            "requestParameters": self.request_parameters or None,
            "responseElements": None,
            "requestID": str(uuid.uuid5(uuid.NAMESPACE_URL, self.event_id)),
            "eventID": self.event_id,
            "readOnly": self.read_only,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": ACCOUNT_ID,
            "eventCategory": "Management",
        }

    def wire(self) -> dict[str, Any]:
        """The `Events[]` member of a LookupEvents response (JSON protocol: epoch seconds)."""
        return {
            "EventId": self.event_id,
            "EventName": self.event_name,
            "ReadOnly": "true" if self.read_only else "false",
            "AccessKeyId": self.access_key_id,
            "EventTime": self.event_time.timestamp(),
            "EventSource": self.event_source,
            "Username": self.username,
            "Resources": [{"ResourceType": t, "ResourceName": n} for t, n in self.resources],
            "CloudTrailEvent": json.dumps(self.record()),
        }

    def attribute(self, key: str) -> list[str]:
        if key == "ResourceType":
            return [t for t, _ in self.resources]
        if key == "ResourceName":
            return [n for _, n in self.resources]
        value = {
            "EventId": self.event_id,
            "EventName": self.event_name,
            "Username": self.username,
            "EventSource": self.event_source,
            "AccessKeyId": self.access_key_id,
            "ReadOnly": "true" if self.read_only else "false",
        }[key]
        return [value]


def _time(value: Any, name: str) -> dt.datetime:
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, tz=dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ApiError("ValidationException", f"{name} is not a timestamp") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class Trail:
    """The events of one sandbox account (thread-safe: the server is threaded)."""

    def __init__(self) -> None:
        self._events: list[TrailEvent] = []
        self._lock = threading.Lock()

    def add(self, event: TrailEvent) -> None:
        with self._lock:
            self._events.append(event)

    def __len__(self) -> int:
        return len(self._events)

    def lookup(self, request: dict[str, Any], *, now: dt.datetime | None = None) -> dict[str, Any]:
        now = now or dt.datetime.now(dt.UTC)
        attributes = request.get("LookupAttributes") or []
        if len(attributes) > 1:
            raise ApiError(
                "InvalidLookupAttributesException", "You cannot specify more than one lookup attribute."
            )
        for attribute in attributes:
            if attribute.get("AttributeKey") not in _KEYS:
                raise ApiError(
                    "InvalidLookupAttributesException",
                    f"Invalid attribute key: {attribute.get('AttributeKey')}",
                )
        start = (
            _time(request["StartTime"], "StartTime")
            if "StartTime" in request
            else now - dt.timedelta(days=90)
        )
        end = _time(request["EndTime"], "EndTime") if "EndTime" in request else now
        if start > end:
            raise ApiError("InvalidTimeRangeException", "Start time must be before end time.")
        max_results = int(request.get("MaxResults") or 50)
        if not 1 <= max_results <= 50:
            raise ApiError("InvalidMaxResultsException", "MaxResults must be between 1 and 50.")
        offset = 0
        if request.get("NextToken"):
            try:
                offset = int(base64.urlsafe_b64decode(request["NextToken"]).decode())
            except ValueError:
                raise ApiError("InvalidNextTokenException", "Invalid NextToken.") from None
        with self._lock:
            events = list(self._events)
        selected = [
            e
            for e in events
            if start <= e.event_time <= end
            and all(a.get("AttributeValue") in e.attribute(a["AttributeKey"]) for a in attributes)
        ]
        selected.sort(key=lambda e: e.event_time, reverse=True)
        page = selected[offset : offset + max_results]
        response: dict[str, Any] = {"Events": [e.wire() for e in page]}
        if offset + max_results < len(selected):
            response["NextToken"] = base64.urlsafe_b64encode(str(offset + max_results).encode()).decode()
        return response
