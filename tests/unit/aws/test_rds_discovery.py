"""The RDS instance is read from a DSN whose host is an RDS endpoint, never guessed."""

from __future__ import annotations

import pytest

from runbook_kit import settings
from runbook_kit.aws.rds import instance_from_dsn, plan_max_connections, plan_reboot


@pytest.mark.parametrize(
    ("dsn", "instance"),
    [
        ("postgresql://app:pw@orders-prod.c9akciq32.eu-west-1.rds.amazonaws.com:5432/orders", "orders-prod"),
        ("host=billing-db.abcdefgh1234.us-east-1.rds.amazonaws.com port=5432 dbname=b user=x", "billing-db"),
        ("postgresql://x@Legacy-DB.abc123.cn-north-1.rds.amazonaws.com.cn/db", "legacy-db"),
        ("postgresql://app@127.0.0.1:5432/orders", ""),
        ("postgresql://app@db.internal.example.com/orders", ""),
        ("postgresql://app@proxy-1.proxy-abc.eu-west-1.rds.amazonaws.com/orders", ""),  # RDS Proxy
    ],
)
def test_instance_from_dsn(dsn, instance):
    assert instance_from_dsn(dsn) == instance


def test_the_default_dsn_and_pghost_are_read(monkeypatch):
    monkeypatch.delenv("RUNBOOK_DSN", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("PGHOST", "orders-prod.c9akciq32.eu-west-1.rds.amazonaws.com")
    settings.get.cache_clear()
    try:
        assert instance_from_dsn("") == "orders-prod"
    finally:
        settings.get.cache_clear()


def test_not_on_rds_plans_say_so_and_change_nothing():
    dsn = "postgresql://app@127.0.0.1:5432/orders"
    for plan in (plan_reboot(dsn=dsn), plan_max_connections(dsn=dsn, value=300)):
        assert plan.nothing_to_do and "self-managed PostgreSQL" in plan.reason
    assert "ALTER SYSTEM SET max_connections = 300" in plan_max_connections(dsn=dsn, value=300).command


def test_an_unset_load_balancer_is_one_readable_error():
    from runbook_kit import ParameterError
    from runbook_kit.aws import alb_metrics

    with pytest.raises(ParameterError, match="load_balancer is not set"):
        alb_metrics(load_balancer=None)  # type: ignore[arg-type]
