"""Helpers for the Job executor's tests (tests/jobs): runs as Jobs on the incident sandbox, whose
Kubernetes serves batch/v1 Jobs and runs their pods as local processes (the `runbook` command of this
venv), with the sandbox's S3 as the record store."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def _notebook(*cells: tuple[str, str]) -> dict:
    out = []
    for i, (kind, source) in enumerate(cells):
        cell = {
            "cell_type": kind,
            "id": f"c{i}",
            "metadata": {"tags": ["parameters"]} if i == 0 else {},
            "source": source,
        }
        if kind == "code":
            cell.update(outputs=[], execution_count=None)
        out.append(cell)
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "cells": out,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    }


# Short runbooks for the executor's own behaviour (pod_crashloop is the acceptance run).
BOOKS = {
    "hello_job": _notebook(
        ("code", "dry_run = True\nsleep = 0.0\nfail = False\n"),
        ("markdown", "## Look around\n"),
        (
            "code",
            "import time\nimport runbook_kit as rk\nrk.record.finding('all is well', severity='info')\n",
        ),
        ("markdown", "## Act\n"),
        (
            "code",
            "rk.record.action('scaled api to 4', outcome='dry-run' if dry_run else 'applied')\n"
            "print('acting', flush=True)\ntime.sleep(sleep)\n",
        ),
        ("code", "if fail:\n    raise RuntimeError('the check failed')\n"),
    ),
}


@dataclass
class JobsEnv:
    env: dict[str, str]  # for `runbook` commands: the sandbox's, the books, runbook.yaml
    store: str
    bucket: str
    home: Path

    def run(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runbook_kit.cli", *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def s3(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.env["AWS_ENDPOINT_URL"],
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def incident(self, incident: str) -> dict:
        body = self.s3().get_object(Bucket=self.bucket, Key=f"prod/{incident}/incident.json")["Body"].read()
        return json.loads(body)

    def k8s(self):
        import kubernetes

        config = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(
            config_file=self.env["KUBECONFIG"], context="runbook-sandbox", client_configuration=config
        )
        api = kubernetes.client.ApiClient(config)
        return kubernetes.client.BatchV1Api(api), kubernetes.client.CoreV1Api(api), api


def least_privilege(env: JobsEnv, runbook: str, *namespaces: str) -> None:
    """The pod's identity as `runbook rbac RUNBOOK -n NS | kubectl apply -f -` gives it."""
    import kubernetes
    import yaml

    args = [a for ns in namespaces for a in ("-n", ns)]
    done = env.run("rbac", runbook, *args, "--service-account-namespace", "default")
    assert done.returncode == 0, done.stderr
    _, _, api = env.k8s()
    for doc in yaml.safe_load_all(done.stdout):
        if doc:
            try:
                kubernetes.utils.create_from_dict(api, doc)
            except kubernetes.utils.FailToCreateError as exc:
                if any(e.status != 409 for e in exc.api_exceptions):
                    raise


def _service_account(env: JobsEnv, name: str) -> None:
    """The pod's identity for the short test runbooks (which call no API): bound to cluster-admin,
    where the test is about the executor."""
    import kubernetes

    _, core, api = env.k8s()
    rbac = kubernetes.client.RbacAuthorizationV1Api(api)
    for call, body in (
        (
            lambda b: core.create_namespaced_service_account("default", b),
            {"metadata": {"name": name, "namespace": "default"}},
        ),
        (
            rbac.create_cluster_role_binding,
            {
                "metadata": {"name": f"{name}-test"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "cluster-admin",
                },
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "default"}],
            },
        ),
    ):
        try:
            call(body)
        except kubernetes.client.ApiException as exc:
            if exc.status != 409:
                raise


def new_incident() -> str:
    return f"INC-{uuid.uuid4().hex[:8]}"


def use_jobs_env(env: JobsEnv, monkeypatch: Any) -> None:
    """This process's clients point at the sandbox, as a user's shell would (its kubeconfig, AWS endpoint)."""
    from runbook_kit import clients

    for key in ("KUBECONFIG", "RUNBOOK_KUBE_CONTEXT", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "RUNBOOK_PATH"):
        monkeypatch.setenv(key, env.env[key])
    clients.reset()
