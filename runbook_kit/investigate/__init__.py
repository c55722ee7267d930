"""Steps across backends: what changed (deploys, CloudTrail writes, rollouts), which change started
a spike, whether the database is involved, and the plans that span more than one backend.

Separate from `rk.aws`, `rk.k8s` and `rk.pg` because these steps are not about one backend: they read
frames from several and name one cause, or choose between plans of several (the database action menu:
PostgreSQL sessions and RDS parameters). The backends never import each other; this layer sits above
them (import-linter `layers` contract). `__all__` is what runbook authors call (`rk.investigate.<name>`);
building blocks stay in their modules.

Names say what a step does: `change_events` (a noun) and `find_*` / `assess_*` compute and record
nothing; `diagnose_*` records findings; `plan_*` returns a Plan and touches nothing.
"""

from runbook_kit.investigate.actions import plan_database_action
from runbook_kit.investigate.changes import change_events
from runbook_kit.investigate.correlate import diagnose_cause, find_cause
from runbook_kit.investigate.database import assess_database, diagnose_database
from runbook_kit.investigate.latency import plan_latency_mitigation
from runbook_kit.investigate.mitigate import plan_rollback_of_cause
from runbook_kit.investigate.node_mitigation import (
    plan_node_drain,
    plan_node_reboot,
    plan_node_replacement,
    verify_node_replacement,
)
from runbook_kit.investigate.nodes import (
    assess_node,
    diagnose_node,
    node_metrics,
    node_snapshot,
)
from runbook_kit.investigate.targets import plan_scale_out
from runbook_kit.investigate.what_changed import (
    change_timeline,
    collect_changes,
    diagnose_security,
    diagnose_what_changed,
    plot_what_changed,
    symptom_metrics,
)

__all__ = [
    "assess_database",
    "assess_node",
    "change_events",
    "change_timeline",
    "collect_changes",
    "diagnose_cause",
    "diagnose_database",
    "diagnose_node",
    "diagnose_security",
    "diagnose_what_changed",
    "find_cause",
    "node_metrics",
    "node_snapshot",
    "plan_database_action",
    "plan_latency_mitigation",
    "plan_node_drain",
    "plan_node_reboot",
    "plan_node_replacement",
    "plan_rollback_of_cause",
    "plan_scale_out",
    "plot_what_changed",
    "symptom_metrics",
    "verify_node_replacement",
]
