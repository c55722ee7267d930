"""The Job executor's own Kubernetes client (clients.batch_v1_for_runs / pods_for_runs): Jobs and their
pods only; on a read-only machine, only read-only Jobs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from runbook_kit import clients
from runbook_kit.jobs.manifest import JobSpec, build_job

JOBS = "https://k8s.example/apis/batch/v1/namespaces/runbooks/jobs"


def _job(read_only: bool) -> dict:
    return build_job(
        JobSpec(
            runbook="pod_crashloop",
            incident="INC-1",
            parameters={"dry_run": False},
            image="kit:1",
            store="s3://r/p",
            namespace="runbooks",
            timeout=60,
            read_only=read_only,
        )
    )


def test_only_jobs_and_their_pods():
    allowed = clients._runs_request_allowed
    assert allowed("POST", JOBS, _job(False)) is None
    assert allowed("GET", JOBS + "/rb-x?watch=true", None) is None
    assert allowed("DELETE", JOBS + "/rb-x", None) is None
    assert (
        allowed("GET", "https://k8s.example/api/v1/namespaces/runbooks/pods/rb-x-1/log?follow=true", None)
        is None
    )
    assert allowed("GET", "https://k8s.example/api/v1/namespaces/runbooks/events", None) is None
    for method, url in (
        ("PATCH", JOBS + "/rb-x"),  # not even its own Jobs' specs
        ("DELETE", "https://k8s.example/api/v1/namespaces/runbooks/pods/rb-x-1"),
        ("POST", "https://k8s.example/apis/apps/v1/namespaces/payments/deployments"),
        ("GET", "https://k8s.example/api/v1/namespaces/runbooks/secrets/token"),
        ("POST", "https://k8s.example/api/v1/namespaces/runbooks/pods/rb-x-1/eviction"),
    ):
        assert "refused" in (allowed(method, url, None) or ""), (method, url)


def test_a_read_only_machine_submits_only_read_only_jobs():
    code = (
        "import json, sys\n"
        "from runbook_kit import clients\n"
        "bodies = json.load(sys.stdin)\n"
        "print(json.dumps([clients._runs_request_allowed('POST', sys.argv[1], b) for b in bodies]))\n"
    )
    env = {**os.environ, "RUNBOOK_READ_ONLY": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code, JOBS],
        input=json.dumps([_job(True), _job(False)]),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    ok, refused = json.loads(done.stdout)
    assert ok is None
    assert "a read-only machine submits only read-only Jobs" in refused
