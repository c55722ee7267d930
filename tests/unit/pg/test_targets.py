"""The terminate-selection rules, on plain data: what may be ended, and what never is."""

from __future__ import annotations

from pg_rows import many, session, snapshot

from runbook_kit.pg.targets import idle_targets, long_query_targets, protected_reason


def pids(frame) -> set[int]:
    return {int(p) for p in frame["pid"]}


def test_idle_selection_takes_only_sessions_idle_longer_than_the_threshold():
    old_idle = session("billing-worker", "idle", state_min=12)
    old_xact = session("billing-worker", "idle in transaction", state_min=20)
    old_aborted = session("billing-worker", "idle in transaction (aborted)", state_min=11)
    fresh = session("billing-worker", "idle in transaction", state_min=9.9)
    active = session("billing-worker", "active", state_min=30)
    snap = snapshot([old_idle, old_xact, old_aborted, fresh, active])
    chosen = idle_targets(snap.sessions, idle_minutes=10, include_idle=True)
    assert pids(chosen) == {old_idle["pid"], old_xact["pid"], old_aborted["pid"]}
    assert chosen["pid"].iloc[0] == old_xact["pid"], "oldest first"


def test_filters_by_application_and_user():
    mine = session("billing-worker", "idle", state_min=15, user="billing")
    other_app = session("web", "idle", state_min=15, user="billing")
    other_user = session("billing-worker", "idle", state_min=15, user="reporting")
    sessions = snapshot([mine, other_app, other_user]).sessions
    assert pids(idle_targets(sessions, idle_minutes=10, application="billing-worker", include_idle=True)) == {
        mine["pid"], other_user["pid"]}
    assert pids(idle_targets(sessions, idle_minutes=10, application="billing-worker", user="billing",
                             include_idle=True)) == {mine["pid"]}
    assert pids(idle_targets(sessions, idle_minutes=10, user="reporting", include_idle=True)) == {
        other_user["pid"]}


def test_by_default_only_sessions_inside_a_transaction_are_selected():
    idle = session("a", "idle", state_min=30)
    xact = session("a", "idle in transaction", state_min=30)
    sessions = snapshot([idle, xact]).sessions
    assert pids(idle_targets(sessions, idle_minutes=10)) == {xact["pid"]}
    assert pids(idle_targets(sessions, idle_minutes=10, include_idle=True)) == {idle["pid"], xact["pid"]}


def test_protected_sessions_are_never_selected_whatever_the_filters():
    rows = [
        session("runbook_kit", "idle", state_min=60, is_self=True),
        session("runbook_kit", "idle", state_min=60),  # another runbook run
        session("billing-worker", "idle", state_min=60, superuser=True),
        session("billing-worker", "idle", state_min=60, backend_type="walsender"),
        session("billing-worker", "idle", state_min=60, hidden=True),
    ]
    snap = snapshot(rows, with_self=False)
    assert idle_targets(snap.sessions, idle_minutes=0, include_idle=True).empty
    assert idle_targets(snap.sessions, idle_minutes=0, application="runbook_kit", include_idle=True).empty
    reasons = [protected_reason(r) for _, r in snap.sessions.iterrows()]
    assert reasons == ["the runbook's own session", "a runbook_kit session", "a superuser session",
                       "not a client backend (walsender, e.g. replication)",
                       "hidden from this role (no permission to see it)"]


def test_an_ordinary_session_is_not_protected():
    snap = snapshot([session("web", "idle", state_min=60)], with_self=False)
    assert protected_reason(snap.sessions.iloc[0]) is None


def test_long_query_selection_takes_active_queries_older_than_the_threshold():
    slow = session("report", "active", state_min=7, query_min=7)
    quick = session("report", "active", state_min=1, query_min=1)
    idle = session("report", "idle", state_min=50, query_min=50)
    superuser = session("dba", "active", state_min=60, query_min=60, superuser=True)
    snap = snapshot([slow, quick, idle, superuser, *many(3, app="web", state="active", state_min=0.1)])
    assert pids(long_query_targets(snap.sessions, minutes=5)) == {slow["pid"]}
    assert long_query_targets(snap.sessions, minutes=5, application="web").empty
