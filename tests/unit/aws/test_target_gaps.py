"""Target reads without permission: a named gap, an `unknown` assessment, and nothing scaled on it.

The server on 127.0.0.1 answers every Elastic Load Balancing call the way AWS answers a principal
without the permission (HTTP 403, `AccessDenied`, the query protocol's XML), so the real boto3 client
raises a genuine ClientError.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import parse_qs

import boto3
import pandas as pd
import pytest

from runbook_kit import record
from runbook_kit.aws import elb
from runbook_kit.investigate import find_cause, plan_latency_mitigation
from runbook_kit.investigate.changes import COLUMNS


class _Denying(http.server.BaseHTTPRequestHandler):
    actions: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        action = parse_qs(body).get("Action", ["?"])[0]
        self.actions.append(action)
        xml = (
            '<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><Error>'
            "<Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::123456789012:user/"
            f"oncall is not authorized to perform: elasticloadbalancing:{action}</Message></Error>"
            "<RequestId>0</RequestId></ErrorResponse>"
        ).encode()
        self.send_response(403)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(xml)))
        self.end_headers()
        self.wfile.write(xml)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def elbv2() -> Iterator[Any]:
    _Denying.actions = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Denying)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    yield boto3.client("elbv2", endpoint_url=url, region_name="us-east-1", aws_access_key_id="AKIAEXAMPLE",
                       aws_secret_access_key="secret-example")
    srv.shutdown()
    srv.server_close()


def test_denied_target_health_is_a_gap_and_the_assessment_says_unknown(elbv2):
    before = len(record.entries_this_session())
    health = elb.target_health(load_balancer="app/shop/0123456789abcdef", elbv2=elbv2)
    assert health.empty and list(health.columns) == elb.HEALTH_COLUMNS
    assert _Denying.actions == ["DescribeLoadBalancers"]
    [gap] = [e for e in record.entries_this_session()[before:] if e.kind == "gap"]
    assert "load balancer target health" in gap.title and "AccessDenied" in str(gap.details)
    assert "elasticloadbalancing:DescribeTargetGroups" in str(gap.details)

    metrics = elb.target_group_metrics(load_balancer="app/shop/0123456789abcdef", elbv2=elbv2)
    assert metrics.empty and record.missing(metrics)
    verdict = elb.assess_targets(health=health, metrics=metrics)
    assert verdict.cause == "unknown" and "not known" in verdict.title, "not 'no registered targets'"


def test_healthy_targets_without_metrics_are_never_called_saturated():
    health = pd.DataFrame([["web", "t0", 80, None, "healthy", "", ""]], columns=elb.HEALTH_COLUMNS)
    metrics = pd.DataFrame(columns=elb.METRIC_COLUMNS)
    metrics.attrs["gap"] = {"what": "target group metrics of web", "why": "AccessDenied"}
    verdict = elb.assess_targets(health=health, metrics=metrics)
    assert verdict.cause == "unknown" and "saturation cannot be told" in verdict.title


def test_an_unknown_target_assessment_plans_no_scale_out(elbv2):
    health = elb.target_health(load_balancer="app/shop/0123456789abcdef", elbv2=elbv2)
    verdict = elb.assess_targets(health=health, metrics=health)
    empty = pd.DataFrame(columns=COLUMNS)
    empty["time"] = pd.to_datetime(empty["time"], utc=True)
    plan = plan_latency_mitigation(cause=find_cause(empty, start=pd.Timestamp.now(tz="UTC")), targets=verdict,
                                   namespace="shop", deployment="api")
    assert plan.nothing_to_do and plan.action == "rollout undo"
