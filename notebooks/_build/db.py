"""Generate the database runbooks: db_connection_exhaustion.ipynb and db_mitigation.ipynb.

Why a script: notebooks are committed without outputs and must follow the contract that
tests/test_notebooks.py enforces (documented first cell, a `parameters` cell, one `rk.` call per
step). Writing them from Python keeps the JSON valid and the diffs of this file readable.

    .venv/bin/python notebooks/_build/db.py
"""

from __future__ import annotations

from _notebook import write

PERMISSIONS = (
    "- **SQL**: `CONNECT` on the database; `pg_read_all_stats` to see every session (on RDS: a member of "
    "`rds_superuser`); `pg_signal_backend` to cancel/terminate other roles' sessions (superuser sessions "
    "cannot be ended this way, and the runbook never tries).\n"
    "- **IAM**: `rds:DescribeDBInstances`, `rds:DescribeDBParameters`, `cloudwatch:GetMetricData`; to "
    "mitigate: `rds:ModifyDBParameterGroup`, `rds:RebootDBInstance`."
)




EXHAUSTION = [
    ("md", f"""
# Database connection exhaustion

Who holds the PostgreSQL connections, why (leak, limit, blocking, surge), and safe relief.

**When to use**: applications log `FATAL: sorry, too many clients already` or `remaining connection
slots are reserved`, connection-pool timeouts, or the RDS `DatabaseConnections` alarm is near
`max_connections`.

**What it may change** (only with `dry_run = False`): terminates sessions idle in transaction (with
`include_idle = True` also plain idle ones) for at least `idle_minutes`, optionally only those of
`application`, never more than
`max_targets`, never the runbook's own, superuser or replication sessions; with `raise_limit = True`
stages the recommended `max_connections` in the RDS parameter group (applies at the next reboot);
with `allow_reboot = True` reboots the instance, only when a change is pending a reboot.

**How to undo**: an ended session cannot be restored — its open transaction is rolled back and its
client reconnects through its pool; `max_connections`: run the `undo` command shown in the plan (the
previous value); a reboot cannot be undone.

**Permissions needed**:
{PERMISSIONS}
"""),
    ("params", """
dsn = ""  # DSN or a name from runbook.yaml; empty: RUNBOOK_DSN, DATABASE_URL or PG* variables
db_instance_id = "orders-db"  # RDS instance identifier of that database; empty: not on RDS
idle_minutes = 10  # sessions idle (or idle in transaction) at least this long are stale
application = ""  # end only this application's idle sessions; empty: any application
include_idle = False  # also end plain idle sessions, not only those idle in transaction
max_targets = 50  # blast radius: refuse to end more sessions than this
metrics_minutes = 180  # window of the RDS metrics, in minutes
raise_limit = False  # also stage the recommended max_connections (applies at the next reboot)
allow_reboot = False  # reboot the instance if a change is pending a reboot
dry_run = True  # True: show and record the plans, change nothing
"""),
    ("code", "import runbook_kit as rk"),
    ("md", "## 1. Check current connections\n\n"
           "Used against `max_connections` minus the reserved slots, by state."),
    ("code", "snap = rk.pg.connection_snapshot(dsn=dsn)\nsnap"),
    ("md", "## 2. Connections, CPU and memory over time (RDS)\n\n"
           "A steady climb suggests a leak; a step, a deploy or a surge."),
    ("code", "rk.aws.plot_rds_metrics(db_instance_id=db_instance_id, minutes=metrics_minutes)"),
    ("md", "## 3. Who holds the connections\n\n"
           "By application, client address, user, database and state, with the oldest ages in minutes."),
    ("code", "rk.pg.top_holders(snap)"),
    ("code", "rk.pg.plot_connections(snap)"),
    ("md", "## 4. Stale sessions, long-running queries and blocking chains"),
    ("code", "rk.pg.idle_sessions(snap, minutes=idle_minutes)"),
    ("code", "rk.pg.long_running_queries(snap, minutes=5)"),
    ("code", "rk.pg.blocking_chains(snap)"),
    ("md", "## 5. Diagnose: leak, limit too low, blocking or surge\n\n"
           "Each cause is recorded as a finding with its evidence."),
    ("code", "rk.pg.diagnose(snap, idle_minutes=idle_minutes)"),
    ("md", "## 6. Slow queries (pg_stat_statements)"),
    ("code", "rk.pg.slow_queries(dsn=dsn)"),
    ("md", """
## 7. Mitigate: kill idle connections

The plan lists every PID and the SQL. At execution each PID is re-checked on the server (same
backend start, still idle that long, same application), so a recycled PID is never touched.
"""),
    ("code", """
plan = rk.pg.plan_terminate_idle(dsn=dsn, idle_minutes=idle_minutes, application=application,
                                 include_idle=include_idle, max_targets=max_targets)
plan
"""),
    ("code", "rk.apply(plan, dry_run=dry_run)"),
    ("md", """
## 8. Should max_connections go up?

Only for legitimate demand: stale sessions are not counted. `max_connections` is static on RDS: the
new value applies at the next reboot.
"""),
    ("code", "rec = rk.pg.recommend_max_connections(snap, idle_minutes=idle_minutes)\nrec"),
    ("code", "plan = rk.aws.plan_max_connections(db_instance_id=db_instance_id, recommendation=rec)\nplan"),
    ("code", "rk.apply(plan, dry_run=dry_run or not raise_limit)"),
    ("md", """
## 9. Reboot only if required

Usually not: a reboot drops every connection (a failover on Multi-AZ) and does not fix a leak — the
leaking application reconnects and leaks again. It is needed only to apply a staged static parameter
such as `max_connections`.
"""),
    ("code", "plan = rk.aws.plan_reboot(db_instance_id=db_instance_id)\nplan"),
    ("code", "rk.apply(plan, dry_run=dry_run or not allow_reboot)"),
    ("md", "## 10. Verify headroom"),
    ("code", "rk.pg.verify_headroom(dsn=dsn)"),
    ("code", "rk.pg.plot_connections(dsn=dsn)"),
]

MITIGATION = [
    ("md", f"""
# Database mitigation (PostgreSQL / RDS)

Check an RDS PostgreSQL instance and apply one database mitigation, chosen with `action`.

**When to use**: the database is slow or saturated — high CPU, low freeable memory, long-running or
blocked queries — or another runbook pointed here for a database change.

**What it may change** (only with `dry_run = False`), by `action`: `status` changes nothing;
`cancel_long_queries` / `terminate_long_queries` cancel (or end the sessions of) queries active for
at least `minutes`; `terminate_idle` ends sessions idle for at least `idle_minutes`;
`set_max_connections` stages `max_connections` in the parameter group (pending reboot); `reboot`
reboots the instance only if a change is pending a reboot. Session actions never touch more than
`max_targets` sessions, nor the runbook's own, superuser or replication sessions.

**How to undo**: a cancelled query can be re-run by its client; an ended session's transaction is
rolled back and its client reconnects; `max_connections`: the `undo` command in the plan; a reboot
cannot be undone.

**Permissions needed**:
{PERMISSIONS}
"""),
    ("params", """
dsn = ""  # DSN or a name from runbook.yaml; empty: RUNBOOK_DSN, DATABASE_URL or PG* variables
db_instance_id = "orders-db"  # RDS instance identifier of that database; empty: not on RDS
action = "status"  # status, cancel_long_queries, terminate_long_queries, terminate_idle, ...
minutes = 5  # long-running: queries active at least this long
idle_minutes = 10  # terminate_idle: sessions idle at least this long
include_idle = False  # terminate_idle: also plain idle sessions, not only those idle in transaction
application = ""  # only this application's sessions; empty: any application
max_targets = 20  # blast radius: refuse to touch more sessions than this
max_connections = 0  # set_max_connections: the new value; 0: the recommended value
metrics_minutes = 180  # window of the RDS metrics, in minutes
dry_run = True  # True: show and record the plan, change nothing
"""),
    ("code", "import runbook_kit as rk"),
    ("md", "## 1. Check RDS instance status"),
    ("code", "rk.aws.instance_status(db_instance_id=db_instance_id)"),
    ("md", "## 2. CPU, freeable memory and connections"),
    ("code", "rk.aws.plot_rds_metrics(db_instance_id=db_instance_id, minutes=metrics_minutes)"),
    ("md", "## 3. Parameter group: max_connections"),
    ("code", "rk.aws.parameters(db_instance_id=db_instance_id)"),
    ("md", "## 4. Current connections"),
    ("code", "snap = rk.pg.connection_snapshot(dsn=dsn)\nsnap"),
    ("md", "## 5. Long-running queries and blocking chains\n\n"
           "End the *root* blocker of a chain, not its victims."),
    ("code", "rk.pg.long_running_queries(snap, minutes=minutes)"),
    ("code", "rk.pg.blocking_chains(snap)"),
    ("md", "## 6. Mitigate: the chosen action\n\n"
           "The plan names every PID or parameter it touches and the equivalent SQL / `aws` command."),
    ("code", """
plan = rk.pg.plan_mitigation(action=action, dsn=dsn, db_instance_id=db_instance_id, minutes=minutes,
                             idle_minutes=idle_minutes, include_idle=include_idle, application=application,
                             max_targets=max_targets, max_connections=max_connections)
plan
"""),
    ("code", "rk.apply(plan, dry_run=dry_run)"),
    ("md", "## 7. Verify headroom"),
    ("code", "rk.pg.verify_headroom(dsn=dsn)"),
]


def main() -> None:
    for name, spec in (("db_connection_exhaustion", EXHAUSTION), ("db_mitigation", MITIGATION)):
        print(write(name, spec))


if __name__ == "__main__":
    main()
