"""PostgreSQL helpers for runbooks: who holds the connections, why, and guarded ways to relieve them.

Modules of one idea each; this package re-exports the public helpers (`rk.pg.<name>`), and a test
keeps `__all__` equal to what is really exported. psycopg is reached only through
`runbook_kit.clients.pg_connect`.
"""

from runbook_kit.pg.actions import ACTIONS, plan_mitigation
from runbook_kit.pg.activity import blocking_chains, idle_sessions, long_running_queries, top_holders
from runbook_kit.pg.capacity import Recommendation, recommend_max_connections, verify_headroom
from runbook_kit.pg.causes import Diagnosis, assess, diagnose
from runbook_kit.pg.mitigate import plan_cancel_long_queries, plan_terminate_idle, plan_terminate_long_queries
from runbook_kit.pg.plots import plot_connections
from runbook_kit.pg.snapshot import ConnectionSnapshot, connection_snapshot
from runbook_kit.pg.statements import slow_queries
from runbook_kit.pg.targets import idle_targets, long_query_targets, protected_reason

__all__ = [
    "ACTIONS",
    "ConnectionSnapshot",
    "Diagnosis",
    "Recommendation",
    "assess",
    "blocking_chains",
    "connection_snapshot",
    "diagnose",
    "idle_sessions",
    "idle_targets",
    "long_query_targets",
    "long_running_queries",
    "plan_cancel_long_queries",
    "plan_mitigation",
    "plan_terminate_idle",
    "plan_terminate_long_queries",
    "plot_connections",
    "protected_reason",
    "recommend_max_connections",
    "slow_queries",
    "top_holders",
    "verify_headroom",
]
