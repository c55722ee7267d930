"""Alert senders: each module verifies a request from one sender and normalizes it to AlertEvents.

    alertmanager   Prometheus Alertmanager webhook, payload version 4; bearer or basic credentials
    grafana        Grafana alerting webhook, version 1; optional HMAC-SHA256 (with or without timestamp)
    sns            CloudWatch alarms through an SNS HTTP(S) subscription; SignatureVersion 1 and 2
    pagerduty      PagerDuty webhooks v3; `X-PagerDuty-Signature: v1=…` (several during rotation)

A source module has one function, `receive(config, request) -> Delivery`: it raises `Rejected` (a 4xx:
the sender must not retry, the request can never succeed) when the request is unauthenticated,
forged or malformed; it never touches the queue. What is stored, and when, is the app's business.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["AlertEvent", "Delivery", "Rejected", "Request", "constant_time_equal", "parse_json"]


class Rejected(Exception):
    """A request refused with a 4xx; `status` is the HTTP status, the message one readable line."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


@dataclasses.dataclass(frozen=True)
class Request:
    """What a source sees of an HTTP request: headers (lower-case names) and the raw body."""

    headers: Mapping[str, str]
    body: bytes


@dataclasses.dataclass(frozen=True)
class AlertEvent:
    """One alert, whatever sent it.

    `dedupe_key` is equal for the same notification delivered twice (a sender's retry, the same alert
    from two HA Alertmanagers, an SNS retry); `episode` is equal for every notification about one
    alert (its identity: the fingerprint of its labels), so a resolved event finds the firing one.
    """

    source: str
    status: str  # firing | resolved | other (acknowledged, a note, ...: stored, never routed)
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: str
    fingerprint: str
    delivery_id: str

    @property
    def episode(self) -> str:
        return f"{self.source}:{self.fingerprint}"

    @property
    def dedupe_key(self) -> str:
        raw = "\x1f".join((self.source, self.fingerprint, self.status, self.starts_at))
        return hashlib.sha256(raw.encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "status": self.status,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "starts_at": self.starts_at,
            "fingerprint": self.fingerprint,
            "delivery_id": self.delivery_id,
            "episode": self.episode,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlertEvent:
        return cls(
            source=data["source"],
            status=data["status"],
            labels=dict(data["labels"]),
            annotations=dict(data["annotations"]),
            starts_at=data["starts_at"],
            fingerprint=data["fingerprint"],
            delivery_id=data["delivery_id"],
        )


@dataclasses.dataclass(frozen=True)
class Delivery:
    """A verified request: its alerts, and what the sender asked besides (e.g. `truncated` alerts)."""

    source: str
    events: tuple[AlertEvent, ...]
    note: str | None = None  # worth a timeline line: "3 alerts truncated by the sender"
    confirm_url: str | None = None  # SNS SubscriptionConfirmation: the URL to GET


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def parse_json(body: bytes, what: str) -> dict[str, Any]:
    """The body as a JSON object, or Rejected(400) naming what is wrong."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Rejected(400, f"{what}: the body is not JSON ({str(exc)[:80]})") from None
    if not isinstance(data, dict):
        raise Rejected(400, f"{what}: the body must be a JSON object")
    return data


def string_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise Rejected(400, f"{where} must be an object of strings")
    return dict(value)


def label_fingerprint(labels: Mapping[str, str]) -> str:
    """A stable identity for an alert whose sender gives none (sorted labels, hashed)."""
    raw = "\x1f".join(f"{k}\x1e{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]
