"""Triage: the assessment's rules on plain data, and the runbook on the crashloop sandbox."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from runbook_kit import triage
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
    missing = triage.app_health(namespace="")
    result = triage.assess_incident(health=missing, changes=changes, incident="", rules=triage.DEFAULT_RULES)
    assert result.gaps == ("no namespace given (parameter namespace)",)
    assert result.changed.startswith("rollout of pay/api to revision 3 (kubernetes, 2026-11-30 09:00 UTC)")
    assert result.started == dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)


def test_triage_on_the_crashloop_sandbox_suggests_p1_and_pod_crashloop(fresh_sandbox, tmp_path):
    k8s = fresh_sandbox("crashloop", parts=("k8s",))
    result = run_notebook("triage", parameters={"namespace": tl.CRASHLOOP_NAMESPACE, "cloudtrail": False},
                          incident="INC-T", store=str(tmp_path), env=k8s.env, timeout=600)
    assert result.status == "succeeded", result.failure
    titles = [e.title for e in result.findings]
    assert any(t.startswith("initial assessment: payments/api") for t in titles)
    assert any(t.startswith("suggested severity P1") for t in titles), titles
    nxt = next(e for e in result.findings if e.title.startswith("next runbook"))
    assert nxt.title == "next runbook: pod_crashloop"
    assert nxt.details["command"] == (
        "runbook run pod_crashloop -p namespace payments -p deployment api --incident INC-T")
    changed = next(e for e in result.findings if e.title.startswith("initial assessment")).details["changed"]
    assert changed.startswith("rollout of payments/api to revision 3")
    # the dashboard and load balancer were not given: named gaps, not silence
    assert any(t.startswith("could not check: no load balancer given") for t in titles)


def test_dashboard_and_load_balancer_on_the_latency_sandbox(use_sandbox):
    metrics = triage.dashboard_metrics(dashboard=tl.OVERVIEW_DASHBOARD, hours=3)
    assert set(metrics.widget) == {"Storefront ALB latency", "Storefront ALB requests and 5xx"}
    assert {"p99", "average"} <= set(metrics.label) and len(metrics) > 100
    figure = triage.plot_dashboard(metrics, title=tl.OVERVIEW_DASHBOARD)
    assert len(figure.axes) == 2
    missing = triage.dashboard_metrics(dashboard="no-such-dashboard")
    assert missing.empty and "no-such-dashboard" in missing.attrs["gap"]
    lb = triage.alb_health(load_balancer=tl.LATENCY_LOAD_BALANCER, minutes=60)
    assert lb.p99_ms.iloc[0] > 2000  # the planted spike
    assessment = triage.assess_incident(health=triage.app_health(namespace=tl.LATENCY_NAMESPACE), alb=lb,
                                        namespace=tl.LATENCY_NAMESPACE, incident="INC-L",
                                        rules=triage.DEFAULT_RULES)
    assert assessment.severity == "P1" and "p99_ms" in assessment.why
