"""The workload snapshot on plain objects: its views and the diagnosis reason on the same data."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from k8s_objects import container_status, pod, template

from runbook_kit import record
from runbook_kit.k8s import (
    container_logs,
    container_resources,
    deployment_status,
    diagnose_crashloop,
    most_restarted_pod,
    pod_events,
    pod_status,
    replicaset_status,
    revision_diff,
    rollout_history,
)
from runbook_kit.k8s.diagnose import assess_crashloop
from runbook_kit.k8s.quantity import MI
from runbook_kit.k8s.snapshot import WorkloadSnapshot, snapshot_from_objects

AT = dt.datetime(2026, 1, 1, 10, 30, tzinfo=dt.UTC)
OOM_LOG = (
    "2026-01-01T10:00:01Z INFO  cache warm-up heap_used_mib=235 limit_mib=256\n"
    "2026-01-01T10:00:02Z WARN  gc overhead limit approaching: heap_used_mib=254 limit_mib=256\n"
)


def _rs(name: str, rev: int, memory: str, *, created: str) -> dict:
    return {
        "metadata": {
            "name": name,
            "creationTimestamp": created,
            "annotations": {"deployment.kubernetes.io/revision": str(rev)},
            "labels": {"app": "api", "pod-template-hash": name.rsplit("-", 1)[-1]},
            "ownerReferences": [{"kind": "Deployment", "name": "api", "controller": True, "uid": "d1"}],
        },
        "spec": {"replicas": 2, "template": template(memory=memory)},
        "status": {"replicas": 2, "readyReplicas": 0},
    }


def _event(pod_name: str, reason: str, message: str) -> dict:
    return {
        "involvedObject": {"kind": "Pod", "name": pod_name},
        "reason": reason,
        "message": message,
        "type": "Warning",
        "count": 4,
        "lastTimestamp": "2026-01-01T10:05:00Z",
        "firstTimestamp": "2026-01-01T10:01:00Z",
    }


def _oom(name: str, restarts: int) -> dict:
    status = container_status(
        restarts=restarts, waiting="CrashLoopBackOff", last_reason="OOMKilled", exit_code=137
    )
    return pod(name, statuses=[status], owner=("ReplicaSet", "api-new"), created="2026-01-01T10:01:00Z")


def _snapshot(**overrides) -> WorkloadSnapshot:
    deployment = {
        "metadata": {
            "name": "api", "namespace": "payments", "uid": "d1", "generation": 3,
            "annotations": {"deployment.kubernetes.io/revision": "3"},
        },
        "spec": {"replicas": 2, "template": template(memory="256Mi")},
        "status": {"replicas": 2, "updatedReplicas": 2, "readyReplicas": 0},
    }
    objects = {
        "namespace": "payments",
        "deployment": deployment,
        "replicasets": [  # out of order on purpose: the snapshot sorts by revision
            _rs("api-new", 3, "256Mi", created="2026-01-01T10:00:00Z"),
            _rs("api-old", 2, "512Mi", created="2025-12-30T10:00:00Z"),
        ],
        "pods": [
            _oom("api-new-a", 7),
            _oom("api-new-b", 9),
            pod("api-new-c", statuses=[container_status(ready=True)], owner=("ReplicaSet", "api-new")),
        ],
        "events": [
            _event("api-new-a", "BackOff", "Back-off restarting failed container api"),
            _event("api-new-b", "BackOff", "Back-off restarting failed container api"),
            _event("other-pod", "Pulled", "not ours: filtered out"),
        ],
        "logs": {("api-new-a", "api"): OOM_LOG, ("api-new-b", "api"): OOM_LOG},
        "usage": {("api-new-a", "api"): (0.1, 200 * MI), ("api-new-c", "api"): (0.05, 100 * MI)},
        "selector": "app=api",
        "taken_at": AT,
    }
    return snapshot_from_objects(**{**objects, **overrides})


def test_the_snapshot_is_frozen_and_sums_itself_up_in_one_line():
    snap = _snapshot()
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.pods = ()  # type: ignore[misc]
    assert [rs["metadata"]["name"] for rs in snap.replicasets] == ["api-old", "api-new"]
    assert len(snap.events) == 2  # only the events of its pods
    assert repr(snap) == (
        "WorkloadSnapshot('payments/api', pods=3, crashing=2, replicasets=2, events=2, logs=2, "
        "metrics=2, gaps=0)"
    )
    page = snap._repr_html_()
    assert "payments/api, revision 3 at 2026-01-01 10:30:00 UTC: 3 pods, 2 crash-looping containers" in page


def test_views_are_the_kubectl_tables_of_the_snapshot():
    snap = _snapshot()
    pods = pod_status(snap)
    assert list(pods["pod"]) == ["api-new-b", "api-new-a", "api-new-c"]  # most restarts first
    assert pods.loc[0, "age"] == dt.timedelta(minutes=29)  # measured at the snapshot's time
    assert most_restarted_pod(snap) == most_restarted_pod(pods) == "api-new-b"
    assert list(pod_events(snap, pod="api-new-a")["reason"]) == ["BackOff"]
    assert len(pod_events(snap)) == 2
    logs = container_logs(snap, pod="api-new-b", tail=1)
    assert list(logs["line"]) == ["WARN  gc overhead limit approaching: heap_used_mib=254 limit_mib=256"]
    assert logs.loc[0, "signatures"] == "out of memory" and logs.loc[0, "container"] == "api"
    resources = container_resources(snap)
    assert list(resources["metrics"]) == ["ok", "no sample", "ok"]
    assert resources.loc[0, "memory_pct_of_limit"] == round(100 * 200 / 256, 1)
    history = rollout_history(snap)
    assert list(history["revision"]) == [2, 3]
    diff = revision_diff(snap)
    assert diff.to_dict("records") == [
        {"from_revision": 2, "to_revision": 3, "container": "api", "field": "limits.memory",
         "old": "512Mi", "new": "256Mi"},
    ]
    assert deployment_status(snap).loc[0, "revision"] == "3"
    assert list(replicaset_status(snap)["revision"]) == [2, 3]


def test_logs_of_a_pod_the_snapshot_did_not_read_say_why():
    snap = _snapshot(log_errors={("api-new-a", "api"): "previous terminated container not found"})
    snap = dataclasses.replace(snap, logs={})
    logs = container_logs(snap, pod="api-new-a")
    assert logs.empty and "previous terminated container not found" in logs.attrs["note"]
    assert "not crash-looping" in container_logs(snap, pod="api-new-c").attrs["note"]


def test_views_without_a_deployment_say_so():
    snap = _snapshot(deployment=None, replicasets=[])
    before = len(record.entries_this_session())
    assert rollout_history(snap).empty and revision_diff(snap).empty and deployment_status(snap).empty
    notes = record.entries_this_session()[before:]
    assert [e.title for e in notes][:1] == ["No deployment given in payments: rollout history not read"]


def test_live_views_without_a_namespace_are_a_parameter_error():
    from runbook_kit.errors import ParameterError

    for view in (pod_events, container_logs, rollout_history, deployment_status, container_resources):
        with pytest.raises(ParameterError, match="namespace is not set"):
            view(namespace=None)


def test_diagnosis_reasons_on_the_snapshot_and_keeps_its_evidence():
    snap = _snapshot()
    d = assess_crashloop(snap)
    assert d.cause == "OOMKilled" and d.container == "api" and d.pods == ["api-new-a", "api-new-b"]
    assert d.recommendation == "rollback" and d.taken_at == AT
    assert d.rollout and d.rollout["revision"] == 3 and d.rollout["previous_revision"] == 2
    assert d.rollout["changes"] == ["api limits.memory: 512Mi → 256Mi"]
    assert d.rollout["minutes_after_rollout"] == 1.0
    assert d.observed_peak == 254 * MI  # the logged peak beats the metrics sample (200Mi)
    assert d.usage == [{"pod": "api-new-a", "container": "api", "memory": "200Mi"}]
    row = d.evidence[0]
    assert row == {
        "pod": "api-new-a", "container": "api", "reason": "OOMKilled", "waiting_reason": "CrashLoopBackOff",
        "exit_code": 137, "restarts": 7, "memory_limit": "256Mi", "replicaset": "api-new", "revision": 3,
        "detail": "OOMKilled (exit 137) at memory limit 256Mi",
        "events": ["BackOff: Back-off restarting failed container api"],
        "last_log_lines": OOM_LOG.splitlines(),
    }
    assert d.memory and d.memory.new_quantity == "512Mi"  # the previous revision's limit


def test_diagnose_records_each_finding_with_its_evidence():
    before = len(record.entries_this_session())
    diagnose_crashloop(_snapshot())
    cause, rollout, recommended = record.entries_this_session()[before:]
    assert cause.severity == "high" and "revision 3" in cause.title and "256Mi" in cause.title
    assert [r["pod"] for r in cause.details["evidence"]] == ["api-new-a", "api-new-b"]
    assert cause.details["evidence"][1]["last_log_lines"][-1].endswith("heap_used_mib=254 limit_mib=256")
    assert cause.details["snapshot_taken_at"] == AT.isoformat() and cause.details["gaps"] == []
    assert rollout.details["evidence"] == [
        {"pod": "api-new-a", "replicaset": "api-new", "revision": 3},
        {"pod": "api-new-b", "replicaset": "api-new", "revision": 3},
    ]
    assert recommended.details["recommendation"] == "rollback"
    assert recommended.details["evidence"]["limit"] == "256Mi"
    assert recommended.details["evidence"]["observed_peak"] == "254Mi"


def test_a_calm_workload_is_one_info_finding():
    snap = _snapshot(pods=[pod("api-new-c", statuses=[container_status(ready=True)])], logs={})
    before = len(record.entries_this_session())
    d = diagnose_crashloop(snap)
    assert d.recommendation == "none" and not d.crashes
    (entry,) = record.entries_this_session()[before:]
    assert entry.title == "No crash-looping pods in payments/api (1 pods checked)"


def test_gaps_of_the_snapshot_travel_with_the_diagnosis():
    snap = _snapshot(usage=None, gaps=("container usage (metrics.k8s.io) in payments: not served",))
    d = assess_crashloop(snap)
    assert d.usage == [] and d.gaps == snap.gaps
    assert container_resources(snap)["metrics"].eq("unavailable").all()
    assert "gap: container usage (metrics.k8s.io) in payments: not served" in snap._repr_html_()
    assert "metrics='unavailable'" in repr(snap)
