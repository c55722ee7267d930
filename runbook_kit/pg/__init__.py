"""PostgreSQL helpers for runbooks: who holds the connections, why, and guarded ways to relieve them.

Private modules of one idea each; this package re-exports the public helpers (`rk.pg.<name>`), and
a test keeps `__all__` equal to what is really exported.
"""

from runbook_kit.pg.mitigate import plan_cancel_long_queries, plan_terminate_idle, plan_terminate_long_queries
from runbook_kit.pg.snapshot import ConnectionSnapshot, connection_snapshot

__all__ = [
    "ConnectionSnapshot",
    "connection_snapshot",
    "plan_cancel_long_queries",
    "plan_terminate_idle",
    "plan_terminate_long_queries",
]
