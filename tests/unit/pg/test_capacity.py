"""The max_connections recommendation and the snapshot's headroom arithmetic, on plain data."""

from __future__ import annotations

from pg_rows import many, snapshot

from runbook_kit.pg import assess_max_connections


def test_headroom_counts_client_backends_against_the_usable_limit():
    snap = snapshot(many(40, state="active") + many(2, backend_type="walsender", state="active"),
                    max_connections=100, superuser_reserved=3)
    assert (snap.used, snap.available, snap.free, snap.used_pct) == (41, 97, 56, 42.3)
    assert snap.headroom().iloc[0]["used"] == 41


def test_do_not_raise_when_stale_sessions_explain_the_pressure():
    rows = many(70, app="billing-worker", state="idle in transaction", state_min=20)
    rows += many(20, state="active")
    rec = assess_max_connections(snapshot(rows), idle_minutes=10)
    assert not rec.raise_limit and rec.recommended == rec.current == 100
    assert (rec.used, rec.stale, rec.legitimate) == (91, 70, 21)
    assert "70 of 91 connections have been idle" in rec.why


def test_raise_for_legitimate_demand_to_a_round_value():
    rec = assess_max_connections(snapshot(many(90, state="active", conn_min=60)), target_used_pct=70)
    # 91 legitimate / 0.7 = 130 (+3 reserved) = 133 -> 140
    assert rec.raise_limit and rec.recommended == 140 and rec.legitimate == 91


def test_no_raise_when_the_demand_fits():
    rec = assess_max_connections(snapshot(many(30, state="active")))
    assert not rec.raise_limit and "usable slots" in rec.why


def test_instance_memory_caps_the_recommendation():
    rec = assess_max_connections(snapshot(many(90, state="active")), instance_memory_bytes=1_000_000_000)
    assert rec.memory_cap == 104 and rec.recommended == 104 and "instance memory" in rec.why
