"""PostgreSQL steps for runbooks: who holds the connections, why, and guarded ways to relieve them.

`__all__` is what a runbook author calls (`rk.pg.<name>`); building blocks (the snapshot type, target
selection, the diagnosis and recommendation types) stay importable from their modules of one idea
each. A test keeps `__all__` equal to what is really exported.

Names say what a step does (docs/design.md, "Naming"):
* a noun (`connection_snapshot`, `top_holders`) or `assess_*` / `find_*`: a read or a computation;
  it records nothing but a gap (a read that could not be done);
* `diagnose_*` / `check_*` / `verify_*`: records findings;
* `plan_*`: returns a `guard.Plan` and touches nothing; `rk.apply` is the only verb that changes a
  system.

psycopg is reached only through `runbook_kit.clients.pg_connect`. This package imports no other
backend (import-linter `layers` contract); the database action menu that spans PostgreSQL and RDS is
`rk.investigate.plan_database_action`.
"""

from runbook_kit.pg.activity import blocking_chains, idle_sessions, long_running_queries, top_holders
from runbook_kit.pg.capacity import assess_max_connections, verify_headroom
from runbook_kit.pg.causes import assess_connections, diagnose_connections
from runbook_kit.pg.mitigate import plan_cancel_long_queries, plan_terminate_idle, plan_terminate_long_queries
from runbook_kit.pg.plots import plot_connections
from runbook_kit.pg.snapshot import connection_snapshot
from runbook_kit.pg.statements import slow_queries

__all__ = [
    "assess_connections",
    "assess_max_connections",
    "blocking_chains",
    "connection_snapshot",
    "diagnose_connections",
    "idle_sessions",
    "long_running_queries",
    "plan_cancel_long_queries",
    "plan_terminate_idle",
    "plan_terminate_long_queries",
    "plot_connections",
    "slow_queries",
    "top_holders",
    "verify_headroom",
]
