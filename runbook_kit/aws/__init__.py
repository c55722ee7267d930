"""AWS helpers for runbooks: RDS instances and parameters, CloudWatch metric frames and plots.

Modules of one idea each, re-exported here (`rk.aws.<name>`) through a checked `__all__`. boto3 is
reached only through `runbook_kit.clients.aws(service)` (timeouts, retries, AWS_ENDPOINT_URL).
"""

from runbook_kit.aws.alb import Spike, alb_metrics, detect_spike, find_spike, plot_latency, verify_latency
from runbook_kit.aws.cloudformation import stack_events
from runbook_kit.aws.cloudtrail import lookup_events
from runbook_kit.aws.cloudwatch import metric_frame, plot_metrics
from runbook_kit.aws.codedeploy import deployments
from runbook_kit.aws.ec2 import (
    autoscaling_group_of,
    instance_health,
    instance_metrics,
    plan_reboot_instance,
    plan_replace_instance,
)
from runbook_kit.aws.elb import (
    TargetAssessment,
    assess_targets,
    diagnose_targets,
    target_group_metrics,
    target_health,
)
from runbook_kit.aws.logs import error_timeline, insights_query, top_errors
from runbook_kit.aws.rds import (
    RDS_METRICS,
    instance_status,
    parameters,
    plan_max_connections,
    plan_reboot,
    plot_rds_metrics,
    rds_metrics,
)
from runbook_kit.aws.security import guardduty_findings, security_findings, securityhub_findings

__all__ = [
    "RDS_METRICS",
    "Spike",
    "TargetAssessment",
    "alb_metrics",
    "assess_targets",
    "autoscaling_group_of",  # breadth
    "deployments",
    "detect_spike",
    "diagnose_targets",
    "error_timeline",
    "find_spike",
    "guardduty_findings",
    "insights_query",
    "instance_health",  # breadth
    "instance_metrics",  # breadth
    "instance_status",
    "lookup_events",
    "metric_frame",
    "parameters",
    "plan_max_connections",
    "plan_reboot",
    "plan_reboot_instance",  # breadth
    "plan_replace_instance",  # breadth
    "plot_latency",
    "plot_metrics",
    "plot_rds_metrics",
    "rds_metrics",
    "security_findings",
    "securityhub_findings",
    "stack_events",
    "target_group_metrics",
    "target_health",
    "top_errors",
    "verify_latency",
]
