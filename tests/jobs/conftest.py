"""The `jobs_env` fixture: a bucket on the sandbox's S3, short runbooks, runbook.yaml's jobs: section and
the pods' ServiceAccounts (tests/jobs/jobs_harness.py has the helpers)."""

from __future__ import annotations

import json
import os
import uuid

import pytest
from jobs_harness import BOOKS, JobsEnv, _service_account, least_privilege


@pytest.fixture
def jobs_env(sandbox, tmp_path) -> JobsEnv:
    books = tmp_path / "books"
    books.mkdir()
    for name, nb in BOOKS.items():
        (books / f"{name}.ipynb").write_text(json.dumps(nb))
    bucket = f"records-{uuid.uuid4().hex[:12]}"
    (tmp_path / "runbook.yaml").write_text(
        json.dumps(
            {
                "jobs": {
                    "image": "runbook-kit:test",
                    "namespace": "default",
                    "env": {"RUNBOOK_PATH": str(books)},
                }
            }
        )
    )
    env = {
        **os.environ,
        **sandbox.env,
        "RUNBOOK_PATH": str(books),
        "RUNBOOK_CONFIG": str(tmp_path / "runbook.yaml"),
        "HOME": str(tmp_path),
        "RUNBOOK_FALLBACK_STORE": str(tmp_path / "unsent"),
    }
    env.pop("AWS_PROFILE", None)
    jobs = JobsEnv(env=env, store=f"s3://{bucket}/prod", bucket=bucket, home=tmp_path)
    jobs.s3().create_bucket(Bucket=bucket)
    _service_account(jobs, "runbook-hello-job")
    least_privilege(jobs, "pod_crashloop", "payments")  # the Job runs under what `runbook rbac` prints
    return jobs
