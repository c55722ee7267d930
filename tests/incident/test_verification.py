"""verify_resolution's checks against real endpoints: an HTTP server, moto's CloudWatch, a dead port."""

from __future__ import annotations

import socket

import boto3
import pytest

from runbook_kit import record, verification


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_health_and_synthetic_checks(comms_server, closed_port):
    ok, missing = f"{comms_server.url}/_sandbox/received", f"{comms_server.url}/nope"
    health = verification.check_health(urls=[ok, missing, f"http://127.0.0.1:{closed_port}/"])
    assert health.ok.tolist() == [True, False, False]
    assert health.detail[1].startswith("HTTP 404") and health.detail[2].startswith("unreachable")
    assert verification.check_health(urls=[ok], max_latency_ms=0).ok.tolist() == [False]
    synthetic = verification.check_synthetic(checks=[{"url": ok, "contains": "["},
                                                     {"url": ok, "contains": "Checkout"},
                                                     {"url": missing, "status": 404}])
    assert synthetic.ok.tolist() == [True, False, True]
    assert "body lacks 'Checkout'" in synthetic.detail[1]


def test_alarms_ok_failing_and_a_gap(s3_endpoint, monkeypatch, closed_port):
    cw = boto3.client("cloudwatch", endpoint_url=s3_endpoint, region_name="us-east-1")
    cw.put_metric_alarm(AlarmName="payments-5xx", MetricName="HTTPCode_Target_5XX_Count",
                        Namespace="AWS/ApplicationELB", Statistic="Sum", Period=60, EvaluationPeriods=1,
                        Threshold=10, ComparisonOperator="GreaterThanThreshold")
    cw.set_alarm_state(AlarmName="payments-5xx", StateValue="OK", StateReason="fine")
    assert verification.check_alarms(prefix="payments").ok.tolist() == [True]
    cw.set_alarm_state(AlarmName="payments-5xx", StateValue="ALARM", StateReason="5xx above 10")
    failing = verification.check_alarms(prefix="payments")
    assert failing.ok.tolist() == [False] and "5xx above 10" in failing.detail[0]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port}")
    monkeypatch.setenv("RUNBOOK_RETRIES", "0")
    from runbook_kit import clients

    clients.reset()
    before = len(record.entries_this_session())
    gap = verification.check_alarms(prefix="payments")
    assert gap.ok.tolist() == [None] and gap.detail[0].startswith("could not check")
    [entry] = record.entries_this_session()[before:]  # a gap entry, not a finding: exit 3
    assert entry.kind == "gap" and entry.title == "CloudWatch alarms payments"
    assert "cloudwatch:DescribeAlarms" in entry.details["fix"]
    assert record.missing(gap) == [f"CloudWatch alarms payments: {entry.details['why']}"]
    verdict = verification.record_verdict(gap)
    assert verdict.title.startswith("verdict: not verified")
    assert verdict.details["missing"] == record.missing(gap)
    clients.reset()


def test_the_verdict_is_resolved_only_when_every_check_ran_and_passed():
    frame = verification._frame
    passing = frame([{"check": "health endpoint", "target": "u", "ok": True, "detail": "HTTP 200"}])
    failing = frame([{"check": "alarms OK", "target": "a", "ok": False, "detail": "ALARM"}])
    gap = frame([{"check": "alarms OK", "target": "(all)", "ok": None, "detail": "could not check"}])
    assert verification.record_verdict(passing).title == "verdict: resolved — 1 check(s) passing"
    assert verification.record_verdict(passing, failing).title.startswith("verdict: NOT resolved — 1 check")
    not_verified = verification.record_verdict(passing, gap)
    assert not_verified.title.startswith("verdict: not verified") and not_verified.severity == "medium"
    assert verification.record_verdict(frame([])).title.startswith("verdict: not verified — no check")
    assert record.entries_this_session()[-1].kind == "finding"


def test_load_balancer_logs_and_top_on_the_latency_sandbox(use_sandbox):
    from runbook_sandbox import timeline as tl

    alb = verification.check_alb(load_balancer=tl.LATENCY_LOAD_BALANCER, minutes=30, max_p99_ms=1000)
    checks = alb.set_index("check").ok.to_dict()
    assert checks == {"5xx rate": False, "p99 latency": False}, alb.detail.tolist()
    spike = verification.check_error_logs(log_group=tl.LATENCY_LOG_GROUP, minutes=60, baseline_minutes=60)
    assert spike.ok.tolist() == [False], spike.detail[0]  # errors began with the deploy 75 min ago
    steady = verification.check_error_logs(log_group=tl.LATENCY_LOG_GROUP, minutes=30, baseline_minutes=30)
    assert steady.ok.tolist() == [True], steady.detail[0]  # both windows after the deploy: no new spike
    top = verification.kubectl_top(namespace=tl.LATENCY_NAMESPACE)
    assert {"pod", "node"} <= set(top.kind) and (top.memory_mib > 0).all()
    assert verification.record_verdict(alb, steady).title.startswith("verdict: NOT resolved — 2 check")


def test_top_on_a_cluster_without_the_metrics_api_is_a_gap(tmp_path, monkeypatch):
    """An API server that does not serve metrics.k8s.io (404, as without metrics-server): a gap entry
    naming metrics-server, an empty frame marked missing, no error."""
    import http.server
    import json
    import threading

    class NoMetrics(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                               "reason": "NotFound", "code": 404,
                               "message": "the server could not find the requested resource"})
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NoMetrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("RUNBOOK_RETRIES", "0")
    from runbook_kit import clients

    clients.reset()
    try:
        before = len(record.entries_this_session())
        top = verification.kubectl_top(namespace="payments")
        [entry] = record.entries_this_session()[before:]
        assert entry.kind == "gap" and entry.title == "pod and node usage (metrics.k8s.io)"
        assert "metrics-server" in entry.details["fix"]
        assert top.empty and record.missing(top) == [f"{entry.title}: {entry.details['why']}"]
    finally:
        server.shutdown()
        clients.reset()
