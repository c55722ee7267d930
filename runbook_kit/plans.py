"""The one way to say "nothing to do" as a Plan.

A runbook cell always ends in `rk.apply(plan, dry_run=dry_run)`, so a step that decides *not* to
change anything (`action = "status"`, a cause that is not a rollout, a recommendation not to raise a
limit, a self-managed database without RDS) still returns a Plan: one with `nothing_to_do=True` and
the reason, which the guard records as `skipped` and never executes. Every backend builds it here, so
"no change" reads the same in every record whichever backend decided it.

Sits below the backends and above the guard (docs/design.md, import-linter `layers`).
"""

from __future__ import annotations

from runbook_kit.guard import Plan

__all__ = ["NO_CHANGE", "plan_no_change"]

NO_CHANGE = "# nothing to do"


def _nothing(dry_run: bool) -> None:
    return None


def plan_no_change(*, action: str, target: str, backend: str, reason: str, command: str = NO_CHANGE) -> Plan:
    """A Plan that changes nothing, recorded as skipped with `reason`.

    `command` is what a person could run by hand instead (e.g. the SQL for a self-managed database),
    else the plain "# nothing to do".
    """
    return Plan(action=action, target=target, backend=backend, command=command, execute=_nothing,
                reason=reason, nothing_to_do=True)
