"""Who holds the connections, in one round trip.

When connections run out, the database is the scarcest thing in the room: the runbook gets one
session and should hold it for one query. So the snapshot is a single SELECT over
pg_stat_activity, joined with pg_roles (superusers are never termination candidates) and with the
connection limits (`max_connections`, `superuser_reserved_connections`, `reserved_connections`)
as columns, and every age is computed server-side from `now()` so the client's clock and the
network delay do not skew it. Blocking PIDs are asked only for sessions waiting on a lock, because
`pg_blocking_pids()` takes the lock manager's shared state.

Counting rule: `max_connections` limits *client backends* only (autovacuum, WAL senders and other
background processes have their own pools), so `used` counts rows whose backend_type is
`client backend`. A role without `pg_read_all_stats` sees other roles' sessions with state and
timestamps hidden (background processes too: those without a database are not counted); the
snapshot still counts the hidden client sessions, marks them `hidden`, and records a finding that
the view is partial, because a diagnosis made from half the sessions would name the wrong culprit.
"""

from __future__ import annotations

import dataclasses
import html
from typing import TYPE_CHECKING, Any

from runbook_kit import record
from runbook_kit.pg._session import connected, fetch

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["SNAPSHOT_SQL", "ConnectionSnapshot", "connection_snapshot", "snapshot_from_rows"]

SNAPSHOT_SQL = """
SELECT a.pid, a.datname, a.usename, a.application_name,
       coalesce(host(a.client_addr), CASE WHEN a.client_port = -1 THEN 'local' END) AS client_addr,
       a.state, a.backend_type, a.backend_start, a.xact_start, a.state_change, a.query_start,
       a.wait_event_type, a.wait_event,
       extract(epoch FROM s.now - a.backend_start)::float8 / 60 AS conn_age_min,
       extract(epoch FROM s.now - a.xact_start)::float8 / 60 AS xact_age_min,
       extract(epoch FROM s.now - a.state_change)::float8 / 60 AS state_age_min,
       extract(epoch FROM s.now - a.query_start)::float8 / 60 AS query_age_min,
       CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) END AS blocked_by,
       left(a.query, 300) AS query,
       a.pid = pg_backend_pid() AS is_self,
       coalesce(r.rolsuper, false) AS superuser,
       a.backend_type IS NULL AND a.usesysid IS NOT NULL AND a.datid IS NOT NULL
           AND a.query = '<insufficient privilege>' AS hidden,
       s.max_connections, s.superuser_reserved, s.reserved, s.now AS server_now, s.me
FROM pg_stat_activity a
LEFT JOIN pg_roles r ON r.oid = a.usesysid
CROSS JOIN (SELECT now() AS now, current_user AS me,
                   current_setting('max_connections')::int AS max_connections,
                   current_setting('superuser_reserved_connections')::int AS superuser_reserved,
                   coalesce(current_setting('reserved_connections', true), '0')::int AS reserved) s
ORDER BY a.backend_start NULLS LAST
"""

SESSION_COLUMNS = [
    "pid", "datname", "usename", "application_name", "client_addr", "state", "backend_type",
    "backend_start", "xact_start", "state_change", "query_start", "wait_event_type", "wait_event",
    "conn_age_min", "xact_age_min", "state_age_min", "query_age_min", "blocked_by", "query",
    "is_self", "superuser", "hidden",
]
CLIENT = "client backend"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConnectionSnapshot:
    """pg_stat_activity at one instant, with the limits it is measured against."""

    sessions: pd.DataFrame  # one row per backend, SESSION_COLUMNS
    max_connections: int
    superuser_reserved: int = 3
    reserved: int = 0
    taken_at: Any = None  # server time (UTC) of the snapshot
    user: str = ""  # the role the runbook connected as

    @property
    def clients(self) -> pd.DataFrame:
        """Sessions counted against max_connections (client backends, hidden ones included)."""
        s = self.sessions
        return s[(s["backend_type"] == CLIENT) | s["hidden"]]

    @property
    def used(self) -> int:
        return len(self.clients)

    @property
    def hidden(self) -> int:
        return int(self.sessions["hidden"].sum())

    @property
    def available(self) -> int:
        """Slots ordinary (non-superuser) roles can use."""
        return self.max_connections - self.superuser_reserved - self.reserved

    @property
    def free(self) -> int:
        return self.available - self.used

    @property
    def used_pct(self) -> float:
        return round(100.0 * self.used / self.available, 1) if self.available > 0 else 100.0

    def headroom(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([{
            "used": self.used, "available_to_apps": self.available, "free": self.free,
            "used_pct": self.used_pct, "max_connections": self.max_connections,
            "superuser_reserved": self.superuser_reserved, "reserved": self.reserved,
            "hidden_sessions": self.hidden, "taken_at": self.taken_at,
        }])

    def by(self, *columns: str) -> pd.DataFrame:
        """Client sessions counted by `columns` and state (one column per state), largest first."""
        frame = self.clients.assign(state=self.clients["state"].fillna("hidden"))
        keys = list(columns) or ["state"]
        if keys == ["state"]:
            out = frame.groupby("state").size().rename("connections").to_frame()
            return out.sort_values("connections", ascending=False)
        frame = frame.assign(**{k: frame[k].fillna("").replace("", "(none)") for k in keys})
        table = frame.pivot_table(index=keys, columns="state", values="pid", aggfunc="count", fill_value=0)
        table.columns.name = None
        table.insert(0, "connections", table.sum(axis=1))
        return table.sort_values("connections", ascending=False)

    def _repr_html_(self) -> str:
        head = (f"<b>{self.used} of {self.available} connections in use ({self.used_pct}%)</b>, "
                f"{self.free} free; max_connections={self.max_connections}, "
                f"{self.superuser_reserved + self.reserved} reserved")
        if self.hidden:
            head += f"; <b>{self.hidden} sessions hidden</b> from {html.escape(self.user)}"
        return f"<p>{head}</p>" + self.by("state").T.to_html()

    def __repr__(self) -> str:
        return f"ConnectionSnapshot(used={self.used}, available={self.available}, hidden={self.hidden})"


def snapshot_from_rows(columns: list[str], rows: list[tuple[Any, ...]]) -> ConnectionSnapshot:
    """Build a snapshot from the rows of SNAPSHOT_SQL (also used by tests on plain data)."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=columns)
    if frame.empty:
        raise ValueError("pg_stat_activity returned no rows, not even the runbook's own session")
    first = frame.iloc[0]
    sessions = frame[SESSION_COLUMNS].copy()
    for col in ("backend_start", "xact_start", "state_change", "query_start"):
        sessions[col] = pd.to_datetime(sessions[col], utc=True)
    sessions["hidden"] = sessions["hidden"].fillna(False).astype(bool)
    ages = ["conn_age_min", "xact_age_min", "state_age_min", "query_age_min"]
    sessions[ages] = sessions[ages].astype(float).clip(lower=0)  # now() is the transaction start
    return ConnectionSnapshot(
        sessions=sessions, max_connections=int(first["max_connections"]),
        superuser_reserved=int(first["superuser_reserved"]), reserved=int(first["reserved"]),
        taken_at=pd.Timestamp(first["server_now"]).tz_convert("UTC"), user=str(first["me"]),
    )


def connection_snapshot(*, dsn: str = "", conn: Any | None = None) -> ConnectionSnapshot:
    """The current connections and the headroom left, in one query (display it in a notebook)."""
    with connected(dsn=dsn, conn=conn) as c:
        columns, rows = fetch(c, SNAPSHOT_SQL, op="read pg_stat_activity")
    snap = snapshot_from_rows(columns, rows)
    if snap.hidden:
        record.finding(
            f"Partial view: {snap.hidden} of {snap.used} connections belong to other roles and are hidden "
            f"from {snap.user}", severity="high",
            hidden_sessions=snap.hidden, user=snap.user,
            hint=f"GRANT pg_read_all_stats TO {snap.user}; (on RDS: a member of rds_superuser), or run "
                 "the runbook with a DSN for such a role",
        )
    return snap
