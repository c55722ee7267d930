"""Signed senders: PagerDuty v3, Grafana HMAC, SNS (SignatureVersion 1 and 2). Every forged or altered
request is refused; the canonical strings and HMACs here are built from the senders' documentation,
independently of the receiver's code. SNS certificates are generated here and trusted only through
the explicit `test_certificates` setting."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from runbook_kit.serve.sources import Rejected, Request, grafana, pagerduty, sns

# --- PagerDuty ---------------------------------------------------------------------------------

PD_SECRET, PD_OLD = "pd-secret-new", "pd-secret-old"


def _pd_sig(secret: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _pd_body(event_type: str = "incident.triggered", incident: str = "PGR0VU2") -> bytes:
    return json.dumps(
        {
            "event": {
                "id": "01BZ" + uuid.uuid4().hex[:8],
                "event_type": event_type,
                "resource_type": "incident",
                "occurred_at": "2026-11-30T10:00:00.000Z",
                "agent": None,
                "client": None,
                "data": {
                    "id": incident,
                    "type": "incident",
                    "title": "API 5xx rate high",
                    "status": "triggered",
                    "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2",
                    "incident_key": "k-1",
                    "created_at": "2026-11-30T09:59:00Z",
                    "urgency": "high",
                    "service": {"id": "PF9KMXH", "summary": "checkout-api"},
                    "priority": {"summary": "P1"},
                },
            }
        }
    ).encode()


def _pd(body: bytes, signature: str | None, secrets=(PD_SECRET, PD_OLD)):
    headers = {"x-webhook-id": "wh-1"}
    if signature is not None:
        headers["x-pagerduty-signature"] = signature
    return pagerduty.receive({"secrets": list(secrets)}, Request(headers=headers, body=body))


def test_pagerduty_accepts_any_valid_v1_signature_during_rotation():
    body = _pd_body()
    delivery = _pd(body, f"v1={'0' * 64},{_pd_sig(PD_OLD, body)}")
    [event] = delivery.events
    assert event.status == "firing" and event.labels["service"] == "checkout-api"
    assert event.labels["alertname"] == "API 5xx rate high" and event.fingerprint == "PGR0VU2"
    assert event.delivery_id == "wh-1"
    resolved = _pd(body2 := _pd_body("incident.resolved"), _pd_sig(PD_SECRET, body2)).events[0]
    assert resolved.status == "resolved" and resolved.episode == event.episode
    ack = _pd(body3 := _pd_body("incident.acknowledged"), _pd_sig(PD_SECRET, body3)).events[0]
    assert ack.status == "other"


@pytest.mark.parametrize(
    "forge",
    ["altered body", "wrong secret", "no header", "v0 scheme", "truncated", "empty", "uppercase scheme"],
)
def test_pagerduty_refuses_forged_and_altered(forge):
    body = _pd_body()
    signature = {
        "altered body": _pd_sig(PD_SECRET, body),
        "wrong secret": _pd_sig("guess", body),
        "no header": None,
        "v0 scheme": _pd_sig(PD_SECRET, body).replace("v1=", "v0="),
        "truncated": _pd_sig(PD_SECRET, body)[:-2],
        "empty": "",
        "uppercase scheme": _pd_sig(PD_SECRET, body).replace("v1=", "V1="),
    }[forge]
    sent = body.replace(b"checkout-api", b"checkout-apx") if forge == "altered body" else body
    with pytest.raises(Rejected) as err:
        _pd(sent, signature)
    assert err.value.status == 401


# --- Grafana -----------------------------------------------------------------------------------

GF_SECRET = "gf-secret"


def _gf_body() -> bytes:
    return json.dumps(
        {
            "version": "1",
            "orgId": 1,
            "groupKey": "{}:{}",
            "status": "firing",
            "receiver": "rk",
            "truncatedAlerts": 0,
            "state": "alerting",
            "title": "[FIRING:1]",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "HighLatency", "service": "checkout"},
                    "annotations": {"summary": "p99 > 2s"},
                    "startsAt": "2026-11-30T10:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                    "fingerprint": "a1b2c3",
                }
            ],
        }
    ).encode()


def _gf_hmac(secret: str, body: bytes, ts: str | None = None) -> str:
    return hmac.new(secret.encode(), (f"{ts}:".encode() + body) if ts else body, hashlib.sha256).hexdigest()


def test_grafana_with_and_without_timestamp():
    body = _gf_body()
    cfg = {"hmac_secrets": [GF_SECRET]}
    [event] = grafana.receive(
        cfg, Request({"x-grafana-alerting-signature": _gf_hmac(GF_SECRET, body)}, body)
    ).events
    assert (
        event.source == "grafana"
        and event.labels["alertname"] == "HighLatency"
        and event.fingerprint == "a1b2c3"
    )
    ts = str(int(time.time()))
    cfg_ts = {**cfg, "timestamp_header": "X-Grafana-Alerting-Timestamp"}
    headers = {
        "x-grafana-alerting-signature": _gf_hmac(GF_SECRET, body, ts),
        "x-grafana-alerting-timestamp": ts,
    }
    assert grafana.receive(cfg_ts, Request(headers, body)).events[0].status == "firing"


@pytest.mark.parametrize(
    "forge",
    [
        "altered body",
        "wrong secret",
        "no header",
        "old timestamp",
        "signed without the timestamp",
        "timestamp changed",
        "no timestamp",
    ],
)
def test_grafana_refuses_forged_and_altered(forge):
    body = _gf_body()
    ts = str(int(time.time()))
    cfg = {"hmac_secrets": [GF_SECRET], "timestamp_header": "X-Grafana-Alerting-Timestamp", "max_age": 300}
    headers = {
        "x-grafana-alerting-signature": _gf_hmac(GF_SECRET, body, ts),
        "x-grafana-alerting-timestamp": ts,
    }
    if forge == "altered body":
        body = body.replace(b"checkout", b"checkouT")
    elif forge == "wrong secret":
        headers["x-grafana-alerting-signature"] = _gf_hmac("nope", body, ts)
    elif forge == "no header":
        del headers["x-grafana-alerting-signature"]
    elif forge == "old timestamp":
        old = str(int(time.time()) - 3600)
        headers = {
            "x-grafana-alerting-signature": _gf_hmac(GF_SECRET, body, old),
            "x-grafana-alerting-timestamp": old,
        }
    elif forge == "signed without the timestamp":
        headers["x-grafana-alerting-signature"] = _gf_hmac(GF_SECRET, body)
    elif forge == "timestamp changed":
        headers["x-grafana-alerting-timestamp"] = str(int(ts) + 1)
    elif forge == "no timestamp":
        del headers["x-grafana-alerting-timestamp"]
    with pytest.raises(Rejected) as err:
        grafana.receive(cfg, Request(headers, body))
    assert err.value.status == 401


# --- SNS ---------------------------------------------------------------------------------------

TOPIC = "arn:aws:sns:eu-west-1:123456789012:cloudwatch-alarms"


def _cert(tmp_path, *, days: int = 30, expired: bool = False):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com (test)")])
    now = dt.datetime.now(dt.UTC)
    start, end = (
        (now - dt.timedelta(days=60), now - dt.timedelta(days=1))
        if expired
        else (now - dt.timedelta(days=1), now + dt.timedelta(days=days))
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / f"cert-{uuid.uuid4().hex[:6]}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    url = f"https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-{uuid.uuid4().hex}.pem"
    return key, url, path


def _alarm(state: str = "ALARM") -> str:
    return json.dumps(
        {
            "AlarmName": "orders-db-cpu-high",
            "AlarmDescription": "CPU > 90%",
            "AWSAccountId": "123456789012",
            "NewStateValue": state,
            "NewStateReason": "Threshold Crossed",
            "StateChangeTime": "2026-11-30T10:00:00.000+0000",
            "Region": "EU (Ireland)",
            "AlarmArn": "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:orders-db-cpu-high",
            "OldStateValue": "OK",
            "Trigger": {
                "MetricName": "CPUUtilization",
                "Namespace": "AWS/RDS",
                "Dimensions": [{"value": "orders-db", "name": "DBInstanceIdentifier"}],
            },
        }
    )


def _sign(message: dict, key, version: str = "1") -> dict:
    """SNS's documented canonical string: Name\\nvalue\\n for the type's signed fields, in order."""
    if message["Type"] == "Notification":
        fields = (
            ["Message", "MessageId"]
            + (["Subject"] if "Subject" in message else [])
            + ["Timestamp", "TopicArn", "Type"]
        )
    else:
        fields = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    canonical = "".join(f"{f}\n{message[f]}\n" for f in fields).encode()
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(canonical, padding.PKCS1v15(), algorithm)
    return {**message, "SignatureVersion": version, "Signature": base64.b64encode(signature).decode()}


def _notification(url: str, *, state: str = "ALARM", age: float = 0, subject: bool = True) -> dict:
    ts = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    message = {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": TOPIC,
        "Message": _alarm(state),
        "Timestamp": ts,
        "SigningCertURL": url,
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
    }
    if subject:
        message["Subject"] = f'{state}: "orders-db-cpu-high" in EU (Ireland)'
    return message


def _receive(message: dict, url: str, path, **cfg) -> object:
    config = {"topics": [TOPIC], "test_certificates": {url: str(path)}, **cfg}
    return sns.receive(
        config, Request({"content-type": "text/plain; charset=UTF-8"}, json.dumps(message).encode())
    )


@pytest.mark.parametrize("version", ["1", "2"])
def test_sns_signature_versions_1_and_2(tmp_path, version):
    key, url, path = _cert(tmp_path)
    [event] = _receive(_sign(_notification(url), key, version), url, path).events
    assert event.status == "firing" and event.source == "sns"
    assert event.labels["alertname"] == "orders-db-cpu-high"
    assert event.labels["dimension_DBInstanceIdentifier"] == "orders-db"
    assert event.labels["region"] == "eu-west-1"  # from the ARN, not the display name "EU (Ireland)"
    [ok] = _receive(_sign(_notification(url, state="OK", subject=False), key, version), url, path).events
    assert ok.status == "resolved" and ok.episode == event.episode
    path.unlink()  # the certificate is cached by URL: not fetched again
    assert _receive(_sign(_notification(url), key, version), url, path).events


@pytest.mark.parametrize(
    "forge",
    [
        "altered message",
        "other key",
        "http cert URL",
        "foreign host",
        "lookalike host",
        "not a pem",
        "old message",
        "version 3",
        "expired cert",
        "garbage signature",
        "subject added",
    ],
)
def test_sns_refuses_forged_altered_wrong_host_and_expired(tmp_path, forge):
    key, url, path = _cert(tmp_path, expired=forge == "expired cert")
    other, _, _ = _cert(tmp_path)
    urls = {
        "http cert URL": url.replace("https://", "http://"),
        "foreign host": "https://sns.eu-west-1.evil.example/cert.pem",
        "lookalike host": "https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem",
        "not a pem": url[:-4] + ".txt",
    }
    cert_url = urls.get(forge, url)
    message = _notification(cert_url, age=7200 if forge == "old message" else 0)
    signed = _sign(message, other if forge == "other key" else key)
    if forge == "version 3":
        signed["SignatureVersion"] = "3"
    if forge == "altered message":
        signed["Message"] = signed["Message"].replace("ALARM", "OK")
    if forge == "garbage signature":
        signed["Signature"] = "not base64!"
    if forge == "subject added":
        signed = _sign(_notification(url, subject=False), key)
        signed["Subject"] = "injected"
    with pytest.raises(Rejected) as err:
        _receive(signed, cert_url, path)
    assert err.value.status == 401, err.value


def test_sns_topics_are_allow_listed_and_confirmation_only_for_them(tmp_path):
    key, url, path = _cert(tmp_path)
    foreign = {**_notification(url), "TopicArn": "arn:aws:sns:eu-west-1:999999999999:theirs"}
    with pytest.raises(Rejected) as err:
        _receive(_sign(foreign, key), url, path)
    assert err.value.status == 403

    ts = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    subscribe = f"https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=t0k"
    confirmation = {
        "Type": "SubscriptionConfirmation",
        "MessageId": str(uuid.uuid4()),
        "Token": "t0k",
        "TopicArn": TOPIC,
        "Message": "You have chosen to subscribe...",
        "SubscribeURL": subscribe,
        "Timestamp": ts,
        "SigningCertURL": url,
    }
    delivery = _receive(_sign(confirmation, key), url, path)
    assert delivery.confirm_url == subscribe and delivery.events == ()
    with pytest.raises(Rejected) as err:
        _receive(
            _sign({**confirmation, "TopicArn": "arn:aws:sns:eu-west-1:999999999999:theirs"}, key), url, path
        )
    assert err.value.status == 403
    evil = {**confirmation, "SubscribeURL": "https://evil.example/?Action=ConfirmSubscription"}
    with pytest.raises(Rejected) as err:
        _receive(_sign(evil, key), url, path)
    assert err.value.status == 400


# --- over HTTP, against a real receiver ---------------------------------------------------------


def test_signed_senders_over_http(serve, tmp_path):
    key, url, path = _cert(tmp_path)
    (tmp_path / "pd").write_text(PD_SECRET)
    (tmp_path / "gf").write_text(GF_SECRET)
    route = {
        "name": "all",
        "match_re": {"alertname": ".+"},
        "runbook": "probe",
        "parameters": {"target": "{labels.alertname}"},
    }
    server = serve(
        routes=[route],
        sources={
            "pagerduty": {"secrets": [{"file": str(tmp_path / "pd")}]},
            "grafana": {"hmac_secret": {"file": str(tmp_path / "gf")}},
            "sns": {"topics": [TOPIC], "test_certificates": {url: str(path)}},
        },
    )
    pd_body, gf_body = _pd_body(), _gf_body()
    sns_body = json.dumps(_sign(_notification(url), key, "2")).encode()
    forged = [
        ("pagerduty", pd_body, {"X-PagerDuty-Signature": _pd_sig("guess", pd_body)}),
        ("grafana", gf_body, {"X-Grafana-Alerting-Signature": _gf_hmac("guess", gf_body)}),
        ("sns", sns_body.replace(b"orders-db-cpu-high", b"orders-db-cpu-higx"), {}),
        ("alertmanager", b"{}", {}),  # not configured on this receiver
    ]
    for source, body, headers in forged:
        code, answer = server.post(source, body, headers, token=None)
        assert code in (401, 404), (source, code, answer)
    assert server.runs() == []
    good = [
        ("pagerduty", pd_body, {"X-PagerDuty-Signature": _pd_sig(PD_SECRET, pd_body), "X-Webhook-Id": "w1"}),
        ("grafana", gf_body, {"X-Grafana-Alerting-Signature": _gf_hmac(GF_SECRET, gf_body)}),
        ("sns", sns_body, {"Content-Type": "text/plain; charset=UTF-8"}),
    ]
    for source, body, headers in good:
        code, answer = server.post(source, body, headers, token=None)
        assert code == 202 and answer["queued"] == 1, (source, code, answer)
    for source, body, headers in good:  # the sender retries (same X-Webhook-Id, same SNS MessageId): no run
        code, answer = server.post(source, body, headers, token=None)
        assert code == 202 and answer["duplicates"] == 1 and answer["queued"] == 0, (source, code, answer)
    for source, _, headers in good:  # malformed but correctly signed: 400, never 5xx
        body = b'{"event": 1, "version": "1", "Type": "Notification"}'
        headers = dict(headers)
        if source == "pagerduty":
            headers["X-PagerDuty-Signature"] = _pd_sig(PD_SECRET, body)
        if source == "grafana":
            headers["X-Grafana-Alerting-Signature"] = _gf_hmac(GF_SECRET, body)
        code, _ = server.post(source, body, headers, token=None)
        assert code == 400, source
    runs = server.finished_runs(3)
    assert sorted(json.loads(r["parameters"])["target"] for r in runs) == [
        "API 5xx rate high",
        "HighLatency",
        "orders-db-cpu-high",
    ]
