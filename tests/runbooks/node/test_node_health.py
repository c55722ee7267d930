"""node_health against the sandbox's `node` scenario: node -> instance -> failed check -> drain, replace.

Witnesses independent of the kit: kubectl and the Kubernetes server's request log for the cluster,
boto3 and the sandbox's CloudTrail (every write that reached the AWS part) for EC2 and Auto Scaling.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import urllib.request
from typing import Any

import boto3
import pytest

from runbook_kit.runner import run_notebook
from runbook_sandbox import timeline as tl
from runbook_sandbox.manager import SandboxInfo

WRITES = {"RebootInstances", "TerminateInstanceInAutoScalingGroup", "TerminateInstances"}


def kubectl(info: SandboxInfo, *args: str) -> Any:
    out = subprocess.run(
        ["kubectl", "--kubeconfig", str(info.kubeconfig), *args, "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return json.loads(out)


def k8s_writes(info: SandboxInfo) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{info.k8s_url}/_sandbox/requests", timeout=10) as response:
        return [r for r in json.load(response) if r["method"] != "GET"]


def aws(info: SandboxInfo, service: str) -> Any:
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client(service, endpoint_url=info.aws_endpoint)


READ = re.compile(r"^(Describe|List|Get|Lookup)")


def aws_requests(info: SandboxInfo) -> list[dict[str, Any]]:
    """The AWS part's own request log (every request but the seeding client's)."""
    with urllib.request.urlopen(f"{info.aws_endpoint}/_sandbox/requests", timeout=10) as response:
        return list(json.load(response))


def aws_writes(info: SandboxInfo) -> list[str]:
    """EC2 / Auto Scaling writes in the sandbox's CloudTrail (the AWS part records every write it serves)."""
    events = aws(info, "cloudtrail").lookup_events(
        StartTime=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1), MaxResults=50
    )["Events"]
    return [e["EventName"] for e in events if e["EventName"] in WRITES]


def bad_node(info: SandboxInfo) -> tuple[str, str]:
    for node in kubectl(info, "get", "nodes")["items"]:
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        if ready["status"] != "True" and node["spec"].get("providerID", "").startswith("aws://"):
            return node["metadata"]["name"], node["spec"]["providerID"].rsplit("/", 1)[-1]
    raise AssertionError("the node scenario has no NotReady node")


def web_pods(info: SandboxInfo) -> list[dict[str, Any]]:
    return kubectl(info, "get", "pods", "-n", tl.NODE_NAMESPACE)["items"]


@pytest.fixture
def node_sandbox(fresh_sandbox: Any) -> SandboxInfo:
    return fresh_sandbox("node", parts=("aws", "k8s"))


def run(info: SandboxInfo, tmp_path: Any, incident: str, **parameters: Any) -> Any:
    return run_notebook(
        "node_health",
        parameters=parameters,
        incident=incident,
        store=str(tmp_path),
        env=info.env,
        timeout=600,
    )


def test_dry_run_maps_the_node_names_the_check_and_changes_nothing(
    node_sandbox: SandboxInfo, tmp_path: Any
) -> None:
    node, instance = bad_node(node_sandbox)
    before_pods = sorted(p["metadata"]["name"] for p in web_pods(node_sandbox))
    result = run(node_sandbox, tmp_path, "INC-70")
    assert result.status == "succeeded", result.failure

    cause = next(f for f in result.findings if f.details.get("recommended"))
    assert cause.severity == "critical" and cause.details["node"] == node
    assert cause.details["instance_id"] == instance
    assert "failed its system status check (system reachability)" in cause.title
    assert "instance-retirement" in cause.title and cause.details["recommended"] == "replace"
    actions = {e.title.split(":")[0]: e for e in result.entries if e.kind == "action"}
    assert actions["reboot instance"].outcome == "skipped"
    assert actions["drain"].outcome == "dry-run" and actions["drain"].details["server_validated"] is True
    assert actions["replace node"].outcome == "dry-run"
    assert "--no-should-decrement-desired-capacity" in actions["replace node"].command
    # nothing changed: only server-side dry runs reached Kubernetes, no write reached EC2/Auto Scaling
    writes = k8s_writes(node_sandbox)
    assert writes and all(r["query"].get("dryRun") == "All" for r in writes), writes
    assert aws_writes(node_sandbox) == []
    requests = aws_requests(node_sandbox)
    assert requests and all(READ.match(r["action"]) or r["method"] == "GET" for r in requests), requests
    assert bad_node(node_sandbox) == (node, instance)
    assert not kubectl(node_sandbox, "get", "node", node)["spec"].get("unschedulable")
    assert sorted(p["metadata"]["name"] for p in web_pods(node_sandbox)) == before_pods

    # a reboot's dry run is EC2's own: the request reaches EC2 with DryRun and is answered 412
    result = run(node_sandbox, tmp_path, "INC-73", mitigation="reboot")
    assert result.status == "succeeded", result.failure
    reboot = next(e for e in result.entries if e.kind == "action" and e.title.startswith("reboot instance"))
    assert reboot.outcome == "dry-run" and reboot.details["server_validated"] is True
    sent = [r for r in aws_requests(node_sandbox) if r["action"] == "RebootInstances"]
    assert [(r["dry_run"], r["status"]) for r in sent] == [(True, 412)]
    assert aws_writes(node_sandbox) == []


def test_apply_cordons_drains_and_replaces_the_node(node_sandbox: SandboxInfo, tmp_path: Any) -> None:
    node, instance = bad_node(node_sandbox)
    stranded = sorted(p["metadata"]["name"] for p in web_pods(node_sandbox) if p["spec"]["nodeName"] == node)
    assert stranded
    result = run(node_sandbox, tmp_path, "INC-71", dry_run=False, wait_seconds=60)
    assert result.status == "succeeded", result.failure

    actions = {e.title.split(":")[0]: e for e in result.entries if e.kind == "action"}
    assert actions["drain"].outcome == "applied" and actions["replace node"].outcome == "applied"
    assert actions["replace node"].details["after"]["new_nodes_ready"]
    # the old instance is terminated, the group launched a new one, and it joined as a Ready node
    state = aws(node_sandbox, "ec2").describe_instances(InstanceIds=[instance])["Reservations"][0][
        "Instances"
    ][0]
    assert state["State"]["Name"] == "terminated"
    nodes = kubectl(node_sandbox, "get", "nodes")["items"]
    assert node not in {n["metadata"]["name"] for n in nodes}
    group = aws(node_sandbox, "autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[tl.NODE_ASG])
    members = {i["InstanceId"] for i in group["AutoScalingGroups"][0]["Instances"]}
    assert instance not in members and len(members) == tl.NODE_COUNT
    ready = {
        n["spec"]["providerID"].rsplit("/", 1)[-1]
        for n in nodes
        if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
    }
    assert members <= ready
    joined = actions["replace node"].details["after"]["new_nodes_ready"]
    by_name = {n["metadata"]["name"]: n["spec"]["providerID"].rsplit("/", 1)[-1] for n in nodes}
    assert len(joined) == 1 and by_name[joined[0]] in members - {instance}
    # the evicted pods were recreated and run elsewhere
    pods = web_pods(node_sandbox)
    assert not set(stranded) & {p["metadata"]["name"] for p in pods}
    running = [p for p in pods if p["status"]["phase"] == "Running" and p["spec"]["nodeName"] != node]
    assert len(running) == tl.NODE_REPLICAS
    assert sorted(aws_writes(node_sandbox)) == ["TerminateInstanceInAutoScalingGroup"]
    writes = [(r["action"], r["status"]) for r in aws_requests(node_sandbox) if not READ.match(r["action"])]
    assert ("TerminateInstanceInAutoScalingGroup", 200) in writes
    replaced = [f for f in result.findings if f.title.startswith(f"node {node} replaced")]
    assert replaced


def test_more_not_ready_nodes_than_the_blast_radius_is_refused(
    node_sandbox: SandboxInfo, tmp_path: Any
) -> None:
    node, _ = bad_node(node_sandbox)
    result = run(node_sandbox, tmp_path, "INC-72", mitigation="reboot", node=node, max_nodes=0)
    assert result.status == "failed" and "blast radius of 0" in result.failure
    assert aws_writes(node_sandbox) == []


def test_unreadable_ec2_is_a_gap_and_a_reboot_on_it_is_refused(
    node_sandbox: SandboxInfo, tmp_path: Any
) -> None:
    """EC2 and Auto Scaling unreachable (a dead port), Kubernetes readable: the run completes with gaps,
    the diagnosis falls back to a drain, and a reboot asked for anyway carries the missing evidence,
    so the guard refuses it."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    node, instance = bad_node(node_sandbox)
    env = {**node_sandbox.env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{dead}", "RUNBOOK_RETRIES": "0"}
    result = run_notebook("node_health", parameters={"mitigation": "reboot"}, incident="INC-74",
                          store=str(tmp_path), env=env, timeout=600)
    assert result.status == "completed-with-gaps", result.failure
    gaps = {e.title: e.details for e in result.entries if e.kind == "gap"}
    assert {f"EC2 status checks of {instance}", f"Auto Scaling group of {instance}"} <= set(gaps)
    assert "ec2:DescribeInstanceStatus" in gaps[f"EC2 status checks of {instance}"]["fix"]
    assert f"EC2 state of {instance}" in gaps  # the closing check reads EC2 too: a gap, not a failure
    assert not [f for f in result.findings if f.title.startswith("Gap")]  # gaps are gaps, not findings
    cause = next(f for f in result.findings if f.details.get("recommended"))
    assert cause.details["recommended"] == "drain" and cause.details["node"] == node
    assert any(m.startswith(f"EC2 status checks of {instance}") for m in cause.details["missing"])
    reboot = next(e for e in result.entries if e.kind == "action" and e.title.startswith("reboot instance"))
    assert reboot.outcome == "refused" and reboot.details["missing_evidence"]
    assert aws_writes(node_sandbox) == []
