"""Slow queries from pg_stat_statements, when the database has it.

The extension is optional and often missing (it needs `shared_preload_libraries` and a restart), so
its absence is a *finding* — the record says the history was not available and how to enable it —
and never an error that stops the runbook: the live view of pg_stat_activity still answers the
question "who holds the connections".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runbook_kit import record
from runbook_kit.errors import BackendError
from runbook_kit.pg._session import connected, fetch

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["slow_queries"]

_COLUMNS = ["queryid", "calls", "total_min", "mean_ms", "max_ms", "rows", "share_pct", "query"]
_SQL = """
SELECT s.queryid, s.calls, s.{total} / 60000.0 AS total_min, s.{mean} AS mean_ms, s.{max} AS max_ms, s.rows,
       round((100.0 * s.{total} / nullif(sum(s.{total}) OVER (), 0))::numeric, 1) AS share_pct,
       left(s.query, 300) AS query
FROM {schema}.pg_stat_statements s
ORDER BY s.{total} DESC
LIMIT %(limit)s
"""
_INSTALLED = ("SELECT n.nspname, e.extversion FROM pg_extension e "
              "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'")
_HOW = ("add pg_stat_statements to shared_preload_libraries (on RDS: in the DB parameter group), restart, "
        "then CREATE EXTENSION pg_stat_statements")


def slow_queries(*, dsn: str = "", limit: int = 20, conn: Any | None = None) -> pd.DataFrame:
    """The statements with the most total execution time; empty, marked missing, with a recorded gap
    when unavailable (extension not installed, no permission)."""
    import pandas as pd

    with connected(dsn=dsn, conn=conn) as c:
        _, rows = fetch(c, _INSTALLED, op="check pg_stat_statements")
        if not rows:
            return record.gap_frame(_COLUMNS, what="slow-query history (pg_stat_statements)",
                                    why="the pg_stat_statements extension is not installed in this database",
                                    fix=_HOW)
        schema = '"' + str(rows[0][0]).replace('"', '""') + '"'
        _, version = fetch(c, "SELECT current_setting('server_version_num')::int", op="server version")
        suffix = "_exec_time" if version[0][0] >= 130000 else "_time"
        names = {"total": "total" + suffix, "mean": "mean" + suffix, "max": "max" + suffix}
        try:
            columns, data = fetch(c, _SQL.format(schema=schema, **names), {"limit": limit},
                                  op="read pg_stat_statements")
        except BackendError as err:  # e.g. installed but not preloaded, or no permission
            return record.gap_frame(_COLUMNS, what="slow-query history (pg_stat_statements)", why=str(err),
                                    fix="grant pg_read_all_stats to the runbook's role; or " + _HOW)
    frame = pd.DataFrame(data, columns=columns)
    for col in ("total_min", "mean_ms", "max_ms", "share_pct"):
        frame[col] = frame[col].astype(float).round(2)
    return frame
