"""Is it the database? Judged at the spike onset, on plain RDS metric frames."""

from __future__ import annotations

import pandas as pd

from runbook_kit.investigate import assess_database

ONSET = pd.Timestamp("2026-11-29T03:21:00Z")


def rds(cpu, connections, minutes: int = 150) -> pd.DataFrame:
    """cpu/connections: functions of the minute offset from the onset (negative before)."""
    rows = []
    for i in range(-90, minutes - 90):
        t = ONSET + pd.Timedelta(minutes=i)
        for metric, fn in (("CPUUtilization", cpu), ("DatabaseConnections", connections)):
            rows += [(t, metric, "Average", float(fn(i))), (t, metric, "Maximum", float(fn(i)) * 1.2)]
    return pd.DataFrame(rows, columns=["timestamp", "metric", "stat", "value"])


def test_a_steady_database_is_ruled_out():
    judged = assess_database(rds(lambda i: 20, lambda i: 40), onset=ONSET).set_index("metric")
    assert judged["normal"].all()
    assert (
        judged.loc["CPUUtilization", "baseline"] == 20 and judged.loc["DatabaseConnections", "at_onset"] == 40
    )


def test_cpu_that_jumps_with_the_latency_is_not_normal():
    frame = rds(lambda i: 20 if i < 0 else 95, lambda i: 40)
    judged = assess_database(frame, onset=ONSET).set_index("metric")
    assert not judged.loc["CPUUtilization", "normal"] and judged.loc["DatabaseConnections", "normal"]


def test_connections_that_climb_only_later_do_not_rule_the_database_in():
    judged = assess_database(rds(lambda i: 20, lambda i: 40 if i < 15 else 40 + 2 * (i - 15)), onset=ONSET)
    conns = judged.set_index("metric").loc["DatabaseConnections"]
    assert conns["normal"] and conns["later"] > conns["baseline"] * 2


def test_connections_that_double_at_the_onset_are_not_normal():
    frame = rds(lambda i: 20, lambda i: 40 if i < 0 else 85)
    judged = assess_database(frame, onset=ONSET).set_index("metric")
    assert not judged.loc["DatabaseConnections", "normal"]


def test_no_datapoints_leave_the_verdict_open():
    judged = assess_database(rds(lambda i: 20, lambda i: 40).iloc[:0], onset=ONSET)
    assert not judged["normal"].any() and judged["baseline"].isna().all()
