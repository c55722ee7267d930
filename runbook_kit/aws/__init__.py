"""AWS helpers for runbooks: RDS instances and parameters, CloudWatch metric frames and plots.

Modules of one idea each, re-exported here (`rk.aws.<name>`) through a checked `__all__`. boto3 is
reached only through `runbook_kit.clients.aws(service)` (timeouts, retries, AWS_ENDPOINT_URL).
"""

from runbook_kit.aws.cloudwatch import metric_frame, plot_metrics
from runbook_kit.aws.rds import (
    RDS_METRICS,
    instance_status,
    parameters,
    plan_max_connections,
    plan_reboot,
    plot_rds_metrics,
    rds_metrics,
)

__all__ = [
    "RDS_METRICS",
    "instance_status",
    "metric_frame",
    "parameters",
    "plan_max_connections",
    "plan_reboot",
    "plot_metrics",
    "plot_rds_metrics",
    "rds_metrics",
]
