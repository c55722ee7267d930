"""api_latency_spike against the sandbox's `latency` scenario, asserted on the record, on CodeDeploy's and
the Kubernetes API server's own view, and on the server's request log."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from typing import Any

import boto3
import pytest

from runbook_kit.runner import run_notebook
from runbook_sandbox import timeline as tl
from runbook_sandbox.aws.seed import CODEDEPLOY_APP
from runbook_sandbox.scenarios import runbook_parameters

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]


def run(env: dict[str, str], tmp_path, **parameters: Any):
    return run_notebook(
        "api_latency_spike",
        parameters=runbook_parameters("api_latency_spike", **parameters),
        incident="INC-9",
        store=str(tmp_path / "store"),
        env=env,
        timeout=600,
    )


def requests_log(info) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{info.k8s_url}/_sandbox/requests", timeout=10) as response:
        return json.load(response)


def deployments_of(info) -> list[str]:
    cd = boto3.client(
        "codedeploy",
        endpoint_url=info.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return cd.list_deployments(applicationName=CODEDEPLOY_APP, deploymentGroupName="prod")["deployments"]


def deployment_image(info, namespace: str, name: str) -> str:
    url = f"{info.k8s_url}/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)["spec"]["template"]["spec"]["containers"][0]["image"]


def one(entries, prefix: str):
    found = [e for e in entries if e.kind == "finding" and e.title.startswith(prefix)]
    assert len(found) == 1, [e.title for e in entries]
    return found[0]


def test_dry_run_names_the_deploy_rules_out_the_database_and_writes_nothing(sandbox, tmp_path):
    seen = len(requests_log(sandbox))
    result = run(sandbox.env, tmp_path)
    assert result.status == "succeeded", result.failure

    spike = one(result.entries, "p99 latency spike")
    started = dt.datetime.fromisoformat(spike.details["started"])
    deploy_at = tl.at(sandbox.anchor, tl.LATENCY_DEPLOY_AGO)
    assert abs(started - deploy_at) <= dt.timedelta(minutes=3)
    assert spike.details["spike_p99_ms"] > 5 * spike.details["baseline_p99_ms"]
    assert spike.details["error_rate_pct"] > 1 > spike.details["baseline_error_rate_pct"]

    cause = one(result.entries, "Likely cause")
    assert cause.severity == "high" and cause.details["source"] == "codedeploy"
    assert [cause.details["deployment_id"]] == deployments_of(sandbox)
    assert cause.details["k8s_revision"] == 3 and cause.details["k8s_previous_revision"] == 2
    assert 0 <= cause.details["minutes_before_spike"] <= 3
    assert cause.details["who"] == "ci-deployer", "the deploy's author comes from CloudTrail"

    database = one(result.entries, f"Database {tl.DB_INSTANCE_ID}")
    assert database.details["ruled_out"] is True and database.severity == "info"
    assert "is not the cause" in database.title

    top = one(result.entries, "Top error")
    assert "payments" in json.dumps(top.details["errors"]) or "POST /api/checkout" in top.title

    targets = one(result.entries, "every target healthy but slow")
    assert targets.details["cause"] == "all_slow", "a deployment, not a bad subset nor saturation"

    [rollback] = [e for e in result.entries if e.kind == "action"]
    assert rollback.outcome == "dry-run" and rollback.details["server_validated"] is True
    assert "targets: every target healthy but slow" in rollback.details["reason"]
    assert (
        rollback.command == f"kubectl rollout undo deployment/{tl.LATENCY_SERVICE} -n {tl.LATENCY_NAMESPACE} "
        "--to-revision=2"
    )

    writes = [r for r in requests_log(sandbox)[seen:] if r["method"] not in ("GET", "HEAD")]
    assert writes, "the dry run reached the API server"
    assert all(r["dry_run"] and r["query"].get("dryRun") == "All" for r in writes), writes
    assert deployment_image(sandbox, tl.LATENCY_NAMESPACE, tl.LATENCY_SERVICE).endswith(":v3.9.0")

    # the seeded metrics end when the sandbox came up: in a long session the last 30 minutes have none
    verify = [
        e for e in result.entries if e.kind == "finding" and e.title.startswith(("Latency", "Cannot verify"))
    ]
    assert len(verify) == 1 and not verify[0].title.startswith("Latency recovered"), (
        "a dry run changes nothing"
    )


def test_apply_rolls_checkout_back_to_the_release_before_the_deploy(fresh_sandbox, tmp_path):
    info = fresh_sandbox("latency")
    result = run(info.env, tmp_path, dry_run=False)
    assert result.status == "succeeded", result.failure
    [rollback] = [e for e in result.entries if e.kind == "action"]
    assert rollback.outcome == "applied"
    assert rollback.details["before"]["revision"] == 3 and rollback.details["after"]["revision"] == 4
    assert deployment_image(info, tl.LATENCY_NAMESPACE, tl.LATENCY_SERVICE).endswith(":v3.8.1")
    patches = [r for r in requests_log(info) if r["method"] == "PATCH"]
    assert [r["dry_run"] for r in patches] == [False], "exactly one real write"


def test_an_unknown_log_group_fails_the_run_in_one_line(sandbox, tmp_path):
    result = run(sandbox.env, tmp_path, log_group="/eks/storefront/no-such-service")
    assert result.status == "failed"
    assert result.failure is not None and "\n" not in result.failure
    assert "/eks/storefront/no-such-service" in result.failure and "not found" in result.failure
    assert not [e for e in result.entries if e.kind == "action"], "no plan after a failed step"
