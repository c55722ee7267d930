"""The diagnosis rules on plain data: each cause is named with its evidence, and only when it is there."""

from __future__ import annotations

import pytest
from pg_rows import many, session, snapshot

from runbook_kit import Forbidden
from runbook_kit.pg import assess_connections as assess
from runbook_kit.pg import diagnose_connections as diagnose


def causes(found) -> list[str]:
    return [d.cause for d in found]


def test_a_leak_names_the_application_its_connections_and_oldest_age():
    rows = (many(60, app="billing-worker", state="idle in transaction", state_min=20, conn_min=21)
            + many(2, app="billing-worker", state="active", state_min=0.1)
            + many(20, app="web", state="idle", state_min=0.5, conn_min=30)
            + many(10, app="web", state="active", state_min=0.1, conn_min=30))
    found = assess(snapshot(rows), idle_minutes=10)
    assert causes(found) == ["leak"]
    leak = found[0]
    assert leak.evidence["application"] == "billing-worker"
    assert leak.evidence["connections"] == 62 and leak.evidence["stale_sessions"] == 60
    assert leak.evidence["idle_in_transaction"] == 60 and leak.evidence["oldest_idle_min"] == 20.0
    assert "billing-worker holds 62 connections" in leak.title and "oldest 20.0 min" in leak.title
    assert leak.severity == "high", "the pool is under pressure (93 of 97 used)"


def test_a_few_old_idle_sessions_are_not_a_leak():
    rows = many(3, app="cron", state="idle", state_min=60)
    rows += many(40, app="web", state="active", state_min=0.2)
    assert "leak" not in causes(assess(snapshot(rows), idle_minutes=10))


def test_old_idle_sessions_that_are_a_small_share_are_not_a_leak():
    rows = many(6, app="cron", state="idle", state_min=60) + many(80, app="web", state="active", conn_min=60)
    assert "leak" not in causes(assess(snapshot(rows), idle_minutes=10))


def test_a_leak_below_pressure_is_medium_severity():
    rows = many(10, app="billing-worker", state="idle in transaction", state_min=25)
    found = assess(snapshot(rows, max_connections=200), idle_minutes=10)
    assert causes(found) == ["leak"] and found[0].severity == "medium"


def test_a_busy_fleet_of_old_connections_means_the_limit_is_too_low():
    rows = [session(f"svc-{i % 8}", "active" if i % 3 else "idle", state_min=0.2, conn_min=120,
                    client=f"10.0.0.{i % 20}") for i in range(92)]
    found = assess(snapshot(rows), idle_minutes=10)
    assert causes(found) == ["limit_too_low"]
    assert found[0].evidence["applications"] == 9 and found[0].evidence["stale_idle"] == 0


def test_young_connections_under_pressure_are_a_surge():
    rows = (many(70, app="checkout", state="active", state_min=0.1, conn_min=1)
            + many(20, app="web", state="idle", state_min=0.5, conn_min=90))
    found = assess(snapshot(rows), idle_minutes=10, surge_minutes=5)
    assert causes(found) == ["surge"]
    assert found[0].evidence["young_connections"] == 71  # the runbook's own session is young too
    assert found[0].evidence["top_new_applications"]["checkout"] == 70


def test_a_root_blocker_is_named_with_everything_it_blocks():
    root = session("migrations", "idle in transaction", state_min=3, pid=1)
    middle = session("api", "active", state_min=2, blocked_by=[1], pid=2)
    leaves = [session("api", "active", state_min=1, blocked_by=[2], pid=p) for p in (3, 4)]
    side = session("api", "active", state_min=1, blocked_by=[1], pid=5)
    found = assess(snapshot([root, middle, *leaves, side], max_connections=200), idle_minutes=10)
    assert causes(found) == ["blocking"]
    assert found[0].evidence["blocker_pid"] == 1 and found[0].evidence["blocks_total"] == 4
    assert found[0].evidence["blocks_directly"] == [2, 5]


def test_no_pressure_and_no_cause_is_healthy():
    found = assess(snapshot(many(10, app="web", state="idle", state_min=1)), idle_minutes=10)
    assert causes(found) == ["healthy"] and "11 of 97 used" in found[0].title


def test_a_partial_view_cannot_be_diagnosed():
    rows = many(50, app="billing-worker", hidden=True) + many(5, app="web", state="idle", state_min=1)
    snap = snapshot(rows)
    assert causes(assess(snap)) == ["partial"]
    with pytest.raises(Forbidden, match="50 sessions are hidden from oncall"):
        diagnose(snap)


def test_diagnose_records_each_cause_as_a_finding(capsys):
    rows = many(60, app="billing-worker", state="idle in transaction", state_min=20)
    frame = diagnose(snapshot(rows), idle_minutes=10)
    assert list(frame["cause"]) == ["leak"]
    assert "[finding:medium] Connection leak: billing-worker holds 60 connections" in capsys.readouterr().out


def test_a_leak_beside_freshly_opened_idle_pools_is_neither_a_surge_nor_a_low_limit():
    """The sandbox's picture: 24 leaked sessions, healthy pools that connected a minute ago."""
    rows = (many(24, app="billing-worker", state="idle in transaction", state_min=20)
            + many(28, app="checkout-api", state="idle", state_min=0.1, conn_min=0.1)
            + many(20, app="orders-api", state="idle", state_min=0.1, conn_min=0.1)
            + many(9, app="reporting", state="idle", state_min=0.1, conn_min=0.1))
    found = assess(snapshot(rows), idle_minutes=10)
    assert causes(found) == ["leak"]
    assert found[0].evidence["connections"] == 24 and found[0].severity == "high"


def test_stale_sessions_spread_over_many_applications_are_named_as_such():
    rows = [session(f"svc-{i % 10}", "idle", state_min=30, conn_min=60) for i in range(40)]
    rows += many(45, app="web", state="active", state_min=0.1, conn_min=60)
    found = assess(snapshot(rows), idle_minutes=10)
    assert causes(found) == ["stale_sessions"]
    assert "40 sessions idle ≥ 10 min across 10 applications" in found[0].title


def test_top_holders_groups_by_application_client_user_and_state():
    from runbook_kit.pg import top_holders

    rows = (many(6, app="billing-worker", state="idle in transaction", state_min=20, client="10.0.0.7")
            + many(3, app="web", state="idle", state_min=2, client="10.0.0.8")
            + many(2, app="", state="active", state_min=1, client=None, hidden=True))
    holders = top_holders(snapshot(rows))
    first = holders.iloc[0]
    assert (first["application_name"], first["client_addr"], first["state"]) == (
        "billing-worker", "10.0.0.7", "idle in transaction")
    assert first["connections"] == 6 and first["share_pct"] == 50.0 and first["oldest_state_min"] == 20.0
    hidden = holders[holders["state"] == "(hidden)"]
    assert hidden["connections"].tolist() == [2] and hidden["application_name"].tolist() == ["(none)"]
    assert holders["connections"].sum() == 12


def test_a_pool_of_old_plain_idle_sessions_is_an_idle_pool_not_a_leak():
    """The sandbox 15 minutes later: the healthy pools' idle sessions are old too."""
    rows = (many(24, app="billing-worker", state="idle in transaction", state_min=35)
            + many(28, app="checkout-api", state="idle", state_min=15, conn_min=15)
            + many(9, app="reporting", state="idle", state_min=15, conn_min=15))
    found = assess(snapshot(rows, max_connections=100), idle_minutes=10)
    assert causes(found) == ["leak", "idle_pool"]
    assert found[0].evidence["application"] == "billing-worker"
    pool = found[1]
    assert pool.evidence["application"] == "checkout-api" and pool.severity == "medium"
    assert pool.title.startswith("Idle pool: checkout-api keeps 28 of its 28 connections idle for ≥ 10 min")
