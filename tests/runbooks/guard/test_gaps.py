"""Partial access degrades, it does not abort: runbooks against systems that are partly missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runbook_kit import record
from runbook_kit.runner import run_notebook

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]


def test_connection_exhaustion_on_a_plain_postgresql_without_aws_completes_with_gaps(
    fresh_sandbox, tmp_path, monkeypatch
):
    info = fresh_sandbox("connections", parts=("postgres",))
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    env = {**info.env, "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE":
           str(tmp_path / "none"), "AWS_EC2_METADATA_DISABLED": "true"}
    result = run_notebook("db_connection_exhaustion", parameters={}, incident="INC-GAP",
                          store=str(tmp_path / "store"), env=env, timeout=600)

    assert result.status in ("succeeded", "completed-with-gaps"), result.failure
    assert record.status_of(result.entries) == "completed-with-gaps"
    gaps = {e.title: e.details for e in result.entries if e.kind == "gap"}
    assert {"RDS metrics of orders-db", "RDS parameters of orders-db", "RDS instance orders-db"} <= set(gaps)
    for details in gaps.values():
        assert details["why"] and details["fix"]
    assert "aws create cloudwatch client: not configured: no AWS credentials found" in \
        gaps["RDS metrics of orders-db"]["why"]
    assert "AWS_PROFILE" in gaps["RDS metrics of orders-db"]["why"]
    assert gaps["RDS parameters of orders-db"]["fix"].endswith(
        "rds:DescribeDBInstances, rds:DescribeDBParameters")

    # the diagnosis is still reached, and the PostgreSQL plan is still correct
    findings = [e for e in result.entries if e.kind == "finding"]
    assert any("billing-worker" in e.title for e in findings), [e.title for e in findings]
    actions = {e.title.split(":")[0]: e for e in result.entries if e.kind == "action"}
    terminate = actions["terminate idle sessions"]
    assert terminate.outcome == "dry-run" and len(terminate.details["targets"]) > 0
    # the RDS plans depend on what could not be read: refused, with the reason, never guessed
    for action in ("set max_connections", "reboot"):
        assert actions[action].outcome == "refused"
        assert "depends on evidence the runbook could not read" in actions[action].details["why"]

    nb = json.loads(Path(result.notebook_path).read_text())
    summary = "".join(nb["cells"][0]["source"])
    assert "⚠️ completed with gaps" in summary and "## Gaps" in summary
    assert "**RDS metrics of orders-db**" in summary
