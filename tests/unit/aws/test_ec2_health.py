"""Pure logic of node health: providerID parsing, status-check rows, and the node assessment."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd
import pytest

from runbook_kit.aws.ec2 import health_rows
from runbook_kit.investigate.node_mitigation import plan_node_drain, plan_node_reboot, plan_node_replacement
from runbook_kit.investigate.nodes import NodeSnapshot, assess_node
from runbook_kit.k8s.instances import node_rows, parse_provider_id

SINCE = dt.datetime(2026, 11, 30, 10, 12, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("provider_id", "expected"),
    [
        ("aws:///us-east-1a/i-0abc", ("us-east-1a", "i-0abc")),
        ("aws://us-east-1a/i-0abc", ("us-east-1a", "i-0abc")),
        ("gce://project/zone/vm-1", None),
        ("aws:///us-east-1a/fargate-ip-10-0-1-2", None),
        ("", None),
    ],
)
def test_parse_provider_id(provider_id: str, expected: tuple[str, str] | None) -> None:
    assert parse_provider_id(provider_id) == expected


def status(instance: str, *, system: str = "ok", guest: str = "ok", events: bool = False) -> dict:
    def check(value: str) -> dict:
        detail = {"Name": "reachability", "Status": "failed" if value == "impaired" else "passed"}
        if value == "impaired":
            detail["ImpairedSince"] = SINCE
        return {"Status": value, "Details": [detail]}

    row = {
        "InstanceId": instance,
        "AvailabilityZone": "us-east-1a",
        "InstanceState": {"Name": "running"},
        "SystemStatus": check(system),
        "InstanceStatus": check(guest),
    }
    if events:
        row["Events"] = [
            {"Code": "instance-retirement", "Description": "degraded hardware", "NotBefore": SINCE}
        ]
    return row


def test_health_rows_put_the_impaired_instance_first_with_its_check_and_time() -> None:
    frame = health_rows([status("i-1"), status("i-2", system="impaired", events=True)])
    first = frame.iloc[0]
    assert first["instance_id"] == "i-2" and first["failed_checks"] == "system reachability"
    assert first["impaired_since"] == pd.Timestamp(SINCE) and "instance-retirement" in first["events"]
    assert frame.iloc[1]["failed_checks"] == "" and pd.isna(frame.iloc[1]["impaired_since"])


def node(name: str, instance: str, ready: str) -> dict:
    return {
        "metadata": {"name": name},
        "spec": {"providerID": f"aws:///us-east-1a/{instance}"},
        "status": {"conditions": [{"type": "Ready", "status": ready, "reason": "r"}]},
    }


def snapshot(
    nodes: list[dict], statuses: list[dict], *, chosen: tuple[str, ...], group: bool = True
) -> NodeSnapshot:
    frame = node_rows(nodes, [])
    groups = {
        s["InstanceId"]: ({"group": "workers", "instances": ["i-1", "i-2"], "desired": 2} if group else None)
        for s in statuses
    }
    return NodeSnapshot(
        nodes=frame,
        chosen=chosen,
        health=health_rows(statuses),
        groups=groups,
        stranded={c: ["shop/web-1"] for c in chosen},
    )


def test_failed_system_check_recommends_replacement_through_the_group() -> None:
    snap = snapshot(
        [node("n1", "i-1", "True"), node("n2", "i-2", "Unknown")],
        [status("i-2", system="impaired", events=True)],
        chosen=("n2",),
    )
    a = assess_node(snap)
    assert (a.node, a.instance_id, a.mitigation, a.severity) == ("n2", "i-2", "replace", "critical")
    assert "failed its system status check" in a.cause and "instance-retirement" in a.cause
    assert a.group == "workers" and a.stranded_pods == ("shop/web-1",)
    assert plan_node_reboot(a, mitigation="recommended").nothing_to_do


def test_failed_instance_check_recommends_a_reboot_and_no_group_means_no_replacement() -> None:
    guest = assess_node(
        snapshot([node("n2", "i-2", "False")], [status("i-2", guest="impaired")], chosen=("n2",))
    )
    assert guest.mitigation == "reboot"
    host = assess_node(
        snapshot(
            [node("n2", "i-2", "False")], [status("i-2", system="impaired")], chosen=("n2",), group=False
        )
    )
    assert host.mitigation == "drain" and "no Auto Scaling group" in host.reason


def test_no_sick_node_means_nothing_to_do_and_several_are_over_the_blast_radius() -> None:
    calm = assess_node(snapshot([node("n1", "i-1", "True")], [], chosen=()))
    assert calm.mitigation == "none" and plan_node_drain(calm).nothing_to_do
    many = assess_node(
        snapshot(
            [node("n1", "i-1", "Unknown"), node("n2", "i-2", "Unknown")],
            [status("i-1", system="impaired"), status("i-2", system="impaired")],
            chosen=("n1", "n2"),
        )
    )
    assert "2 nodes are NotReady at once" in many.cause
    refused = plan_node_drain(many, max_nodes=1)
    assert refused.targets == ["n1", "n2"] and refused.max_targets == 1


def test_a_healthy_node_needs_nothing_and_not_ready_with_good_checks_is_the_kubelet() -> None:
    calm = assess_node(snapshot([node("n1", "i-1", "True")], [status("i-1")], chosen=("n1",)))
    assert (calm.mitigation, calm.severity) == ("none", "info")
    kubelet = assess_node(snapshot([node("n1", "i-1", "False")], [status("i-1")], chosen=("n1",)))
    assert kubelet.mitigation == "replace" and "kubelet" in kubelet.cause


def test_an_unreadable_group_is_not_no_group_and_its_replacement_is_refused() -> None:
    """The host is at fault but the Auto Scaling group was a gap: drain, the gap carried as `missing`,
    and a replacement asked for anyway is refused by the guard (it depends on the group)."""
    from runbook_kit import guard

    snap = snapshot([node("n2", "i-2", "False")], [status("i-2", system="impaired")], chosen=("n2",),
                    group=False)
    unread = "Auto Scaling group of i-2: aws autoscaling describe-auto-scaling-instances: permission denied"
    host = assess_node(dataclasses.replace(snap, groups={}, gaps=(unread,)))
    assert host.mitigation == "drain" and "could not be read" in host.reason
    assert host.missing == (unread,)
    plan = plan_node_replacement(host, mitigation="replace")
    assert list(plan.missing_evidence) == [unread]
    assert guard.apply(plan, dry_run=True).outcome == "refused"


def test_unreadable_status_checks_leave_only_the_drain_and_a_reboot_is_refused() -> None:
    snap = snapshot([node("n2", "i-2", "False")], [], chosen=("n2",))
    health = pd.DataFrame(columns=list(snap.health.columns))
    health.attrs["gap"] = {"what": "EC2 status checks of i-2", "why": "permission denied", "fix": "x"}
    unread = ("EC2 status checks of i-2: permission denied",)
    a = assess_node(dataclasses.replace(snap, health=health, gaps=unread))
    assert a.mitigation == "drain" and a.missing == ("EC2 status checks of i-2: permission denied",)
    reboot = plan_node_reboot(a, mitigation="reboot")
    assert list(reboot.missing_evidence) == list(a.missing)
    # without the gap, the same empty status means the instance is gone: nothing missing, nothing to do
    gone = assess_node(dataclasses.replace(snap, health=pd.DataFrame(columns=list(snap.health.columns))))
    assert gone.mitigation == "none" and gone.missing == () and "not found" in gone.cause
