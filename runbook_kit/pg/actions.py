"""One mitigation chosen by name, for the `db_mitigation` runbook's `action` parameter.

A runbook parameter is a string, and the on-call engineer picks the mitigation when starting the
run (`runbook run db_mitigation -p action cancel_long_queries`); this maps that name to the plan
helper, so the notebook stays one call per cell and an unknown name fails before anything runs.
"""

from __future__ import annotations

from typing import Any

from runbook_kit.errors import ParameterError
from runbook_kit.guard import Plan

__all__ = ["ACTIONS", "plan_mitigation"]

ACTIONS = ("status", "cancel_long_queries", "terminate_long_queries", "terminate_idle",
           "set_max_connections", "reboot")


def plan_mitigation(
    *, action: str, dsn: str = "", db_instance_id: str = "", minutes: float = 5, idle_minutes: float = 10,
    application: str = "", max_targets: int = 20, max_connections: int = 0, include_idle: bool = False,
) -> Plan:
    """The plan for `action` (one of ACTIONS); "status" is a plan with nothing to do."""
    from runbook_kit import aws, pg

    if action not in ACTIONS:
        raise ParameterError(f"action must be one of {', '.join(ACTIONS)}, not {action!r}")
    if action == "status":
        return Plan(action="status only", target=db_instance_id or dsn or "the default database",
                    backend="postgres", command="(no change)", execute=lambda dry_run: None,
                    nothing_to_do=True, reason="action = 'status': read-only run")
    if action in ("cancel_long_queries", "terminate_long_queries"):
        return pg.plan_cancel_long_queries(dsn=dsn, minutes=minutes, application=application,
                                           max_targets=max_targets, terminate=action.startswith("terminate"))
    if action == "terminate_idle":
        return pg.plan_terminate_idle(dsn=dsn, idle_minutes=idle_minutes, application=application,
                                      include_idle=include_idle, max_targets=max_targets)
    if action == "set_max_connections":
        recommendation: Any = None
        if not max_connections:
            recommendation = pg.recommend_max_connections(dsn=dsn, idle_minutes=idle_minutes)
        return aws.plan_max_connections(db_instance_id=db_instance_id, value=max_connections,
                                        recommendation=recommendation)
    return aws.plan_reboot(db_instance_id=db_instance_id)
