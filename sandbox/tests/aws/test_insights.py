"""The Logs Insights engine on plain records: each command's semantics, and its refusals."""

from __future__ import annotations

import pytest

from runbook_sandbox.aws.insights import QueryError, format_timestamp, percentile, run_query

MINUTE = 60_000
LINES = [
    "INFO GET /api/cart 200 12ms",
    "ERROR upstream timeout calling payments after 3000ms",
    "INFO POST /api/checkout 200 40ms",
    "WARN slow query 900ms",
    "ERROR circuit breaker open",
    '{"level": "ERROR", "latency": 55, "path": "/api/checkout"}',
    "INFO GET /api/cart 200 20ms",
]
RECORDS = [
    {"@timestamp": i * MINUTE, "@message": m, "@ptr": f"p{i}", "@logStream": f"pod-{i % 2}"}
    for i, m in enumerate(LINES)
]


def rows(query: str) -> list[dict[str, str]]:
    results, _ = run_query(query, RECORDS)
    return [{cell["field"]: cell["value"] for cell in line} for line in results]


def test_acceptance_query_returns_only_error_lines_newest_first() -> None:
    results, stats = run_query(
        "fields @timestamp, @message | filter @message like /ERROR/ | sort @timestamp desc | limit 100",
        RECORDS,
    )
    messages = [{c["field"]: c["value"] for c in line}["@message"] for line in results]
    assert messages == [LINES[5], LINES[4], LINES[1]]
    assert stats == {
        "recordsMatched": 3.0,
        "recordsScanned": 7.0,
        "bytesScanned": float(sum(len(m.encode()) for m in LINES)),
    }
    assert [c["field"] for c in results[0]] == ["@timestamp", "@message", "@ptr"]
    assert results[0][0]["value"] == format_timestamp(5 * MINUTE) == "1970-01-01 00:05:00.000"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('filter @message like "timeout"', [1]),
        ("filter @message not like /INFO|WARN/", [1, 4, 5]),
        ("filter @message =~ /error/i and @logStream = 'pod-0'", [4]),
        ("filter @logStream in ['pod-1'] or @message like /WARN/", [1, 3, 5]),
        ("filter not (@message like /INFO/ or @message like /ERROR/)", [3]),
        ("filter latency >= 55 and path != '/x'", [5]),
        ("filter latency > 55", []),
        ("filter strlen(@message) < 28", [0, 3, 4, 6]),
    ],
)
def test_filters(query: str, expected: list[int]) -> None:
    assert [r["@ptr"] for r in rows(query + " | fields @ptr")] == [f"p{i}" for i in expected]


def test_parse_glob_then_numeric_stats_by_field() -> None:
    out = rows(
        'parse @message "INFO * * 200 *ms" as method, path, ms | filter ispresent(ms) '
        "| stats count(*) as n, avg(ms) as avg_ms, max(ms), pct(ms, 50) by path | sort n desc"
    )
    assert out == [
        {"path": "/api/cart", "n": "2", "avg_ms": "16", "max(ms)": "20", "pct(ms, 50)": "12"},
        {"path": "/api/checkout", "n": "1", "avg_ms": "40", "max(ms)": "40", "pct(ms, 50)": "40"},
    ]


def test_parse_regex_named_groups_and_display() -> None:
    out = rows(r"parse @message /after (?<timeout_ms>\d+)ms/ | filter timeout_ms > 1000 | display timeout_ms")
    assert out == [{"timeout_ms": "3000", "@ptr": "p1"}]


def test_stats_by_time_bin_are_timestamps_in_order() -> None:
    out = rows("stats count(*) as n, count(latency) as with_latency by bin(5m)")
    assert out == [
        {"bin(5m)": "1970-01-01 00:00:00.000", "n": "5", "with_latency": "0"},
        {"bin(5m)": "1970-01-01 00:05:00.000", "n": "2", "with_latency": "1"},
    ]
    _, stats = run_query("filter @message like /ERROR/ | stats count(*)", RECORDS)
    assert stats["recordsMatched"] == 3.0  # matched counts records before aggregation


def test_sort_limit_and_default_fields() -> None:
    out = rows("sort @timestamp desc | limit 2")
    assert [r["@message"] for r in out] == [LINES[6], LINES[5]]
    assert set(out[0]) == {"@timestamp", "@message", "@ptr"}


def test_percentile_is_nearest_rank() -> None:
    values = sorted(float(v) for v in range(1, 101))
    assert percentile(values, 99) == 99.0
    assert percentile(values, 50) == 50.0
    assert percentile([1.0, 2.0, 3.0, 100.0], 99) == 100.0
    assert percentile([7.0], 1) == 7.0


@pytest.mark.parametrize(
    "query",
    [
        "frobnicate @message",
        "filter @message like",
        "stats median(x)",
        'parse @message "a * b *" as only_one',
        "limit many",
        "stats count(*) by bin(five)",
    ],
)
def test_malformed_queries_are_refused(query: str) -> None:
    with pytest.raises(QueryError):
        run_query(query, RECORDS)
