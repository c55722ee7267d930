"""RDS and CloudWatch helpers against the sandbox's AWS endpoint (moto + gap fills)."""

from __future__ import annotations

import pytest

import runbook_kit as rk
from runbook_kit import clients
from runbook_kit.aws.rds import RDS_METRICS
from runbook_kit.pg.capacity import Recommendation
from runbook_sandbox import timeline as tl

pytestmark = [pytest.mark.sandbox]


def export(info, monkeypatch):
    for name, value in info.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    clients.reset()


@pytest.fixture
def aws_env(db_sandbox, monkeypatch):
    export(db_sandbox, monkeypatch)
    yield db_sandbox
    clients.reset()


@pytest.fixture
def fresh_aws_env(fresh_db, monkeypatch):
    export(fresh_db, monkeypatch)
    yield fresh_db
    clients.reset()


def test_instance_status_and_max_connections(aws_env):
    status = rk.aws.instance_status(db_instance_id=tl.DB_INSTANCE_ID).iloc[0]
    assert status["status"] == "available" and status["engine"] == "postgres"
    params = rk.aws.parameters(db_instance_id=tl.DB_INSTANCE_ID)
    assert list(params["name"]) == ["max_connections"]
    assert params.iloc[0]["value"] == str(tl.DB_MAX_CONNECTIONS)
    assert params.iloc[0]["parameter_group"] == status["parameter_group"]


def test_unknown_instance_is_not_found(aws_env):
    with pytest.raises(rk.NotFound, match="no-such-db"):
        rk.aws.instance_status(db_instance_id="no-such-db")


def test_rds_metrics_frame_shows_connections_climbing_to_the_limit(aws_env):
    frame = rk.aws.rds_metrics(db_instance_id=tl.DB_INSTANCE_ID, minutes=180)
    assert set(frame["metric"]) == set(RDS_METRICS)
    assert list(frame.columns) == ["timestamp", "metric", "stat", "value"]
    assert str(frame["timestamp"].dt.tz) == "UTC"
    conns = frame[(frame["metric"] == "DatabaseConnections") & (frame["stat"] == "Maximum")]
    assert conns["timestamp"].is_monotonic_increasing
    assert conns["value"].iloc[-10:].max() >= tl.DB_MAX_CONNECTIONS * 0.75 > conns["value"].iloc[:10].max()
    fig = rk.aws.plot_rds_metrics(frame, db_instance_id=tl.DB_INSTANCE_ID)
    assert [ax.get_title(loc="left") for ax in fig.axes] == [
        "DatabaseConnections (count)", "CPUUtilization (%)", "FreeableMemory (bytes)"]


def test_metric_frame_asks_for_percentiles(aws_env):
    frame = rk.aws.metric_frame(namespace="AWS/RDS", metrics=["DatabaseConnections"],
                                dimensions={"DBInstanceIdentifier": tl.DB_INSTANCE_ID}, stats=["p99"])
    assert set(frame["stat"]) == {"p99"} and len(frame) > 10


def test_reboot_is_not_planned_without_a_pending_change(aws_env):
    plan = rk.aws.plan_reboot(db_instance_id=tl.DB_INSTANCE_ID)
    assert plan.targets == [] and plan.nothing_to_do and "does not fix a leak" in plan.reason
    assert rk.apply(plan, dry_run=False).outcome == "skipped"
    forced = rk.aws.plan_reboot(db_instance_id=tl.DB_INSTANCE_ID, force=True)
    assert forced.targets == [tl.DB_INSTANCE_ID]
    assert forced.command == f"aws rds reboot-db-instance --db-instance-identifier {tl.DB_INSTANCE_ID}"


def test_max_connections_plan_stages_the_value_pending_reboot(fresh_aws_env):
    plan = rk.aws.plan_max_connections(db_instance_id=tl.DB_INSTANCE_ID, value=150)
    assert plan.targets == ["orders-db-params/max_connections"]
    assert "ParameterValue=150,ApplyMethod=pending-reboot" in plan.command
    assert rk.apply(plan, dry_run=True).outcome == "dry-run"
    assert rk.aws.parameters(db_instance_id=tl.DB_INSTANCE_ID).iloc[0]["value"] == "100"

    result = rk.apply(plan, dry_run=False)
    assert result.outcome == "applied"
    assert (result.before["max_connections"], result.after["max_connections"]) == ("100", "150")
    assert "ParameterValue=100" in plan.undo


def test_a_do_not_raise_recommendation_makes_the_plan_a_no_op(aws_env):
    rec = Recommendation(current=100, used=82, stale=24, legitimate=58, recommended=100,
                               raise_limit=False, why="the leak explains it")
    plan = rk.aws.plan_max_connections(db_instance_id=tl.DB_INSTANCE_ID, recommendation=rec)
    assert plan.nothing_to_do and plan.targets == [] and plan.reason == "the leak explains it"
