"""Which sessions a mitigation may end: the selection rules, on plain data.

Killing the wrong session is worse than killing none: the runbook's own session, a superuser's
(often the DBA who is fixing the same incident), and replication (WAL senders: killing one breaks a
replica) are never candidates, whatever the filters say. The rules live here, as pure functions
over the snapshot's session frame, so they are unit-tested without a database, and the SQL that
re-checks each PID at execute time (runbook_kit.pg.mitigate) states the same rules again on the
server, where the truth is at that moment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "IDLE_STATES",
    "KIT_APPLICATION",
    "excluded_idle",
    "excluded_long_queries",
    "idle_targets",
    "long_query_targets",
    "protected_reason",
]

IDLE_STATES = ("idle", "idle in transaction", "idle in transaction (aborted)")
KIT_APPLICATION = "runbook_kit"
CLIENT = "client backend"


def protected_reason(row: Any) -> str | None:
    """Why a session must never be ended by the kit, or None when it may be."""
    if bool(row.get("is_self")):
        return "the runbook's own session"
    if row.get("application_name") == KIT_APPLICATION:
        return "a runbook_kit session"
    if bool(row.get("hidden")):
        return "hidden from this role (no permission to see it)"
    if bool(row.get("superuser")):
        return "a superuser session"
    if row.get("backend_type") != CLIENT:
        return f"not a client backend ({row.get('backend_type') or 'unknown'}, e.g. replication)"
    return None


def _filtered(sessions: pd.DataFrame, *, application: str, user: str) -> pd.DataFrame:
    if sessions.empty:
        return sessions
    out = sessions[sessions.apply(lambda r: protected_reason(r) is None, axis=1).astype(bool)]
    if application:
        out = out[out["application_name"] == application]
    if user:
        out = out[out["usename"] == user]
    return out


def idle_targets(sessions: pd.DataFrame, *, idle_minutes: float, application: str = "", user: str = "",
                 include_idle: bool = False) -> pd.DataFrame:
    """Sessions idle in transaction (and, with `include_idle`, plain idle ones) for at least
    `idle_minutes`, oldest first. Idle-in-transaction sessions hold locks and snapshots; plain idle
    ones are usually a pool's spare connections, so ending them is opt-in.
    """
    states = IDLE_STATES if include_idle else IDLE_STATES[1:]
    out = _filtered(sessions, application=application, user=user)
    out = out[out["state"].isin(states) & (out["state_age_min"] >= idle_minutes)]
    return out.sort_values("state_age_min", ascending=False)


def long_query_targets(sessions: pd.DataFrame, *, minutes: float, application: str = "",
                       user: str = "") -> pd.DataFrame:
    """Active sessions whose current query has run for at least `minutes`, longest first."""
    out = _filtered(sessions, application=application, user=user)
    out = out[(out["state"] == "active") & (out["query_age_min"] >= minutes)]
    return out.sort_values("query_age_min", ascending=False)


def _protected(sessions: pd.DataFrame, *, application: str, user: str) -> pd.DataFrame:
    """Sessions the filters select but the protection rules keep, with `excluded_reason`."""
    if sessions.empty:
        return sessions.assign(excluded_reason=[])
    reasons = sessions.apply(protected_reason, axis=1)
    out = sessions.assign(excluded_reason=reasons)[reasons.notna()]
    if application:
        out = out[out["application_name"] == application]
    if user:
        out = out[out["usename"] == user]
    return out


def excluded_idle(sessions: pd.DataFrame, *, idle_minutes: float, application: str = "", user: str = "",
                  include_idle: bool = False) -> pd.DataFrame:
    """Sessions that match `idle_targets`' criteria but are protected, with `excluded_reason`; hidden
    sessions too (their state is unknown to this role: they may be leaking)."""
    states = IDLE_STATES if include_idle else IDLE_STATES[1:]
    out = _protected(sessions, application=application, user=user)
    return out[(out["state"].isin(states) & (out["state_age_min"] >= idle_minutes))
               | out["hidden"].fillna(False).astype(bool)]


def excluded_long_queries(sessions: pd.DataFrame, *, minutes: float, application: str = "",
                          user: str = "") -> pd.DataFrame:
    """Sessions that match `long_query_targets`' criteria but are protected, with `excluded_reason`;
    hidden sessions too."""
    out = _protected(sessions, application=application, user=user)
    return out[((out["state"] == "active") & (out["query_age_min"] >= minutes))
               | out["hidden"].fillna(False).astype(bool)]
