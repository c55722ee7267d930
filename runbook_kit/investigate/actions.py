"""One database mitigation chosen by name, for the `db_mitigation` runbook's `action` parameter.

A runbook parameter is a string, and the on-call engineer picks the mitigation when starting the
run (`runbook run db_mitigation -p action cancel_long_queries`); this maps that name to the plan
helper, so the notebook stays one call per cell and an unknown name fails before anything runs.

It lives here, above the backends, because the menu spans two of them: session actions are
PostgreSQL (`pg`), `set_max_connections` and `reboot` are RDS (`aws`); the backends stay independent.
"""

from __future__ import annotations

from runbook_kit.aws.rds import plan_max_connections, plan_reboot
from runbook_kit.errors import ParameterError
from runbook_kit.guard import Plan
from runbook_kit.pg.capacity import Recommendation, assess_max_connections
from runbook_kit.pg.mitigate import plan_cancel_long_queries, plan_terminate_idle
from runbook_kit.plans import plan_no_change

__all__ = ["DATABASE_ACTIONS", "plan_database_action"]

DATABASE_ACTIONS = ("status", "cancel_long_queries", "terminate_long_queries", "terminate_idle",
                    "set_max_connections", "reboot")


def plan_database_action(
    *, action: str, dsn: str = "", db_instance_id: str | None = None, minutes: float = 5,
    idle_minutes: float = 10, application: str = "", max_targets: int = 20,
    max_connections: int | None = None, include_idle: bool = False,
) -> Plan:
    """The plan for `action` (one of DATABASE_ACTIONS); "status" is a plan with nothing to do.

    `db_instance_id` None: the RDS instance is read from the DSN's host (see `aws.rds`);
    `max_connections` None: the recommended value (`pg.assess_max_connections`).
    """
    if action not in DATABASE_ACTIONS:
        raise ParameterError(f"action must be one of {', '.join(DATABASE_ACTIONS)}, not {action!r}")
    if action == "status":
        return plan_no_change(action="status only", target=db_instance_id or dsn or "the default database",
                              backend="postgres", reason="action = 'status': read-only run")
    if action in ("cancel_long_queries", "terminate_long_queries"):
        return plan_cancel_long_queries(dsn=dsn, minutes=minutes, application=application,
                                        max_targets=max_targets, terminate=action.startswith("terminate"))
    if action == "terminate_idle":
        return plan_terminate_idle(dsn=dsn, idle_minutes=idle_minutes, application=application,
                                   include_idle=include_idle, max_targets=max_targets)
    if action == "set_max_connections":
        recommendation: Recommendation | None = None
        if max_connections is None:
            recommendation = assess_max_connections(dsn=dsn, idle_minutes=idle_minutes)
        return plan_max_connections(db_instance_id=db_instance_id, dsn=dsn, value=max_connections,
                                    recommendation=recommendation)
    return plan_reboot(db_instance_id=db_instance_id, dsn=dsn)
