"""Spike detection on plain series: steps, recoveries, blips, spikes older than the window, noise."""

from __future__ import annotations

import math
import random

import pandas as pd
import pytest

from runbook_kit import record
from runbook_kit.aws.alb import COLUMNS, diagnose_spike, find_spike

T0 = pd.Timestamp("2026-11-29T01:00:00Z")


def series(values: list[float]) -> pd.Series:
    return pd.Series(values, index=[T0 + pd.Timedelta(minutes=i) for i in range(len(values))], name="p99_ms")


def noisy(level: float, n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [level * math.exp(rng.gauss(0, 0.12)) for _ in range(n)]


def test_noise_alone_is_no_spike():
    spike = find_spike(series(noisy(250, 180, 1)))
    assert not spike.detected and spike.start is None
    assert 200 < spike.baseline < 300


def test_a_step_is_found_at_its_first_minute():
    spike = find_spike(series(noisy(250, 105, 2) + noisy(3000, 75, 3)))
    assert spike.detected and spike.ongoing and not spike.started_before_window
    assert spike.start == T0 + pd.Timedelta(minutes=105)
    assert 220 < spike.baseline < 280 and 2700 < spike.level < 3300
    assert spike.peak >= spike.level and spike.magnitude == pytest.approx(spike.level / spike.baseline)


def test_a_recovered_spike_has_a_start_and_an_end():
    spike = find_spike(series(noisy(200, 60, 4) + noisy(900, 20, 5) + noisy(200, 60, 6)))
    assert spike.detected and not spike.ongoing
    assert spike.start == T0 + pd.Timedelta(minutes=60)
    assert spike.end == T0 + pd.Timedelta(minutes=80)


def test_one_slow_minute_is_not_a_spike():
    values = noisy(250, 120, 7)
    values[70] = 30000
    assert not find_spike(series(values)).detected


def test_a_window_that_starts_inside_the_spike_says_so_instead_of_inventing_a_start():
    spike = find_spike(series(noisy(2000, 30, 8) + noisy(250, 90, 9)))
    assert spike.detected and spike.started_before_window
    assert spike.end == T0 + pd.Timedelta(minutes=30)


def test_a_small_rise_is_under_the_ratio():
    assert not find_spike(series(noisy(250, 90, 10) + noisy(300, 90, 11)), min_ratio=1.5).detected


def test_too_few_points_are_not_judged():
    spike = find_spike(series([100, 5000, 5000]))
    assert not spike.detected and "too few" in spike.why


def _alb_frame(p99: list[float], errors: list[float], requests: float = 1000.0) -> pd.DataFrame:
    times = [T0 + pd.Timedelta(minutes=i) for i in range(len(p99))]
    frame = pd.DataFrame(
        {
            "timestamp": times,
            "avg_ms": [v / 3 for v in p99],
            "p99_ms": p99,
            "requests": requests,
            "target_5xx": errors,
        }
    )
    frame["error_rate_pct"] = 100 * frame["target_5xx"] / frame["requests"]
    return frame[COLUMNS]


def test_detect_spike_records_baseline_peak_start_and_5xx_rates():
    before = len(record.entries_this_session())
    frame = _alb_frame(noisy(250, 100, 12) + noisy(3000, 50, 13), [1.0] * 100 + [50.0] * 50)
    spike = diagnose_spike(frame, load_balancer="app/lb/1")
    assert spike.start == T0 + pd.Timedelta(minutes=100)
    assert spike.error_rate_pct == pytest.approx(5.0) and spike.baseline_error_rate_pct == pytest.approx(0.1)
    [entry] = record.entries_this_session()[before:]
    assert entry.severity == "high" and "since 02:40 UTC" in entry.title
    assert entry.details["started"].startswith("2026-11-29T02:40:00")
    assert (
        entry.details["peak_p99_ms"] >= entry.details["spike_p99_ms"] > 10 * entry.details["baseline_p99_ms"]
    )


def test_detect_spike_without_datapoints_says_to_check_the_name():
    before = len(record.entries_this_session())
    spike = diagnose_spike(pd.DataFrame(columns=COLUMNS), load_balancer="app/typo/1")
    assert not spike.detected
    [entry] = record.entries_this_session()[before:]
    assert entry.severity == "medium" and "check the load balancer name" in entry.title
