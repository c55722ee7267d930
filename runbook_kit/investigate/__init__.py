"""Investigation across backends: what changed (deploys, CloudTrail writes, rollouts), which change
started a spike, whether the database is involved, and the rollback that fits the cause.

Separate from `rk.aws` and `rk.k8s` because correlation is not about one backend: it reads frames
from all of them and names one cause. Re-exported here (`rk.investigate.<name>`) through `__all__`.
"""

from runbook_kit.investigate.changes import change_events
from runbook_kit.investigate.correlate import Correlation, correlate, correlate_changes
from runbook_kit.investigate.database import database_health, judge_database
from runbook_kit.investigate.mitigate import plan_rollback

__all__ = [
    "Correlation",
    "change_events",
    "correlate",
    "correlate_changes",
    "database_health",
    "judge_database",
    "plan_rollback",
]
