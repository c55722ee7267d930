"""PagerDuty webhooks v3.

PagerDuty signs the raw body with each of the subscription's secrets: `X-PagerDuty-Signature` holds one
or more comma-separated `v1=<hex HMAC-SHA256>` (several while a secret is rotated); a request is
accepted when any of them matches any configured secret, compared in constant time. It expects a 2xx
within 5 s (the app answers as soon as the event is stored) and names each delivery in `X-Webhook-Id`.

An `incident.triggered` / `incident.reopened` event is a firing alert, `incident.resolved` a resolved
one; any other event type (acknowledged, annotated, escalated…) is stored and never routed. The alert's
labels are built from the incident: `alertname` (its title), `service`, `urgency`, `priority`,
`event_type`, `incident_id`, `incident_key`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from runbook_kit.serve.sources import AlertEvent, Delivery, Rejected, Request, constant_time_equal, parse_json

__all__ = ["receive", "sign"]

NAME = "pagerduty"
_FIRING = {"incident.triggered", "incident.reopened"}
_RESOLVED = {"incident.resolved"}


def sign(secret: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _verify(secrets: list[str], request: Request) -> None:
    header = request.headers.get("x-pagerduty-signature", "")
    given = [s.strip() for s in header.split(",") if s.strip().startswith("v1=")]
    if not given:
        raise Rejected(401, "pagerduty: the X-PagerDuty-Signature header is missing or has no v1= signature")
    expected = [sign(secret, request.body) for secret in secrets]
    if not any([constant_time_equal(g, e) for g in given for e in expected]):
        raise Rejected(401, "pagerduty: no signature matches the body")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def normalize(data: Mapping[str, Any], delivery_id: str) -> Delivery:
    event = data.get("event")
    if not isinstance(event, dict) or not isinstance(event.get("event_type"), str):
        raise Rejected(400, "pagerduty: the body has no event.event_type (not a v3 webhook)")
    kind = event["event_type"]
    incident = event.get("data") if isinstance(event.get("data"), dict) else {}
    assert isinstance(incident, dict)
    incident_id = _text(incident.get("id"))
    if kind.startswith("incident.") and not incident_id:
        raise Rejected(400, "pagerduty: event.data.id is missing")
    service = incident.get("service") if isinstance(incident.get("service"), dict) else {}
    priority = incident.get("priority") if isinstance(incident.get("priority"), dict) else {}
    labels = {
        "alertname": _text(incident.get("title")) or kind,
        "event_type": kind,
        "incident_id": incident_id,
        "incident_key": _text(incident.get("incident_key")),
        "service": _text((service or {}).get("summary")),
        "urgency": _text(incident.get("urgency")),
        "priority": _text((priority or {}).get("summary")),
    }
    status = "firing" if kind in _FIRING else "resolved" if kind in _RESOLVED else "other"
    annotations = {"url": _text(incident.get("html_url")), "event_id": _text(event.get("id"))}
    # the event's time, not the incident's: a reopened incident is a new notification, a retry is not
    starts_at = _text(event.get("occurred_at")) or _text(incident.get("created_at"))
    alert = AlertEvent(
        source=NAME,
        status=status,
        labels={k: v for k, v in labels.items() if v},
        annotations={k: v for k, v in annotations.items() if v},
        starts_at=starts_at,
        fingerprint=incident_id or _text(event.get("id")),
        delivery_id=delivery_id or _text(event.get("id")),
    )
    return Delivery(source=NAME, events=(alert,))


def receive(config: Mapping[str, Any], request: Request) -> Delivery:
    _verify(config["secrets"], request)
    return normalize(parse_json(request.body, NAME), request.headers.get("x-webhook-id", ""))
