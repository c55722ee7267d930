"""The node scenario's AWS side: impaired instance status, target health, GuardDuty, the dashboard.

boto3 checks values and wire shapes against botocore's models; the stock AWS CLI (`aws`, whatever
botocore it bundles) checks that the answers parse as an account's would. The Kubernetes side is
checked through the official client: one Node per Auto Scaling instance, mapped by providerID.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_shapes import assert_shape
from botocore.exceptions import ClientError

from runbook_sandbox import timeline as tl
from runbook_sandbox.manager import SandboxInfo

pytestmark = pytest.mark.sandbox


def client(info: SandboxInfo, service: str) -> Any:
    return boto3.session.Session(
        aws_access_key_id=info.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=info.env["AWS_SECRET_ACCESS_KEY"],
        region_name=info.env["AWS_REGION"],
    ).client(service, endpoint_url=info.aws_endpoint)


def group_instances(info: SandboxInfo) -> list[str]:
    groups = client(info, "autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[tl.NODE_ASG])
    return [i["InstanceId"] for i in groups["AutoScalingGroups"][0]["Instances"]]


def target_group(info: SandboxInfo) -> str:
    groups = client(info, "elbv2").describe_target_groups(Names=[tl.NODE_TARGET_GROUP])["TargetGroups"]
    return str(groups[0]["TargetGroupArn"])


def test_one_instance_fails_its_system_status_check(sandbox: SandboxInfo) -> None:
    ec2 = client(sandbox, "ec2")
    answer = ec2.describe_instance_status(InstanceIds=group_instances(sandbox))
    assert_shape(ec2, "DescribeInstanceStatus", answer)
    statuses = {s["InstanceId"]: s for s in answer["InstanceStatuses"]}
    impaired = [i for i, s in statuses.items() if s["SystemStatus"]["Status"] == "impaired"]
    assert len(statuses) == tl.NODE_COUNT and len(impaired) == 1
    bad = statuses[impaired[0]]
    assert bad["SystemStatus"]["Details"][0] == {
        "Name": "reachability",
        "Status": "failed",
        "ImpairedSince": bad["SystemStatus"]["Details"][0]["ImpairedSince"],
    }
    assert bad["InstanceStatus"]["Status"] == "ok" and bad["Events"][0]["Code"] == "instance-retirement"
    healthy = [s for i, s in statuses.items() if i != impaired[0]]
    assert all(s["SystemStatus"]["Status"] == "ok" and "Events" not in s for s in healthy)
    only_bad = ec2.describe_instance_status(
        Filters=[{"Name": "system-status.status", "Values": ["impaired"]}]
    )
    assert [s["InstanceId"] for s in only_bad["InstanceStatuses"]] == impaired
    with pytest.raises(ClientError) as err:
        ec2.describe_instance_status(InstanceIds=["i-0000000000000dead"])
    assert err.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"


def test_target_health_follows_the_instances(sandbox: SandboxInfo) -> None:
    elbv2 = client(sandbox, "elbv2")
    answer = elbv2.describe_target_health(TargetGroupArn=target_group(sandbox))
    assert_shape(elbv2, "DescribeTargetHealth", answer)
    states = sorted(d["TargetHealth"]["State"] for d in answer["TargetHealthDescriptions"])
    assert states == ["healthy", "healthy", "unhealthy"]
    bad = next(d for d in answer["TargetHealthDescriptions"] if d["TargetHealth"]["State"] == "unhealthy")
    assert bad["TargetHealth"]["Reason"] == "Target.FailedHealthChecks"
    assert bad["Target"]["Port"] == tl.NODE_TARGET_PORT


def test_guardduty_findings_most_severe_first_and_filtered(sandbox: SandboxInfo) -> None:
    gd = client(sandbox, "guardduty")
    detector = gd.list_detectors()["DetectorIds"][0]
    ids = gd.list_findings(DetectorId=detector)["FindingIds"]
    assert len(ids) == 2
    findings = gd.get_findings(DetectorId=detector, FindingIds=ids)
    assert_shape(gd, "GetFindings", findings)
    assert [f["Severity"] for f in findings["Findings"]] == [5.0, 2.0]
    high = gd.list_findings(
        DetectorId=detector, FindingCriteria={"Criterion": {"severity": {"GreaterThanOrEqual": 4}}}
    )
    assert len(high["FindingIds"]) == 1
    with pytest.raises(ClientError):
        gd.list_findings(DetectorId="not-a-detector")


def test_nodes_are_the_groups_instances(sandbox: SandboxInfo) -> None:
    from kubernetes import client as k8s
    from kubernetes import config

    api = k8s.CoreV1Api(config.new_client_from_config(config_file=str(sandbox.kubeconfig)))
    workers = {
        n.spec.provider_id.rsplit("/", 1)[-1]: n
        for n in api.list_node().items
        if (n.metadata.labels or {}).get("runbook-sandbox/autoscaling-group") == tl.NODE_ASG
    }
    assert sorted(workers) == sorted(group_instances(sandbox))
    statuses = client(sandbox, "ec2").describe_instance_status(InstanceIds=list(workers))["InstanceStatuses"]
    for status in statuses:
        node = workers[status["InstanceId"]]
        ready = next(c.status for c in node.status.conditions if c.type == "Ready")
        assert ready == ("Unknown" if status["SystemStatus"]["Status"] == "impaired" else "True")
        assert node.spec.provider_id == f"aws:///{status['AvailabilityZone']}/{status['InstanceId']}"


@pytest.fixture(scope="module")
def aws_cli() -> str:
    beside = Path(sys.executable).with_name("aws")  # the dev extra's awscli, in this environment
    found = str(beside) if beside.exists() else shutil.which("aws")
    if found is None:
        pytest.skip("the stock AWS CLI (`aws`) is not installed: pip install -e '.[dev]' brings it")
    return found


def run_cli(info: SandboxInfo, aws_cli: str, *args: str) -> Any:
    env = {**os.environ, **info.env, "AWS_PAGER": ""}
    env.pop("AWS_PROFILE", None)
    done = subprocess.run(
        [aws_cli, "--endpoint-url", info.aws_endpoint, "--output", "json", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_stock_cli_reads_the_node_scenario(sandbox: SandboxInfo, aws_cli: str) -> None:
    status = run_cli(
        sandbox, aws_cli, "ec2", "describe-instance-status", "--instance-ids", *group_instances(sandbox)
    )
    assert sorted(s["SystemStatus"]["Status"] for s in status["InstanceStatuses"]) == ["impaired", "ok", "ok"]
    health = run_cli(
        sandbox, aws_cli, "elbv2", "describe-target-health", "--target-group-arn", target_group(sandbox)
    )
    assert sorted(d["TargetHealth"]["State"] for d in health["TargetHealthDescriptions"]) == [
        "healthy",
        "healthy",
        "unhealthy",
    ]
    detector = run_cli(sandbox, aws_cli, "guardduty", "list-detectors")["DetectorIds"][0]
    findings = run_cli(sandbox, aws_cli, "guardduty", "list-findings", "--detector-id", detector)
    assert len(findings["FindingIds"]) == 2
    dashboard = run_cli(sandbox, aws_cli, "cloudwatch", "get-dashboard", "--dashboard-name", tl.DASHBOARD)
    titles = [w["properties"]["title"] for w in json.loads(dashboard["DashboardBody"])["widgets"]]
    assert f"{tl.NODE_ASG} status checks" in titles
