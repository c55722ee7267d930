"""Partial access degrades, it does not abort: runbooks against systems that are partly missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from denying_proxy import denying_proxy

from runbook_kit import record
from runbook_kit.runner import run_notebook
from runbook_sandbox.scenarios import runbook_parameters

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]


def test_connection_exhaustion_on_a_plain_postgresql_without_aws_completes_with_gaps(
    fresh_sandbox, tmp_path, monkeypatch
):
    info = fresh_sandbox("connections", parts=("postgres",))
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    env = {**info.env, "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE":
           str(tmp_path / "none"), "AWS_EC2_METADATA_DISABLED": "true"}
    # the user says the database is the RDS instance orders-db, but this machine has no AWS access
    result = run_notebook("db_connection_exhaustion", parameters={"db_instance_id": "orders-db"},
                          incident="INC-GAP",
                          store=str(tmp_path / "store"), env=env, timeout=600)

    assert result.status in ("succeeded", "completed-with-gaps"), result.failure
    assert record.status_of(result.entries) == "completed-with-gaps"
    gaps = {e.title: e.details for e in result.entries if e.kind == "gap"}
    assert {"RDS metrics of orders-db", "RDS parameters of orders-db", "RDS instance orders-db"} <= set(gaps)
    for details in gaps.values():
        assert details["why"] and details["fix"]
    assert "aws create cloudwatch client: not configured: no AWS credentials found" in \
        gaps["RDS metrics of orders-db"]["why"]
    assert "AWS_PROFILE" in gaps["RDS metrics of orders-db"]["why"]
    assert gaps["RDS parameters of orders-db"]["fix"].endswith(
        "rds:DescribeDBInstances, rds:DescribeDBParameters")

    # the diagnosis is still reached, and the PostgreSQL plan is still correct
    findings = [e for e in result.entries if e.kind == "finding"]
    assert any("billing-worker" in e.title for e in findings), [e.title for e in findings]
    actions = {e.title.split(":")[0]: e for e in result.entries if e.kind == "action"}
    terminate = actions["terminate idle sessions"]
    assert terminate.outcome == "dry-run" and len(terminate.details["targets"]) > 0
    # the RDS plans depend on what could not be read: refused, with the reason, never guessed
    for action in ("set max_connections", "reboot"):
        assert actions[action].outcome == "refused"
        assert "depends on evidence the runbook could not read" in actions[action].details["why"]

    nb = json.loads(Path(result.notebook_path).read_text())
    summary = "".join(nb["cells"][0]["source"])
    assert "⚠️ completed with gaps" in summary and "## Gaps" in summary
    assert "**RDS metrics of orders-db**" in summary


def _not_served(method: str, path: str, headers) -> tuple[int, str, dict] | None:
    if path.startswith("/apis/metrics.k8s.io"):
        return 404, "application/json", {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                         "reason": "NotFound", "code": 404,
                                         "message": "the server could not find the requested resource"}
    return None


def test_crashloop_on_a_cluster_without_the_metrics_api_completes_with_gaps(fresh_sandbox, tmp_path):
    info = fresh_sandbox("crashloop", parts=("k8s",))
    config = json.loads(Path(info.kubeconfig).read_text())
    with denying_proxy(info.k8s_url, _not_served) as (url, refused):
        config["clusters"][0]["cluster"]["server"] = url
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(json.dumps(config))
        result = run_notebook("pod_crashloop", parameters=runbook_parameters("pod_crashloop"),
                              incident="INC-GAP2",
                              store=str(tmp_path / "store"), env={**info.env, "KUBECONFIG": str(kubeconfig)},
                              timeout=600)

    assert refused and all("/apis/metrics.k8s.io" in r for r in refused)
    assert result.status in ("succeeded", "completed-with-gaps"), result.failure
    assert record.status_of(result.entries) == "completed-with-gaps"
    [gap] = [e for e in result.entries if e.kind == "gap"]
    assert gap.title == "container usage (metrics.k8s.io) in payments"
    assert "metrics-server" in gap.details["fix"]
    findings = [e.title for e in result.entries if e.kind == "finding"]
    assert any("OOMKilled" in title for title in findings), findings
    [plan] = [e for e in result.entries if e.kind == "action"]
    assert plan.outcome == "dry-run" and plan.details["server_validated"] is True


def _no_cloudtrail(method: str, path: str, headers) -> tuple[int, str, dict] | None:
    if (headers.get("X-Amz-Target") or "").endswith("CloudTrail_20131101.LookupEvents"):
        return 400, "application/x-amz-json-1.1", {
            "__type": "AccessDeniedException",
            "message": "User: arn:aws:iam::123456789012:user/oncall is not authorized to perform: "
                       "cloudtrail:LookupEvents"}
    return None


def test_latency_spike_without_cloudtrail_permission_still_names_the_deploy(fresh_sandbox, tmp_path):
    info = fresh_sandbox("latency")
    with denying_proxy(info.aws_endpoint, _no_cloudtrail) as (url, refused):
        result = run_notebook("api_latency_spike", parameters=runbook_parameters("api_latency_spike"),
                              incident="INC-GAP3",
                              store=str(tmp_path / "store"), env={**info.env, "AWS_ENDPOINT_URL": url},
                              timeout=600)

    assert refused, "the runbook asked CloudTrail and was denied"
    assert result.status in ("succeeded", "completed-with-gaps"), result.failure
    gaps = {e.title: e.details for e in result.entries if e.kind == "gap"}
    assert list(gaps) == ["CloudTrail events"]
    assert "permission denied" in gaps["CloudTrail events"]["why"]
    assert gaps["CloudTrail events"]["fix"] == "grant: cloudtrail:LookupEvents"
    cause = [e for e in result.entries if e.kind == "finding" and e.title.startswith("Likely cause")]
    assert cause and cause[0].details["source"] == "codedeploy"
    [rollback] = [e for e in result.entries if e.kind == "action"]
    assert rollback.outcome == "dry-run" and "kubectl rollout undo" in (rollback.command or "")
