"""Investigation across backends: what changed (deploys, CloudTrail writes, rollouts), which change
started a spike, whether the database is involved, and the rollback that fits the cause.

Separate from `rk.aws` and `rk.k8s` because correlation is not about one backend: it reads frames
from all of them and names one cause. Re-exported here (`rk.investigate.<name>`) through `__all__`.
"""

from runbook_kit.investigate.changes import change_events
from runbook_kit.investigate.correlate import Correlation, correlate, correlate_changes
from runbook_kit.investigate.database import database_health, judge_database
from runbook_kit.investigate.mitigate import plan_rollback
from runbook_kit.investigate.node_mitigation import (
    plan_node_drain,
    plan_node_reboot,
    plan_node_replacement,
    verify_node_replacement,
)
from runbook_kit.investigate.nodes import (
    NodeAssessment,
    NodeSnapshot,
    assess_node,
    diagnose_node,
    node_metrics,
    node_snapshot,
)
from runbook_kit.investigate.targets import plan_scale_out
from runbook_kit.investigate.what_changed import (
    ChangeSources,
    Symptom,
    change_timeline,
    collect_changes,
    diagnose_security,
    diagnose_what_changed,
    git_changes,
    plot_what_changed,
    symptom_metrics,
)

__all__ = [
    "ChangeSources",
    "Correlation",
    "NodeAssessment",  # breadth
    "NodeSnapshot",  # breadth
    "Symptom",
    "assess_node",  # breadth
    "change_events",
    "change_timeline",
    "collect_changes",
    "correlate",
    "correlate_changes",
    "database_health",
    "diagnose_node",  # breadth
    "diagnose_security",
    "diagnose_what_changed",
    "git_changes",
    "judge_database",
    "node_metrics",  # breadth
    "node_snapshot",  # breadth
    "plan_node_drain",  # breadth
    "plan_node_reboot",  # breadth
    "plan_node_replacement",  # breadth
    "plan_rollback",
    "plan_scale_out",
    "plot_what_changed",
    "symptom_metrics",
    "verify_node_replacement",  # breadth
]
