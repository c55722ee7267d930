"""Generate the API latency spike runbook: api_latency_spike.ipynb.

Why a script: notebooks are committed without outputs and must follow the contract that
tests/test_notebooks.py enforces (documented first cell, a `parameters` cell, one `rk.` call per
step). Writing them from Python keeps the JSON valid and the diffs of this file readable.

    .venv/bin/python notebooks/_build/latency.py
"""

from __future__ import annotations

from _notebook import write

PERMISSIONS = (
    "- **IAM**: `cloudwatch:GetMetricData` (load balancer and RDS metrics); `logs:StartQuery`, "
    "`logs:GetQueryResults`, `logs:StopQuery` on the log group; `cloudtrail:LookupEvents`; "
    "`codedeploy:GetApplication`, `codedeploy:ListDeploymentGroups`, `codedeploy:ListDeployments`, "
    "`codedeploy:BatchGetDeployments`.\n"
    "- **Kubernetes RBAC** (namespace of the deployment): `get` on `deployments.apps`, `list` on "
    "`replicasets.apps`; to mitigate: `patch` on `deployments.apps` (the dry run sends the same patch with "
    "`dryRun=All`, which needs the same verb)."
)

LATENCY = [
    ("md", f"""
# API latency spike

Triage a p99 latency spike, find the change that started it, rule out the database, roll back.

**When to use**: the load balancer's `TargetResponseTime` p99 alarm fires, users report slow or failing
requests, or the 5xx rate of a service rises without an obvious outage.

**What it may change** (only with `dry_run = False`): rolls the Kubernetes deployment `deployment` back
to the revision before the rollout named as the likely cause (`kubectl rollout undo --to-revision=N`),
and only when the cause is a rollout of that deployment. Otherwise nothing: the plan says what to undo by
hand. With `dry_run = True` the API server validates the same patch (`dryRun=All`) and nothing persists.

**How to undo**: `kubectl rollout undo deployment/<deployment> -n <namespace>` returns to the rolled-back
release (the plan shows the exact command); re-run the CodeDeploy deployment to re-release it.

**Permissions needed**:
{PERMISSIONS}
"""),
    ("params", """
load_balancer = "app/storefront-alb/50dc6c495c0c9188"  # ALB as `app/<name>/<id>` (metrics dimension) or ARN
log_group = "/eks/storefront/checkout"  # CloudWatch log group of the service
codedeploy_application = "storefront-checkout"  # CodeDeploy application of the service; empty: none
codedeploy_group = ""  # CodeDeploy deployment group; empty: every group of the application
namespace = "storefront"  # Kubernetes namespace of the service
deployment = "checkout"  # Kubernetes deployment of the service
db_instance_id = "orders-db"  # RDS instance the service uses; empty: do not check a database
window_minutes = 180  # how far back to look, in minutes
change_tolerance_minutes = 30  # a change this long before the spike start can still be its cause
p99_threshold_ms = 1000.0  # verification: p99 under this is recovered
context = ""  # kubeconfig context; empty: the current one
dry_run = True  # True: show and record the rollback plan (server-side dry run), change nothing
"""),
    ("code", "import runbook_kit as rk"),
    ("md", "## 1. Check latency and errors now\n\n"
           "Per minute from the load balancer: average and p99 latency, requests, target 5xx and their "
           "rate."),
    ("code", "alb = rk.aws.alb_metrics(load_balancer=load_balancer, minutes=window_minutes)\nalb.tail(10)"),
    ("code", "rk.aws.plot_latency(alb)"),
    ("md", "## 2. When did it start?\n\n"
           "The sustained rise of p99 above its baseline: start, baseline, peak, magnitude and the 5xx "
           "rate."),
    ("code", "spike = rk.aws.detect_spike(alb, load_balancer=load_balancer)\nspike"),
    ("md", "## 3. What changed: deploys, CloudTrail writes, rollouts"),
    ("code", "deploys = rk.aws.deployments(application=codedeploy_application, group=codedeploy_group,\n"
             "                             minutes=window_minutes + change_tolerance_minutes)\ndeploys"),
    ("code", "trail = rk.aws.lookup_events(around=spike.start, around_minutes=change_tolerance_minutes,\n"
             "                             minutes=window_minutes, read_only=False)\ntrail"),
    ("code", "rollouts = rk.k8s.rollout_history(namespace=namespace, deployment=deployment,\n"
             "                                   context=context)\n"
             "rollouts"),
    ("code", "changes = rk.investigate.change_events(deploys=deploys, trail=trail, rollouts=rollouts,\n"
             "                                       namespace=namespace, deployment=deployment)\nchanges"),
    ("md", "## 4. Errors in the logs\n\n"
           "ERROR lines per 5 minutes (Logs Insights), then the most frequent messages, request ids "
           "stripped."),
    ("code", "rk.aws.error_timeline(log_group=log_group, minutes=window_minutes)"),
    ("code", "rk.aws.top_errors(log_group=log_group, minutes=window_minutes)"),
    ("md", "## 5. Is it the database?\n\n"
           "RDS CPU and connections when latency rose, against the hour before. What happens later may be a "
           "consequence (slow requests hold connections longer), so it is reported, not judged."),
    ("code", "rk.investigate.database_health(db_instance_id=db_instance_id, spike=spike)"),
    ("md", "## 6. Likely cause\n\n"
           "The burst of changes closest before the spike start; within it the release (deploy, then "
           "rollout) "
           "is named, the rest is evidence."),
    ("code", "cause = rk.investigate.correlate(spike=spike, changes=changes, "
             "tolerance_minutes=change_tolerance_minutes)\ncause"),
    ("code", "rk.aws.plot_latency(alb, spike=spike, changes=changes)"),
    ("md", """
## 7. Mitigate: roll back the release named as cause

Back to the revision *before* the one that shipped with the cause (not blindly the previous one). A
cause that is not a rollout of this deployment gives a no-op plan that says what to undo by hand.
"""),
    ("code", "plan = rk.investigate.plan_rollback(cause=cause, namespace=namespace, deployment=deployment,\n"
             "                                   context=context)\nplan"),
    ("code", "rk.apply(plan, dry_run=dry_run)"),
    ("md", "## 8. Verify: p99 back under the threshold\n\n"
           "The latest minutes with data. After a dry run this reports the current state; after a rollback, "
           "run it again in a few minutes."),
    ("code", "rk.aws.verify_latency(load_balancer=load_balancer, threshold_ms=p99_threshold_ms)"),
]




def main() -> None:
    print(write("api_latency_spike", LATENCY))


if __name__ == "__main__":
    main()
