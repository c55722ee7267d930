"""Prometheus Alertmanager webhook receiver (payload version 4).

Alertmanager posts `{"version": "4", "groupKey", "status", "receiver", "groupLabels", "commonLabels",
"externalURL", "truncatedAlerts", "alerts": [{"status", "labels", "annotations", "startsAt", "endsAt",
"generatorURL", "fingerprint"}]}` and authenticates with its `http_config`: `authorization` (a bearer
token) or `basic_auth`. Both are compared in constant time. It retries on 5xx and drops on 4xx, so
everything refused here is refused for good and must be: a wrong token, a body that is not version 4.

Two Alertmanagers of an HA pair send the same alert with the same fingerprint and startsAt; the
event's dedupe key is built from those, never from the groupKey or the receiving replica.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from runbook_kit.serve.sources import (
    AlertEvent,
    Delivery,
    Rejected,
    Request,
    constant_time_equal,
    label_fingerprint,
    parse_json,
    string_map,
)

__all__ = ["authenticate", "normalize", "receive"]

NAME = "alertmanager"


def authenticate(credentials: Mapping[str, Any], headers: Mapping[str, str], *, source: str = NAME) -> None:
    """Bearer token or basic credentials, as configured; both compared in constant time.

    `credentials` holds `bearer_token` and/or `basic` ({username, password}), already resolved.
    """
    given = headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    token = credentials.get("bearer_token")
    basic = credentials.get("basic")
    ok = False
    if token and scheme.lower() == "bearer":
        ok = constant_time_equal(value.strip(), token)
    elif basic and scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, password = "", ""
        # both compared, always, so the time taken says nothing about which one was wrong
        ok = constant_time_equal(user, basic["username"]) & constant_time_equal(password, basic["password"])
    if not ok:
        raise Rejected(401, f"{source}: missing or wrong credentials")


def _alert(raw: Any, index: int, delivery_id: str) -> AlertEvent:
    where = f"alertmanager: alerts[{index}]"
    if not isinstance(raw, dict):
        raise Rejected(400, f"{where} must be an object")
    status = raw.get("status")
    if status not in ("firing", "resolved"):
        raise Rejected(400, f"{where}.status must be firing or resolved, got {str(status)[:40]!r}")
    labels = string_map(raw.get("labels"), f"{where}.labels")
    if not labels:
        raise Rejected(400, f"{where}.labels is empty")
    starts_at = raw.get("startsAt")
    if not isinstance(starts_at, str) or not starts_at:
        raise Rejected(400, f"{where}.startsAt is missing")
    fingerprint = raw.get("fingerprint")
    if fingerprint is not None and (not isinstance(fingerprint, str) or not fingerprint):
        raise Rejected(400, f"{where}.fingerprint must be a string")
    return AlertEvent(
        source=NAME,
        status=status,
        labels=labels,
        annotations=string_map(raw.get("annotations"), f"{where}.annotations"),
        starts_at=starts_at,
        fingerprint=fingerprint or label_fingerprint(labels),
        delivery_id=delivery_id,
    )


def normalize(data: Mapping[str, Any], *, source: str = NAME, version: str = "4") -> Delivery:
    if str(data.get("version")) != version:
        raise Rejected(
            400,
            f"{source}: payload version {str(data.get('version'))[:20]!r} is not "
            f"supported (expected {version!r})",
        )
    alerts = data.get("alerts")
    if not isinstance(alerts, list):
        raise Rejected(400, f"{source}: 'alerts' must be a list")
    group = str(data.get("groupKey", ""))[:200]
    events = tuple(_alert(a, i, group) for i, a in enumerate(alerts))
    if source != NAME:
        events = tuple(
            AlertEvent(
                source=source,
                status=e.status,
                labels=e.labels,
                annotations=e.annotations,
                starts_at=e.starts_at,
                fingerprint=e.fingerprint,
                delivery_id=e.delivery_id,
            )
            for e in events
        )
    truncated = data.get("truncatedAlerts") or 0
    note = None
    if isinstance(truncated, int) and truncated > 0:
        note = (
            f"{source} truncated {truncated} alert(s) of group {group!r} (max_alerts): "
            "they are not in this notification"
        )
    return Delivery(source=source, events=events, note=note)


def receive(config: Mapping[str, Any], request: Request) -> Delivery:
    authenticate(config, request.headers)
    return normalize(parse_json(request.body, NAME))
