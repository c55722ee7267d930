"""Triage: the assessment's rules on plain data, and the runbook on the crashloop sandbox."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from runbook_kit import record, triage
from runbook_kit.errors import NotFound
from runbook_kit.runner import run_notebook
from runbook_sandbox import timeline as tl


def health(**row):
    base = {"deployment": "api", "desired": 3, "ready": 3, "available": 3, "updated": 3, "not_ready": 0,
            "crashlooping": 0, "restarts": 0}
    return pd.DataFrame([{**base, **row}], columns=triage.HEALTH_COLUMNS)


def alb(error_rate_pct=0.0, p99_ms=100.0):
    return pd.DataFrame([{"load_balancer": "app/web/1", "requests": 1000, "error_rate_pct": error_rate_pct,
                          "p99_ms": p99_ms, "worst_minute": pd.Timestamp("2026-11-30T09:12:00Z")}],
                        columns=triage.ALB_COLUMNS)


def test_suggested_severity_follows_the_rules():
    assess = triage.assess_incident
    rules = triage.DEFAULT_RULES
    down = assess(health=health(available=0, ready=0), namespace="pay", incident="", rules=rules)
    assert down.severity == "P0"
    p1 = assess(health=health(crashlooping=1, not_ready=1, restarts=7), namespace="pay", incident="INC-1",
                rules=rules)
    assert (p1.severity, p1.next_runbook) == ("P1", "pod_crashloop")
    assert p1.command == "runbook run pod_crashloop -p namespace pay -p deployment api --incident INC-1"
    assert "crashlooping 1 ≥ 1" in p1.why
    assert assess(health=health(), alb=alb(p99_ms=1500), namespace="pay", rules=rules).severity == "P2"
    quiet = assess(health=health(), alb=alb(), namespace="pay", incident="", rules=rules)
    assert (quiet.severity, quiet.next_runbook) == ("P3", "api_latency_spike")
    stricter = {"P1": {"p99_ms": 1000}}
    assert assess(health=health(), alb=alb(p99_ms=1500), namespace="pay", rules=stricter).severity == "P1"


def test_gaps_are_named_and_changes_give_the_start():
    changes = pd.DataFrame([{"time": dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC), "source": "kubernetes",
                             "what": "rollout of pay/api to revision 3", "who": ""}],
                           columns=triage.CHANGE_COLUMNS)
    before = len(record.entries_this_session())
    missing = triage.app_health(namespace="")
    result = triage.assess_incident(health=missing, changes=changes, incident="", rules=triage.DEFAULT_RULES)
    # not given by the user: "not checked" info, not a gap (nothing was tried, nothing recorded)
    assert result.gaps == () and result.not_checked[0] == "no namespace given (parameter namespace)"
    assert record.entries_this_session()[before:] == []
    assert result.changed.startswith("rollout of pay/api to revision 3 (kubernetes, 2026-11-30 09:00 UTC)")
    assert result.started == dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)


def test_a_read_that_cannot_be_done_is_a_gap_the_assessment_sees(monkeypatch, tmp_path):
    """An unreachable CloudWatch (a real client on a dead port): a gap entry, the frame marked missing,
    and the suggested severity says which evidence it lacks."""
    import socket

    from runbook_kit import clients

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("RUNBOOK_RETRIES", "0")
    clients.reset()
    before = len(record.entries_this_session())
    lb = triage.alb_health(load_balancer="app/web/1")
    new = record.entries_this_session()[before:]
    assert [e.kind for e in new] == ["gap"]
    assert new[0].title == "5xx rate and p99 of load balancer app/web/1"
    assert "cloudwatch:GetMetricData" in new[0].details["fix"] and new[0].details["why"]
    assert lb.empty and record.missing(lb) == [f"{new[0].title}: {new[0].details['why']}"]
    result = triage.assess_incident(health=health(), alb=lb, namespace="pay", incident="",
                                    rules=triage.DEFAULT_RULES)
    assert result.gaps == tuple(record.missing(lb))
    assert "evidence missing: 5xx rate and p99 of load balancer app/web/1" in result.why
    clients.reset()


def test_triage_on_the_crashloop_sandbox_suggests_p1_and_pod_crashloop(fresh_sandbox, tmp_path):
    k8s = fresh_sandbox("crashloop", parts=("k8s",))
    result = run_notebook("triage", parameters={"namespace": tl.CRASHLOOP_NAMESPACE, "cloudtrail": False},
                          incident="INC-T", store=str(tmp_path), env=k8s.env, timeout=600)
    assert result.status == "succeeded", (result.status, result.failure)
    titles = [e.title for e in result.findings]
    assert any(t.startswith("initial assessment: payments/api") for t in titles)
    assert any(t.startswith("suggested severity P1") for t in titles), titles
    nxt = next(e for e in result.findings if e.title.startswith("next runbook"))
    assert nxt.title == "next runbook: pod_crashloop"
    assert nxt.details["command"] == (
        "runbook run pod_crashloop -p namespace payments -p deployment api --incident INC-T")
    changed = next(e for e in result.findings if e.title.startswith("initial assessment")).details["changed"]
    assert changed.startswith("rollout of payments/api to revision 3")
    # the dashboard and load balancer were not given: named "not checked" (info), not gaps, not silence
    assert any(t.startswith("not checked: no load balancer given") for t in titles)
    assert not [e for e in result.entries if e.kind == "gap"]


def test_dashboard_and_load_balancer_on_the_latency_sandbox(use_sandbox):
    metrics = triage.dashboard_metrics(dashboard=tl.OVERVIEW_DASHBOARD, hours=3)
    assert set(metrics.widget) == {"Storefront ALB latency", "Storefront ALB requests and 5xx"}
    assert {"p99", "average"} <= set(metrics.label) and len(metrics) > 100
    figure = triage.plot_dashboard(metrics, title=tl.OVERVIEW_DASHBOARD)
    assert len(figure.axes) == 2
    with pytest.raises(NotFound):  # a name that does not exist is the user's error, not a gap
        triage.dashboard_metrics(dashboard="no-such-dashboard")
    lb = triage.alb_health(load_balancer=tl.LATENCY_LOAD_BALANCER, minutes=60)
    assert lb.p99_ms.iloc[0] > 2000  # the planted spike
    assessment = triage.assess_incident(health=triage.app_health(namespace=tl.LATENCY_NAMESPACE), alb=lb,
                                        namespace=tl.LATENCY_NAMESPACE, incident="INC-L",
                                        rules=triage.DEFAULT_RULES)
    assert assessment.severity == "P1" and "p99_ms" in assessment.why


def test_triage_with_aws_out_of_reach_completes_with_gaps(fresh_sandbox, tmp_path):
    """Kubernetes readable, AWS on a dead port: CloudTrail is a gap entry (not a finding), the run
    completes with gaps, and the assessment still suggests P1 from what it could read."""
    import socket

    k8s = fresh_sandbox("crashloop", parts=("k8s",))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    env = {**k8s.env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{dead}", "RUNBOOK_RETRIES": "0"}
    result = run_notebook("triage", parameters={"namespace": tl.CRASHLOOP_NAMESPACE}, incident="INC-TG",
                          store=str(tmp_path), env=env, timeout=600)
    assert result.status == "completed-with-gaps", result.failure
    [gap] = [e for e in result.entries if e.kind == "gap"]
    assert gap.title == "CloudTrail events" and "cloudtrail:LookupEvents" in gap.details["fix"]
    assert not [e for e in result.findings if "could not check" in e.title]
    severity = next(e for e in result.findings if e.title.startswith("suggested severity"))
    assert severity.title.startswith("suggested severity P1")
    assert "evidence missing: CloudTrail" in severity.title
    assert severity.details["gaps"] == [f"CloudTrail events: {gap.details['why']}"]
