"""Relieve connection pressure by ending sessions, as guarded plans that name every PID.

PostgreSQL has no dry run for `pg_terminate_backend`, so a plan is the dry run: it lists the exact
PIDs (with application, user, state and age) and the SQL, and in dry-run mode the guard sends
nothing. Between the plan and `rk.apply(plan, dry_run=False)` minutes may pass: a session may have
woken up, and a PID may have been recycled by a new connection of another application. So execute
does not trust the plan: one statement re-checks every PID on the server — same backend_start
(else the PID was recycled), still matching state/age/application/user, still not protected — and
signals only those that still match. Each PID's outcome is recorded as an event.
"""

from __future__ import annotations

import time
from typing import Any

from runbook_kit import record
from runbook_kit.guard import Plan
from runbook_kit.pg._session import connected, fetch
from runbook_kit.pg.snapshot import ConnectionSnapshot, connection_snapshot
from runbook_kit.pg.targets import (
    IDLE_STATES,
    KIT_APPLICATION,
    excluded_idle,
    excluded_long_queries,
    idle_targets,
    long_query_targets,
)

__all__ = ["plan_cancel_long_queries", "plan_terminate_idle", "plan_terminate_long_queries"]

_PROTECTED = (f"a.pid = pg_backend_pid() OR a.application_name = '{KIT_APPLICATION}' "
              "OR coalesce(r.rolsuper, false) OR a.backend_type IS DISTINCT FROM 'client backend'")

_RECHECK = """
SELECT t.pid,
       CASE WHEN a.pid IS NULL THEN 'gone'
            WHEN a.backend_start IS DISTINCT FROM t.backend_start THEN 'pid recycled: not touched'
            WHEN {protected} THEN 'protected: not touched'
            WHEN NOT ({criteria}) THEN 'changed since the plan: not touched'
            WHEN {signal} THEN '{done}'
            ELSE 'signal not delivered in time'
       END AS outcome
FROM unnest(%(pids)s::int[], %(starts)s::timestamptz[], %(queries)s::timestamptz[])
     AS t(pid, backend_start, query_start)
LEFT JOIN pg_stat_activity a ON a.pid = t.pid
LEFT JOIN pg_roles r ON r.oid = a.usesysid
"""

_FILTERS = "(%(app)s = '' OR a.application_name = %(app)s) AND (%(user)s = '' OR a.usename = %(user)s)"
_IDLE_CRITERIA = ("a.state = ANY(%(states)s) AND a.state_change <= now() - %(minutes)s * interval '1 minute' "
                  "AND " + _FILTERS)
_LONG_CRITERIA = ("a.state = 'active' AND a.query_start = t.query_start "
                  "AND a.query_start <= now() - %(minutes)s * interval '1 minute' AND " + _FILTERS)

_OBSERVE = """
SELECT array_agg(pid ORDER BY pid) FILTER (WHERE pid = ANY(%(pids)s)) AS targets_present,
       count(*) FILTER (WHERE backend_type = 'client backend') AS used,
       current_setting('max_connections')::int AS max_connections
FROM pg_stat_activity
"""

_EXIT_WAIT_S = 5.0
_SHOWN = ["pid", "application_name", "usename", "client_addr", "datname", "state", "state_age_min",
          "query_age_min", "conn_age_min", "query"]


def _sql_list(values: Any) -> str:
    return ", ".join("'" + str(v).replace("'", "''") + "'" for v in values)


def _where(*, minutes: float, application: str, user: str, idle: bool, states: tuple[str, ...]) -> str:
    parts = ([f"state IN ({_sql_list(states)})", f"state_change < now() - interval '{minutes:g} minutes'"]
             if idle else ["state = 'active'", f"query_start < now() - interval '{minutes:g} minutes'"])
    if application:
        parts.append(f"application_name = {_sql_list([application])}")
    if user:
        parts.append(f"usename = {_sql_list([user])}")
    return " AND ".join(parts)


def _signal_plan(
    *, kind: str, selected: Any, snapshot: ConnectionSnapshot, dsn: str, minutes: float, application: str,
    user: str, max_targets: int, states: tuple[str, ...] = IDLE_STATES, reason: str = "",
    excluded: Any = None,
) -> Plan:
    idle = kind == "terminate idle sessions"
    func = "pg_cancel_backend" if kind == "cancel long-running queries" else "pg_terminate_backend"
    pids = [int(p) for p in selected["pid"]]
    starts = [t.to_pydatetime() for t in selected["backend_start"]]
    queries = [None if t is None or t != t else t.to_pydatetime() for t in selected["query_start"]]
    where = _where(minutes=minutes, application=application, user=user, idle=idle, states=states)
    pid_list = ", ".join(map(str, pids)) or "NULL"
    command = f"SELECT pid, {func}(pid) FROM pg_stat_activity WHERE pid IN ({pid_list}) AND {where};"
    scope = "".join([f" of application {application}" if application else "",
                     f" of user {user}" if user else ""])
    what = f"idle ≥ {minutes:g} min" if idle else f"running ≥ {minutes:g} min"
    target = f"{len(pids)} sessions {what}{scope} on {snapshot.user}@{_database(snapshot)}"
    params = {"pids": pids, "starts": starts, "queries": queries, "minutes": float(minutes),
              "app": application, "user": user, "states": list(states)}

    def execute(dry_run: bool) -> Any:
        if dry_run:  # no server-side dry run exists; the guard never asks for one
            return None
        with connected(dsn=dsn) as conn:
            label = "cancelled" if "cancel" in func else "terminated"
            sql = _RECHECK.format(protected=_PROTECTED, criteria=_IDLE_CRITERIA if idle else _LONG_CRITERIA,
                                  signal=f"{func}(a.pid)", done=label)
            _, rows = fetch(conn, sql, params, op=kind)
            if func == "pg_terminate_backend":  # signalled backends exit within milliseconds: wait, bounded
                ended = [int(pid) for pid, outcome in rows if outcome == "terminated"]
                deadline = time.monotonic() + _EXIT_WAIT_S
                while ended and time.monotonic() < deadline:
                    _, left = fetch(conn, "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%(p)s)",
                                    {"p": ended}, op="wait for sessions to exit")
                    if not left[0][0]:
                        break
                    time.sleep(0.1)
        outcomes = {int(pid): outcome for pid, outcome in rows}
        done = [pid for pid, outcome in outcomes.items() if outcome in ("terminated", "cancelled")]
        record.event(f"{func}: {len(done)} of {len(pids)} planned sessions signalled",
                     signalled=sorted(done),
                     not_touched={str(p): o for p, o in outcomes.items() if p not in done})
        return outcomes

    def observe() -> dict[str, Any]:
        with connected(dsn=dsn) as conn:
            _, rows = fetch(conn, _OBSERVE, {"pids": pids}, op="observe sessions")
        present, used, max_conn = rows[0]
        return {"targets_present": list(present or []), "used": int(used), "max_connections": int(max_conn)}

    left_out, by_hand = _exclusions(excluded, func=func, where=where)
    if not pids and left_out:
        reason = reason or f"every matching session is protected ({len(left_out)} left out)"
    shown = selected[[c for c in _SHOWN if c in selected]].reset_index(drop=True)
    changes: dict[str, Any] = {"function": func, "minutes": minutes, "application": application or "(any)",
                               "user": user or "(any)", "sessions": shown}
    undo = ("Nothing to undo: an ended session's open transaction is rolled back and its client reconnects "
            "through its pool; " + ("a cancelled query can be retried by its client."
                                    if "cancel" in func else "expect that client to log connection errors."))
    return Plan(action=kind, target=target, backend="postgres", command=command, execute=execute,
                observe=observe, changes=changes, targets=[str(p) for p in pids], max_targets=max_targets,
                reason=reason, undo=undo, nothing_to_do=not pids, excluded=left_out,
                excluded_command=by_hand)


def _exclusions(excluded: Any, *, func: str, where: str) -> tuple[list[tuple[str, str]], str]:
    """([(session, why left out)], the SQL a DBA could run for those, deliberately, by hand)."""
    if excluded is None or excluded.empty:
        return [], ""
    pairs = [(f"pid {int(r.pid)} ({r.application_name or 'no application'}, {r.usename or '?'})",
              str(r.excluded_reason)) for r in excluded.itertuples()]
    manual = [int(r.pid) for r in excluded.itertuples() if not bool(getattr(r, "is_self", False))]
    if not manual:
        return pairs, ""
    sql = (f"-- left out on purpose; only if you decide they must end too, as a role allowed to:\n"
           f"SELECT pid, {func}(pid) FROM pg_stat_activity WHERE pid IN ({', '.join(map(str, manual))}) "
           f"AND {where};")
    return pairs, sql


def _database(snapshot: ConnectionSnapshot) -> str:
    own = snapshot.sessions[snapshot.sessions["is_self"]]
    return str(own["datname"].iloc[0]) if len(own) else "?"


def plan_terminate_idle(
    *, dsn: str = "", idle_minutes: float = 10, application: str = "", user: str = "",
    include_idle: bool = False, max_targets: int = 50, snapshot: ConnectionSnapshot | None = None,
) -> Plan:
    """Plan `pg_terminate_backend` for sessions idle in transaction (with `include_idle`, plain idle
    ones too) for at least `idle_minutes`.

    Optionally only those of one `application` / `user`. Never the runbook's own or any runbook_kit
    session, superusers, or replication. Refused by the guard beyond `max_targets` PIDs.
    """
    snapshot = snapshot or connection_snapshot(dsn=dsn)
    selected = idle_targets(snapshot.sessions, idle_minutes=idle_minutes, application=application,
                            user=user, include_idle=include_idle)
    states = IDLE_STATES if include_idle else IDLE_STATES[1:]
    reason = (f"{len(selected)} sessions have been idle for ≥ {idle_minutes:g} min while "
              f"{snapshot.used} of {snapshot.available} connections are used") if len(selected) else ""
    excluded = excluded_idle(snapshot.sessions, idle_minutes=idle_minutes, application=application,
                             user=user, include_idle=include_idle)
    return _signal_plan(kind="terminate idle sessions", selected=selected, snapshot=snapshot, dsn=dsn,
                        minutes=idle_minutes, application=application, user=user, max_targets=max_targets,
                        states=states, reason=reason, excluded=excluded)


def plan_cancel_long_queries(
    *, dsn: str = "", minutes: float = 5, application: str = "", user: str = "", max_targets: int = 20,
    snapshot: ConnectionSnapshot | None = None, terminate: bool = False,
) -> Plan:
    """Plan `pg_cancel_backend` (or, with terminate=True, `pg_terminate_backend`) for long queries.

    Cancelling stops the query and keeps the session; terminating also closes the connection
    (needed when the client ignores cancellation or holds locks in an open transaction).
    """
    snapshot = snapshot or connection_snapshot(dsn=dsn)
    selected = long_query_targets(snapshot.sessions, minutes=minutes, application=application, user=user)
    reason = f"{len(selected)} queries have been running for ≥ {minutes:g} min" if len(selected) else ""
    kind = "terminate long-running queries" if terminate else "cancel long-running queries"
    excluded = excluded_long_queries(snapshot.sessions, minutes=minutes, application=application, user=user)
    return _signal_plan(kind=kind, selected=selected, snapshot=snapshot, dsn=dsn, minutes=minutes,
                        application=application, user=user, max_targets=max_targets, reason=reason,
                        excluded=excluded)


def plan_terminate_long_queries(
    *, dsn: str = "", minutes: float = 5, application: str = "", user: str = "", max_targets: int = 20,
    snapshot: ConnectionSnapshot | None = None,
) -> Plan:
    """Plan `pg_terminate_backend` for sessions whose query has run for ≥ `minutes` (see cancel)."""
    return plan_cancel_long_queries(dsn=dsn, minutes=minutes, application=application, user=user,
                                    max_targets=max_targets, snapshot=snapshot, terminate=True)
