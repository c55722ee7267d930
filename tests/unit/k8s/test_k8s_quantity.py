"""Quantities and the memory-raise arithmetic, on plain numbers."""

from __future__ import annotations

import pytest

from runbook_kit.k8s.quantity import GI, MI, assess_memory_limit, cpu_cores, format_memory, memory_bytes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("256Mi", 256 * MI),
        ("1Gi", GI),
        ("512M", 512e6),
        ("1024Ki", MI),
        ("268435456", 268435456.0),
        ("1.5Gi", 1.5 * GI),
        ("", None),
        (None, None),
    ],
)
def test_memory_bytes(text, expected):
    assert memory_bytes(text) == expected


def test_cpu_cores_and_bad_quantity():
    assert cpu_cores("250m") == pytest.approx(0.25)
    assert cpu_cores("2") == 2.0
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        memory_bytes("lots")


@pytest.mark.parametrize(
    ("n", "text"),
    [(512 * MI, "512Mi"), (2 * GI, "2Gi"), (1536 * MI, "1536Mi"), (300.2 * MI, "301Mi"), (None, "")],
)
def test_format_memory(n, text):
    assert format_memory(n) == text


def test_crashloop_scenario_numbers_take_the_previous_limit():
    # OOM-killed at 256Mi after peaking at 254Mi; the previous revision ran with 512Mi
    r = assess_memory_limit(current=256 * MI, observed_peak=254 * MI, previous_limit=512 * MI)
    assert r.new == 512 * MI and r.new_quantity == "512Mi"
    assert "previous revision's limit 512Mi" in r.explanation and "× 1.25" in r.explanation


def test_peak_with_headroom_wins_and_rounds_up_to_64mi():
    r = assess_memory_limit(current=512 * MI, observed_peak=600 * MI, previous_limit=512 * MI)
    assert r.new == 768 * MI  # 600 × 1.25 = 750 → next 64Mi step


def test_above_one_gib_rounds_to_256mi_steps():
    r = assess_memory_limit(current=GI, observed_peak=1000 * MI, previous_limit=None)
    assert r.new == 1280 * MI  # 1250Mi → 1280Mi


def test_never_recommends_at_or_below_the_current_limit():
    # peak known only up to the limit it died at, no history: current × 1.25
    r = assess_memory_limit(current=256 * MI, observed_peak=200 * MI, previous_limit=128 * MI)
    assert r.new == 320 * MI and r.new > r.current
    assert "current limit 256Mi × 1.25" in r.explanation


def test_needs_some_evidence():
    with pytest.raises(ValueError):
        assess_memory_limit(current=None, observed_peak=None, previous_limit=None)
