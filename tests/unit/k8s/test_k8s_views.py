"""Pure flattening of API objects into the runbook's views, on plain dicts."""

from __future__ import annotations

import datetime as dt

from k8s_objects import container_status, pod, template

from runbook_kit.k8s.logs import memory_peak_from_logs
from runbook_kit.k8s.nodeops import drain_targets
from runbook_kit.k8s.nodes import node_rows
from runbook_kit.k8s.resources import resource_rows
from runbook_kit.k8s.rollout import template_diff
from runbook_kit.k8s.status import pod_rows
from runbook_kit.k8s.verify import rollout_state

AT = dt.datetime(2026, 1, 1, 10, 0, tzinfo=dt.UTC)


def test_pod_rows_is_the_kubectl_wide_view():
    crashing = pod(
        "api-new-1",
        statuses=[
            container_status(restarts=9, waiting="CrashLoopBackOff", last_reason="OOMKilled", exit_code=137)
        ],
    )
    healthy = pod("api-old-1", statuses=[container_status(ready=True)], created="2025-12-31T10:00:00Z")
    df = pod_rows([crashing, healthy], at=AT)
    first, second = df.iloc[0], df.iloc[1]
    assert (first.status, first.ready, first.restarts, first.last_reason, first.last_exit_code) == (
        "CrashLoopBackOff",
        "0/1",
        9,
        "OOMKilled",
        137,
    )
    assert first.node == "node-a" and first.ip == "10.0.0.5" and first.owner == "ReplicaSet/api-abc"
    assert first.age == dt.timedelta(hours=1) and second.age == dt.timedelta(days=1)
    assert (second.status, second.ready, second.restarts) == ("Running", "1/1", 0)
    assert str(df["created"].dt.tz) == "UTC"


def test_pod_rows_of_nothing_has_the_columns():
    df = pod_rows([], at=AT)
    assert df.empty and {"pod", "status", "restarts", "last_reason", "node"} <= set(df.columns)


def test_template_diff_names_the_changed_fields():
    changes = template_diff(
        template(memory="512Mi", env=("A",)), template(memory="256Mi", image="r/app:2", env=("A", "B"))
    )
    assert {(c["field"], c["old"], c["new"]) for c in changes} == {
        ("limits.memory", "512Mi", "256Mi"),
        ("image", "registry/app:1.0", "r/app:2"),
        ("env.B", "", "set"),
    }
    assert template_diff(template(), template()) == []


def test_drain_skips_daemonset_mirror_and_finished_pods():
    pods = [
        pod("web-1"),
        pod("ds-1", owner=("DaemonSet", "fluentbit")),
        pod("static-1", owner=None, annotations={"kubernetes.io/config.mirror": "x"}),
        pod("job-1", phase="Succeeded"),
        pod("bare-1", owner=None),
    ]
    evict, skipped = drain_targets(pods)
    assert [p["metadata"]["name"] for p in evict] == ["web-1", "bare-1"]
    assert dict(skipped) == {
        "payments/ds-1": "DaemonSet-managed",
        "payments/static-1": "mirror pod",
        "payments/job-1": "finished",
    }


def _deployment(*, generation=2, observed=2, replicas=3, updated=3, ready=3, available=3, total=3):
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": observed,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": available,
            "replicas": total,
        },
    }


def test_rollout_state_like_kubectl_rollout_status():
    assert rollout_state(_deployment()) == (True, "rollout complete")
    assert not rollout_state(_deployment(observed=1))[0]
    assert rollout_state(_deployment(updated=1)) == (False, "1 of 3 replicas updated")
    assert rollout_state(_deployment(total=4))[1] == "1 old replicas pending termination"
    assert rollout_state(_deployment(available=2, ready=2))[1] == "2 of 3 updated replicas available"


def test_node_rows_sum_requests_against_allocatable():
    node = {
        "metadata": {"name": "node-a", "labels": {"topology.kubernetes.io/zone": "us-east-1a"}},
        "spec": {"unschedulable": True},
        "status": {
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "58"},
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "True"}],
        },
    }
    pods = [
        pod(requests={"cpu": "500m", "memory": "1Gi"}),
        pod(requests={"cpu": "1", "memory": "1Gi"}),
        pod(phase="Succeeded", requests={"cpu": "2", "memory": "2Gi"}),
    ]
    row = node_rows([node], pods).iloc[0]
    assert row.ready and row.unschedulable and row.pressure == "MemoryPressure" and row.pods == 2
    assert row.cpu_requested == 1.5 and row.cpu_requested_pct == 37.5
    assert row.memory_requested_mib == 2048 and row.memory_requested_pct == 25.0


def test_resources_say_when_metrics_are_unavailable():
    p = pod(requests={"memory": "128Mi"})
    missing = resource_rows([p], None).iloc[0]
    assert (
        missing.metrics == "unavailable"
        and missing.memory_limit == "256Mi"
        and missing.memory_limit_mib == 256
    )
    served = resource_rows([p], {("api-abc-1", "api"): (0.2, 192 * 1024**2)}).iloc[0]
    assert served.metrics == "ok" and served.memory_usage_mib == 192 and served.memory_pct_of_limit == 75.0


def test_memory_peak_from_logs():
    text = "heap_used_mib=120 limit_mib=256\nWARN gc heap_used_mib=254 limit_mib=256\nrss: 90MB"
    assert memory_peak_from_logs(text) == 254 * 1024**2
    assert memory_peak_from_logs("INFO ready") is None
