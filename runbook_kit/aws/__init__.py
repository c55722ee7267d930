"""AWS steps for runbooks: load balancer latency, CloudTrail, CodeDeploy, Logs Insights, RDS.

`__all__` is what a runbook author calls (`rk.aws.<name>`); building blocks (the Spike type, metric
names, query texts) stay importable from their modules of one idea each. A test keeps `__all__`
equal to what is really exported.

Names say what a step does (docs/design.md, "Naming"):
* a noun (`alb_metrics`, `deployments`) or `assess_*` / `find_*`: a read or a computation; it
  records nothing but a gap (a read that could not be done);
* `diagnose_*` / `check_*` / `verify_*`: records findings (`find_spike` is pure, `diagnose_spike`
  records what it found);
* `plan_*`: returns a `guard.Plan` and touches nothing; `rk.apply` is the only verb that changes a
  system.

boto3 is reached only through `runbook_kit.clients.aws(service)` (timeouts, retries,
AWS_ENDPOINT_URL). This package imports no other backend (import-linter `layers` contract).
"""

from runbook_kit.aws.alb import alb_metrics, diagnose_spike, find_spike, plot_latency, verify_latency
from runbook_kit.aws.cloudformation import stack_events
from runbook_kit.aws.cloudtrail import lookup_events
from runbook_kit.aws.cloudwatch import metric_frame, plot_metrics
from runbook_kit.aws.codedeploy import deployments
from runbook_kit.aws.ec2 import (
    instance_health,
    instance_metrics,
    plan_reboot_instance,
    plan_replace_instance,
)
from runbook_kit.aws.elb import (
    assess_targets,
    diagnose_targets,
    target_group_metrics,
    target_health,
)
from runbook_kit.aws.logs import diagnose_errors, error_timeline, insights_query, top_errors
from runbook_kit.aws.rds import (
    instance_from_dsn,
    instance_status,
    parameters,
    plan_max_connections,
    plan_reboot,
    plot_rds_metrics,
    rds_metrics,
)
from runbook_kit.aws.security import guardduty_findings, security_findings, securityhub_findings

__all__ = [
    "alb_metrics",
    "assess_targets",
    "deployments",
    "diagnose_errors",
    "diagnose_spike",
    "diagnose_targets",
    "error_timeline",
    "find_spike",
    "guardduty_findings",
    "insights_query",
    "instance_from_dsn",
    "instance_health",
    "instance_metrics",
    "instance_status",
    "lookup_events",
    "metric_frame",
    "parameters",
    "plan_max_connections",
    "plan_reboot",
    "plan_reboot_instance",
    "plan_replace_instance",
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
