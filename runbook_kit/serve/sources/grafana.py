"""Grafana alerting webhook (payload `version` "1", Alertmanager-like alerts).

Grafana's webhook contact point signs the raw body when an HMAC secret is set: the signature header
(default `X-Grafana-Alerting-Signature`) carries the lower-case hex HMAC-SHA256 of the body or, when a
timestamp header is configured on the contact point, of `"<timestamp>:<body>"`. With a timestamp the
request is also refused when older than `max_age` seconds (a replayed request). A contact point may
instead (or also) send bearer or basic credentials, checked as for Alertmanager.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any

from runbook_kit.serve.sources import Delivery, Rejected, Request, constant_time_equal, parse_json
from runbook_kit.serve.sources.alertmanager import authenticate, normalize

__all__ = ["receive", "sign"]

NAME = "grafana"
DEFAULT_SIGNATURE_HEADER = "X-Grafana-Alerting-Signature"


def sign(secret: str, body: bytes, timestamp: str | None = None) -> str:
    signed = (timestamp.encode() + b":" + body) if timestamp is not None else body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def _verify_signature(config: Mapping[str, Any], request: Request) -> None:
    header = str(config.get("signature_header") or DEFAULT_SIGNATURE_HEADER).lower()
    given = request.headers.get(header, "").strip().lower()
    if not given:
        raise Rejected(401, f"grafana: the {header} header is missing")
    timestamp = None
    if config.get("timestamp_header"):
        name = str(config["timestamp_header"]).lower()
        timestamp = request.headers.get(name, "").strip()
        try:
            sent = float(timestamp)
        except ValueError:
            raise Rejected(401, f"grafana: the {name} header is missing or not a number") from None
        if sent > 1e11:  # milliseconds
            sent /= 1000
        max_age = float(config.get("max_age", 300))
        if abs(time.time() - sent) > max_age:
            raise Rejected(401, f"grafana: the request timestamp is more than {max_age:g} s away from now")
    secrets = config["hmac_secrets"]
    # every secret is tried, so the time taken does not say which one matched
    matched = [constant_time_equal(given, sign(secret, request.body, timestamp)) for secret in secrets]
    if not any(matched):
        raise Rejected(401, "grafana: the signature does not match the body")


def receive(config: Mapping[str, Any], request: Request) -> Delivery:
    if config.get("hmac_secrets"):
        _verify_signature(config, request)
    if config.get("bearer_token") or config.get("basic"):
        authenticate(config, request.headers, source=NAME)
    return normalize(parse_json(request.body, NAME), source=NAME, version="1")
