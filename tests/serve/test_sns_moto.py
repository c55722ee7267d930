"""SNS as a sender: moto's SNS (the sandbox's AWS part) delivers a CloudWatch alarm to runbook serve over
HTTP, signed (SignatureVersion 2) with a certificate moto serves; the receiver fetches it through the
explicit `test_certificate_endpoint` setting, verifies, stores and routes it. A topic that is not
allow-listed is refused even though its signature is valid."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from serve_harness import wait_for

ALARM = {
    "AlarmName": "orders-db-connections",
    "AlarmDescription": "connections near max",
    "AWSAccountId": "123456789012",
    "NewStateValue": "ALARM",
    "NewStateReason": "Threshold Crossed",
    "StateChangeTime": "2026-11-30T10:00:00.000+0000",
    "Region": "US East (N. Virginia)",
    "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:orders-db-connections",
    "OldStateValue": "OK",
    "Trigger": {
        "MetricName": "DatabaseConnections",
        "Namespace": "AWS/RDS",
        "Dimensions": [{"value": "orders-db", "name": "DBInstanceIdentifier"}],
    },
}


@pytest.fixture
def sns_sandbox(fresh_sandbox):
    return fresh_sandbox("latency", parts=("aws",))


@pytest.fixture
def certificates(sns_sandbox) -> Iterator[str]:
    """Where the receiver fetches signing certificates: moto serves them, but routes an unsigned GET by
    its credential scope, not its Host; this forwarder adds an (unverified) sns scope."""
    moto = sns_sandbox.aws_endpoint

    class Forward(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            auth = (
                "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/sns/aws4_request, "
                "SignedHeaders=host, Signature=0"
            )
            try:
                with urllib.request.urlopen(
                    urllib.request.Request(moto + self.path, headers={"Authorization": auth})
                ) as r:
                    body, code = r.read(), r.status
            except urllib.error.HTTPError as exc:
                body, code = exc.read(), exc.code
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_moto_sns_delivers_a_signed_alarm(serve, sns_sandbox, certificates):
    sandbox = sns_sandbox
    client = boto3.client(
        "sns",
        endpoint_url=sandbox.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    ours = client.create_topic(Name="cloudwatch-alarms")["TopicArn"]
    theirs = client.create_topic(Name="someone-elses")["TopicArn"]
    route = {
        "name": "db",
        "match": {"alertname": "orders-db-connections"},
        "sources": ["sns"],
        "runbook": "probe",
        "parameters": {"target": "{labels.dimension_DBInstanceIdentifier}"},
    }
    server = serve(
        routes=[route], sources={"sns": {"topics": [ours], "test_certificate_endpoint": certificates}}
    )
    for topic in (ours, theirs):
        client.subscribe(TopicArn=topic, Protocol="http", Endpoint=f"{server.url}/webhook/sns")

    client.publish(TopicArn=ours, Message=json.dumps(ALARM))
    client.publish(TopicArn=theirs, Message=json.dumps({**ALARM, "AlarmName": "not-ours"}))

    [run] = server.finished_runs(1, timeout=30)
    assert run["state"] == "succeeded" and json.loads(run["parameters"])["target"] == "orders-db"
    q = server.queue()
    try:
        alerts = q.query("SELECT source, status, labels FROM alerts")
    finally:
        q.close()
    assert [(a["source"], a["status"]) for a in alerts] == [("sns", "firing")]
    assert json.loads(alerts[0]["labels"])["topic"] == ours
    log = wait_for(
        lambda: "is not allow-listed" in server.logs[-1].read_text() and server.logs[-1].read_text(),
        timeout=10,
        what="the refusal of the other topic in the log",
    )
    assert '"code": 403' in log


def test_mutating_route_rechecks_the_alarm_with_cloudwatch(serve, sns_sandbox, certificates):
    sandbox = sns_sandbox
    aws = {
        "endpoint_url": sandbox.aws_endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    sns, cloudwatch = boto3.client("sns", **aws), boto3.client("cloudwatch", **aws)
    for name in ("still-alarming", "already-ok"):
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            MetricName="CPUUtilization",
            Namespace="AWS/RDS",
            Statistic="Average",
            Period=60,
            EvaluationPeriods=1,
            Threshold=90,
            ComparisonOperator="GreaterThanThreshold",
        )
    cloudwatch.set_alarm_state(AlarmName="still-alarming", StateValue="ALARM", StateReason="test")
    cloudwatch.set_alarm_state(AlarmName="already-ok", StateValue="OK", StateReason="test")
    topic = sns.create_topic(Name="alarms")["TopicArn"]
    route = {
        "name": "fix",
        "match_re": {"alertname": ".+"},
        "sources": ["sns"],
        "runbook": "probe",
        "parameters": {"target": "{labels.alertname}"},
        "mutate": True,
    }
    server = serve(
        routes=[route],
        env=sandbox.env,
        sources={"sns": {"topics": [topic], "test_certificate_endpoint": certificates}},
    )
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=f"{server.url}/webhook/sns")
    for name in ("still-alarming", "already-ok"):  # both notifications say ALARM
        sns.publish(
            TopicArn=topic,
            Message=json.dumps(
                {
                    **ALARM,
                    "AlarmName": name,
                    "AlarmArn": f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}",
                }
            ),
        )

    runs = {json.loads(r["parameters"])["target"]: r for r in server.finished_runs(2, timeout=60)}
    assert runs["still-alarming"]["state"] == "succeeded", runs
    record = json.loads(Path(runs["still-alarming"]["record"]).read_text())["metadata"]["runbook_kit"]
    assert record["parameters"]["dry_run"] is False, runs["still-alarming"]["reason"]
    assert runs["already-ok"]["state"] == "cancelled"
    assert "CloudWatch says alarm 'already-ok' is OK" in runs["already-ok"]["reason"]
