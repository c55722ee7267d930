"""CloudWatch alarms delivered by an Amazon SNS HTTP(S) subscription.

SNS posts JSON as `text/plain`: `Type` (SubscriptionConfirmation, Notification, UnsubscribeConfirmation),
`MessageId` (reused on retries), `TopicArn`, `Message` (for CloudWatch, the alarm as JSON), `Timestamp`,
`SignatureVersion`, `Signature`, `SigningCertURL`. Verification, in order:

* the topic is allow-listed (`topics`): a valid SNS signature proves only that *some* AWS account's topic
  sent the message, not that it is ours;
* `SigningCertURL` is https, from a host `sns.<region>.amazonaws.com` (or `.amazonaws.com.cn`), a `.pem`;
  certificates are fetched once and cached; an expired certificate is refused;
* `Signature` is RSA PKCS#1 v1.5 over SNS's canonical string, SHA1 for SignatureVersion 1, SHA256 for 2;
* `Timestamp` is no older than `max_age` (default 1 h, SNS's longest retry policy).

`test_certificates` ({cert URL: PEM file}) trusts a certificate without fetching it, and
`test_certificate_endpoint` fetches certificates from an SNS emulator (moto) instead of AWS: explicit
test settings, for tests that sign with their own key or deliver from moto. The URL checks still apply.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
import threading
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from runbook_kit.serve.sources import AlertEvent, Delivery, Rejected, Request, label_fingerprint, parse_json

__all__ = ["receive", "string_to_sign", "valid_sns_url"]

NAME = "sns"
_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_certs: dict[str, Any] = {}
_certs_lock = threading.Lock()


def valid_sns_url(url: str, *, pem: bool = False) -> bool:
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and parts.port in (None, 443)
        and not parts.username
        and bool(_HOST.match(parts.hostname or ""))
        and (not pem or parts.path.endswith(".pem"))
    )


def string_to_sign(message: Mapping[str, Any]) -> bytes:
    """SNS's canonical form: `Name\\nvalue\\n` for each signed field present, in this order."""
    fields = _FIELDS[message["Type"]]
    out = []
    for name in fields:
        if name == "Subject" and message.get("Subject") is None:
            continue
        out.append(f"{name}\n{message[name]}\n")
    return "".join(out).encode()


def _certificate(url: str, config: Mapping[str, Any]) -> Any:
    from cryptography import x509

    with _certs_lock:
        cert = _certs.get(url)
    if cert is None:
        trusted = (config.get("test_certificates") or {}).get(url)
        try:
            if trusted:
                with open(trusted, "rb") as fh:
                    pem = fh.read()
            elif config.get("test_certificate_endpoint"):  # tests: an SNS emulator serves the certificate
                parts = urllib.parse.urlsplit(url)
                endpoint = str(config["test_certificate_endpoint"]).rstrip("/") + parts.path
                request = urllib.request.Request(endpoint, headers={"Host": parts.netloc})  # noqa: S310
                with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - test setting
                    pem = response.read(65536)
            else:
                with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - https, checked
                    pem = response.read(65536)
            cert = x509.load_pem_x509_certificate(pem)
        except (OSError, ValueError) as exc:
            raise Rejected(401, f"sns: cannot load the signing certificate ({str(exc)[:80]})") from None
        with _certs_lock:
            _certs[url] = cert
    now = dt.datetime.now(dt.UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise Rejected(401, "sns: the signing certificate has expired or is not yet valid")
    return cert


def _verify(message: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    version = str(message.get("SignatureVersion"))
    algorithm = {"1": hashes.SHA1, "2": hashes.SHA256}.get(version)
    if algorithm is None:
        raise Rejected(401, f"sns: SignatureVersion {version[:10]!r} is not supported (1 or 2)")
    url = str(message.get("SigningCertURL", ""))
    if not valid_sns_url(url, pem=True):
        raise Rejected(
            401, f"sns: SigningCertURL {url[:120]!r} is not an https URL of sns.<region>.amazonaws.com"
        )
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
        signed = string_to_sign(message)
    except (binascii.Error, KeyError) as exc:
        raise Rejected(401, f"sns: the message cannot be verified ({type(exc).__name__}: {exc})") from None
    key = _certificate(url, config).public_key()
    try:
        key.verify(signature, signed, padding.PKCS1v15(), algorithm())
    except (InvalidSignature, TypeError, ValueError):
        raise Rejected(401, "sns: the signature does not match the message") from None


def _check_age(message: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    try:
        sent = dt.datetime.fromisoformat(str(message.get("Timestamp", "")).replace("Z", "+00:00"))
    except ValueError:
        raise Rejected(400, "sns: Timestamp is missing or not ISO 8601") from None
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=dt.UTC)
    max_age = float(config.get("max_age", 3600))
    age = (dt.datetime.now(dt.UTC) - sent).total_seconds()
    if age > max_age or age < -300:
        raise Rejected(
            401, f"sns: the message is {age:.0f} s old (allowed: {max_age:g} s); refused as a replay"
        )


def _region(alarm: Mapping[str, Any], message: Mapping[str, Any]) -> str:
    """The alarm's region code, from its ARN, else the topic's (arn:aws:<service>:<region>:...)."""
    for arn in (alarm.get("AlarmArn"), message.get("TopicArn")):
        parts = str(arn or "").split(":")
        if len(parts) > 3 and parts[0] == "arn" and re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", parts[3]):
            return parts[3]
    return ""


def _alarm(message: Mapping[str, Any]) -> AlertEvent:
    try:
        alarm = json.loads(message["Message"])
    except (ValueError, TypeError):
        alarm = None
    if not isinstance(alarm, dict) or not isinstance(alarm.get("AlarmName"), str):
        # not a CloudWatch alarm: stored as an `other` event, never routed
        labels = {"alertname": str(message.get("Subject") or "sns"), "topic": message["TopicArn"]}
        return AlertEvent(
            source=NAME,
            status="other",
            labels=labels,
            annotations={"message": str(message.get("Message", ""))[:2000]},
            starts_at=str(message["Timestamp"]),
            fingerprint=label_fingerprint(labels),
            delivery_id=str(message["MessageId"]),
        )
    state = str(alarm.get("NewStateValue", ""))
    status = "firing" if state == "ALARM" else "resolved" if state == "OK" else "other"
    trigger = alarm.get("Trigger") if isinstance(alarm.get("Trigger"), dict) else {}
    assert isinstance(trigger, dict)
    labels = {
        "alertname": alarm["AlarmName"],
        "region": _region(alarm, message),  # a code (eu-west-1); the alarm's `Region` is a display name
        "account": str(alarm.get("AWSAccountId", "")),
        "state": state,
        "metric": str(trigger.get("MetricName", "")),
        "metric_namespace": str(trigger.get("Namespace", "")),
        "topic": message["TopicArn"],
    }
    for dim in trigger.get("Dimensions") or []:
        if isinstance(dim, dict) and isinstance(dim.get("name"), str):
            labels[f"dimension_{dim['name']}"] = str(dim.get("value", ""))
    annotations = {
        "description": str(alarm.get("AlarmDescription") or ""),
        "reason": str(alarm.get("NewStateReason") or ""),
        "alarm_arn": str(alarm.get("AlarmArn") or ""),
    }
    identity = str(alarm.get("AlarmArn") or "") or label_fingerprint(
        {"account": labels["account"], "region": labels["region"], "alertname": labels["alertname"]}
    )
    return AlertEvent(
        source=NAME,
        status=status,
        labels={k: v for k, v in labels.items() if v},
        annotations={k: v for k, v in annotations.items() if v},
        starts_at=str(alarm.get("StateChangeTime") or message["Timestamp"]),
        fingerprint=identity,
        delivery_id=str(message["MessageId"]),
    )


def receive(config: Mapping[str, Any], request: Request) -> Delivery:
    message = parse_json(request.body, NAME)
    kind = message.get("Type")
    if kind not in _FIELDS:
        raise Rejected(400, f"sns: Type {str(kind)[:40]!r} is not an SNS message type")
    missing = [f for f in _FIELDS[kind] if f != "Subject" and not isinstance(message.get(f), str)]
    if missing:
        raise Rejected(400, f"sns: the {kind} lacks {', '.join(missing)}")
    if message["TopicArn"] not in set(config.get("topics") or ()):
        raise Rejected(403, f"sns: topic {message['TopicArn'][:200]!r} is not allow-listed")
    _verify(message, config)
    _check_age(message, config)
    if kind == "Notification":
        return Delivery(source=NAME, events=(_alarm(message),))
    if kind == "SubscriptionConfirmation":
        if not valid_sns_url(message["SubscribeURL"]):
            raise Rejected(400, "sns: SubscribeURL is not an https URL of sns.<region>.amazonaws.com")
        return Delivery(
            source=NAME,
            events=(),
            confirm_url=message["SubscribeURL"],
            note=f"sns: subscription confirmation for {message['TopicArn']}",
        )
    return Delivery(source=NAME, events=(), note=f"sns: unsubscribed from {message['TopicArn']}")
