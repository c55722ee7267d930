"""Slow queries from pg_stat_statements: a table when the extension is there, a finding when not."""

from __future__ import annotations

import pytest

from runbook_kit import record
from runbook_kit.pg import slow_queries

pytestmark = [pytest.mark.sandbox]


def test_slow_queries_are_ranked_by_total_time(db_sandbox):
    frame = slow_queries(dsn=db_sandbox.pg_dsn, limit=5)
    assert 0 < len(frame) <= 5
    assert list(frame.columns) == ["queryid", "calls", "total_min", "mean_ms", "max_ms", "rows", "share_pct",
                                   "query"]
    assert frame["total_min"].is_monotonic_decreasing and frame["share_pct"].max() <= 100


def test_without_the_extension_it_is_a_gap_not_an_error(db_sandbox):
    other_db = db_sandbox.pg_dsn.rsplit("/", 1)[0] + "/postgres"  # the extension lives in `orders` only
    before = len(record.entries_this_session())
    frame = slow_queries(dsn=other_db)
    assert frame.empty
    new = record.entries_this_session()[before:]
    assert [(e.kind, e.title) for e in new] == [("gap", "slow-query history (pg_stat_statements)")]
    assert "shared_preload_libraries" in new[0].details["fix"] and record.missing(frame)
