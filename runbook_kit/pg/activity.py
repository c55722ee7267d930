"""Views of one snapshot: who holds the connections, what runs long, what sits idle, who blocks whom.

These are pure functions of a `ConnectionSnapshot` (a fresh one is taken when none is given), so
all the views in a runbook describe the same instant and cost the database one query. They return
DataFrames with stable column names, ages in minutes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runbook_kit.pg.snapshot import ConnectionSnapshot, connection_snapshot
from runbook_kit.pg.targets import IDLE_STATES

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["blocking_chains", "idle_sessions", "long_running_queries", "top_holders"]

HOLDER_KEYS = ("application_name", "client_addr", "usename", "datname", "state")
_SESSION_VIEW = ["pid", "application_name", "usename", "client_addr", "datname", "state", "wait_event_type",
                 "wait_event", "query_age_min", "state_age_min", "xact_age_min", "conn_age_min", "blocked_by",
                 "query"]


def _snap(snapshot: ConnectionSnapshot | None, dsn: str) -> ConnectionSnapshot:
    return snapshot if snapshot is not None else connection_snapshot(dsn=dsn)


def top_holders(snapshot: ConnectionSnapshot | None = None, *, dsn: str = "", limit: int = 20,
                by: tuple[str, ...] = HOLDER_KEYS) -> pd.DataFrame:
    """Client connections grouped by application, client address, user, database and state.

    Columns: connections, share_pct of used, oldest_conn_min, oldest_state_min, oldest_xact_min.
    """
    import pandas as pd

    snap = _snap(snapshot, dsn)
    frame = snap.clients.copy()
    for key in by:
        frame[key] = frame[key].fillna("").replace("", "(none)")
    frame.loc[frame["hidden"], "state"] = "(hidden)"
    if frame.empty:
        return pd.DataFrame(columns=[*by, "connections", "share_pct", "oldest_conn_min", "oldest_state_min",
                                     "oldest_xact_min"])
    out = frame.groupby(list(by), dropna=False).agg(
        connections=("pid", "count"), oldest_conn_min=("conn_age_min", "max"),
        oldest_state_min=("state_age_min", "max"), oldest_xact_min=("xact_age_min", "max"),
    ).reset_index()
    out.insert(len(by) + 1, "share_pct", (100.0 * out["connections"] / max(snap.used, 1)).round(1))
    out = out.sort_values(["connections", "oldest_state_min"], ascending=False).head(limit)
    out = out.round({"oldest_conn_min": 1, "oldest_state_min": 1, "oldest_xact_min": 1})
    return out.reset_index(drop=True)


def long_running_queries(snapshot: ConnectionSnapshot | None = None, *, dsn: str = "",
                         minutes: float = 5) -> pd.DataFrame:
    """Client sessions active for at least `minutes` on their current query, longest first."""
    snap = _snap(snapshot, dsn)
    s = snap.clients
    out = s[(s["state"] == "active") & (s["query_age_min"] >= minutes) & ~s["is_self"]]
    out = out.sort_values("query_age_min", ascending=False)[_SESSION_VIEW]
    return out.assign(blocking=[_blocking_count(snap, pid) for pid in out["pid"]]).reset_index(drop=True)


def idle_sessions(snapshot: ConnectionSnapshot | None = None, *, dsn: str = "", minutes: float = 10,
                  states: tuple[str, ...] = IDLE_STATES) -> pd.DataFrame:
    """Idle and idle-in-transaction client sessions in that state for at least `minutes`, oldest first."""
    snap = _snap(snapshot, dsn)
    s = snap.clients
    out = s[s["state"].isin(states) & (s["state_age_min"] >= minutes)]
    return out.sort_values("state_age_min", ascending=False)[_SESSION_VIEW].reset_index(drop=True)


def _blocked_map(snap: ConnectionSnapshot) -> dict[int, list[int]]:
    """pid → the pids it waits for (pg_blocking_pids, asked only of sessions waiting on a lock)."""
    out: dict[int, list[int]] = {}
    for pid, blockers in zip(snap.sessions["pid"], snap.sessions["blocked_by"], strict=True):
        if isinstance(blockers, list | tuple) and blockers:
            out[int(pid)] = [int(b) for b in blockers]
    return out


def _blocking_count(snap: ConnectionSnapshot, pid: int) -> int:
    return sum(pid in blockers for blockers in _blocked_map(snap).values())


def blocking_chains(snapshot: ConnectionSnapshot | None = None, *, dsn: str = "") -> pd.DataFrame:
    """One row per blocking session: whom it blocks directly and transitively, and whether it is a root.

    A root blocker waits for nobody: ending it (not its victims) releases the chain.
    """
    import pandas as pd

    snap = _snap(snapshot, dsn)
    waits = _blocked_map(snap)
    blockers = sorted({b for bs in waits.values() for b in bs})
    by_pid = snap.sessions.set_index("pid")
    rows = []
    for blocker in blockers:
        direct = sorted(pid for pid, bs in waits.items() if blocker in bs)
        seen, todo = set(direct), list(direct)
        while todo:
            for pid, bs in waits.items():
                if todo[0] in bs and pid not in seen:
                    seen.add(pid)
                    todo.append(pid)
            todo.pop(0)
        info = by_pid.loc[blocker] if blocker in by_pid.index else None
        rows.append({
            "blocker_pid": blocker, "root": blocker not in waits,
            "application_name": None if info is None else info["application_name"],
            "usename": None if info is None else info["usename"],
            "state": None if info is None else info["state"],
            "xact_age_min": None if info is None else info["xact_age_min"],
            "blocks_directly": direct, "blocks_total": len(seen),
            "query": None if info is None else info["query"],
        })
    columns = ["blocker_pid", "root", "application_name", "usename", "state", "xact_age_min",
               "blocks_directly", "blocks_total", "query"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values(["root", "blocks_total"], ascending=False).reset_index(drop=True)
