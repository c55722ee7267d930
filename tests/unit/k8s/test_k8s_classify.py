"""Crash classification and recommendation rules, on plain dicts and text."""

from __future__ import annotations

import pytest
from k8s_objects import container_status, pod

from runbook_kit.k8s.classify import classify_container, crashing_containers
from runbook_kit.k8s.diagnose import assess_mitigation as mitigation
from runbook_kit.k8s.quantity import MI, assess_memory_limit

OOM_LOG = (
    "2026-01-01T10:00:01Z INFO  cache warm-up heap_used_mib=235 limit_mib=256\n"
    "2026-01-01T10:00:02Z WARN  gc overhead limit approaching: heap_used_mib=254 limit_mib=256\n"
)


def _one(status, *, events=(), log_text="", **pod_kwargs):
    return classify_container(
        pod=pod(statuses=[status], **pod_kwargs), status=status, events=events, log_text=log_text
    )


def test_oomkilled_names_the_limit():
    crash = _one(
        container_status(restarts=7, waiting="CrashLoopBackOff", last_reason="OOMKilled", exit_code=137),
        log_text=OOM_LOG,
    )
    assert crash.category == "OOMKilled" and crash.memory_limit == "256Mi" and crash.exit_code == 137
    assert "256Mi" in crash.detail and "out of memory" in crash.signatures


@pytest.mark.parametrize("reason", ["ImagePullBackOff", "ErrImagePull", "InvalidImageName"])
def test_bad_image(reason):
    crash = _one(container_status(waiting=reason, waiting_message='pull "registry/app:9.9" not found'))
    assert crash.category == "bad image" and reason in crash.detail


def test_config_error_from_waiting_reason():
    crash = _one(
        container_status(
            waiting="CreateContainerConfigError", waiting_message='secret "db-password" not found'
        )
    )
    assert crash.category == "config error" and "db-password" in crash.detail


def test_config_error_from_the_log():
    crash = _one(
        container_status(restarts=4, waiting="CrashLoopBackOff", last_reason="Error", exit_code=1),
        log_text="FATAL environment variable DATABASE_URL not set\n",
    )
    assert crash.category == "config error"


def test_failing_liveness_probe():
    events = [
        {"reason": "Unhealthy", "message": "Liveness probe failed: HTTP probe failed with statuscode: 500"},
        {"reason": "Killing", "message": "Container api failed liveness probe, will be restarted"},
    ]
    crash = _one(
        container_status(restarts=5, waiting="CrashLoopBackOff", last_reason="Error", exit_code=137),
        events=events,
    )
    assert crash.category == "failing probe" and "Liveness probe failed" in crash.detail


def test_exit_137_with_oom_in_log_is_oom_even_without_the_reason():
    crash = _one(
        container_status(restarts=3, waiting="CrashLoopBackOff", last_reason="Error", exit_code=137),
        log_text="java.lang.OutOfMemoryError: Java heap space",
    )
    assert crash.category == "OOMKilled"


@pytest.mark.parametrize(
    ("log", "signature"),
    [
        ("panic: runtime error: invalid memory address\ngoroutine 1 [running]:", "panic"),
        ('Traceback (most recent call last):\n  File "app.py"', "traceback"),
        ("dial tcp 10.0.0.9:5432: connect: connection refused", "connection refused"),
    ],
)
def test_application_error_names_exit_code_and_signature(log, signature):
    crash = _one(
        container_status(restarts=4, waiting="CrashLoopBackOff", last_reason="Error", exit_code=2),
        log_text=log,
    )
    assert crash.category == "application error"
    assert signature in crash.signatures and "exit code 2" in crash.detail and signature in crash.detail


def test_which_containers_count_as_crash_looping():
    healthy = pod(statuses=[container_status(ready=True)])
    restarted_once = pod(
        statuses=[container_status(restarts=1, last_reason="Error", exit_code=1, ready=True)]
    )
    flapping = pod(statuses=[container_status(restarts=3, last_reason="Error", exit_code=1, ready=True)])
    backoff = pod(statuses=[container_status(restarts=1, waiting="CrashLoopBackOff")])
    pulling = pod(statuses=[container_status(waiting="ImagePullBackOff")])
    assert [len(crashing_containers(p)) for p in (healthy, restarted_once, flapping, backoff, pulling)] == [
        0,
        0,
        1,
        1,
        1,
    ]


def test_recommendation_rules():
    memory = assess_memory_limit(current=256 * MI, observed_peak=254 * MI, previous_limit=512 * MI)
    assert (
        mitigation(cause="OOMKilled", from_latest_revision=True, has_previous=True, memory=memory)[0]
        == "rollback"
    )
    what, why = mitigation(cause="OOMKilled", from_latest_revision=False, has_previous=True, memory=memory)
    assert what == "raise_memory" and "512Mi" in why
    assert (
        mitigation(cause="OOMKilled", from_latest_revision=True, has_previous=False, memory=memory)[0]
        == "raise_memory"
    )
    assert (
        mitigation(cause="application error", from_latest_revision=False, has_previous=True, memory=None)[0]
        == "none"
    )
    assert mitigation(cause="", from_latest_revision=False, has_previous=False, memory=None)[0] == "none"
