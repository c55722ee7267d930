"""What each runbook needs: Kubernetes RBAC, IAM actions, PostgreSQL roles. The one source of truth.

The data is per step: `STEPS` maps every `rk.<module>.<step>` a runbook may call to what that step
needs. A runbook's needs are derived, never written by hand: the union over the steps its code cells
call (read with `ast`, exactly as written in the notebook). Adding a step to a runbook adds its needs;
a runbook calling a step missing from `STEPS` is refused by `needs()` rather than guessed.

Who reads it: `runbook doctor` (checks the needs against the environment before an incident) and the
tests: tests/doctor/test_permissions.py checks that each runbook's "Permissions needed" markdown
names exactly what is derived here (both directions), and a sandbox test that the Kubernetes requests
a real dry run makes are all declared.

    needs("pod_crashloop").k8s    -> (K8sPermission("list", "pods"), ...)

`purpose` is `read` (the diagnosis) or `mitigate` (what `rk.apply` needs with dry_run=False, and
for Kubernetes also the server-side dry run, which needs the same verb). `optional` permissions
degrade a step instead of failing it (without metrics.k8s.io, usage is reported as unavailable).
Pure data and pure functions: nothing here calls a backend.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from runbook_kit import catalog
from runbook_kit.errors import UnknownRunbook

__all__ = [
    "STEPS", "IamAction", "K8sPermission", "Needs", "SqlRole", "declared", "needs", "runbook_needs",
    "steps", "undeclared_steps",
]


@dataclasses.dataclass(frozen=True)
class K8sPermission:
    verb: str
    resource: str
    group: str = ""
    subresource: str = ""
    cluster_scoped: bool = False
    purpose: str = "read"
    optional: bool = False

    @property
    def kubectl_resource(self) -> str:
        """`pods/log`, `deployments.apps`, `deployments.apps/scale`: kubectl's --resource spelling."""
        name = f"{self.resource}.{self.group}" if self.group else self.resource
        return f"{name}/{self.subresource}" if self.subresource else name

    @property
    def markdown_name(self) -> str:
        """How a runbook's markdown names the resource: `pods/log`, `deployments/scale`."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


@dataclasses.dataclass(frozen=True)
class IamAction:
    action: str  # service:Action, e.g. cloudwatch:GetMetricData
    purpose: str = "read"


@dataclasses.dataclass(frozen=True)
class SqlRole:
    role: str  # a predefined role whose privileges the runbook's connection needs
    purpose: str = "read"
    why: str = ""


@dataclasses.dataclass(frozen=True)
class Needs:
    k8s: tuple[K8sPermission, ...] = ()
    iam: tuple[IamAction, ...] = ()
    sql: tuple[SqlRole, ...] = ()

    @property
    def backends(self) -> tuple[str, ...]:
        return tuple(b for b, has in (("aws", self.iam), ("k8s", self.k8s), ("postgres", self.sql)) if has)


def _k8s(verbs: str, resource: str, **kwargs: object) -> tuple[K8sPermission, ...]:
    return tuple(K8sPermission(v, resource, **kwargs) for v in verbs.split(","))  # type: ignore[arg-type]


def _iam(*actions: str, purpose: str = "read") -> tuple[IamAction, ...]:
    return tuple(IamAction(a, purpose) for a in actions)


_NAMESPACE = _k8s("get", "namespaces", cluster_scoped=True)  # a missing deployment: is it its namespace?
_METRICS = _k8s("get,list", "pods", group="metrics.k8s.io", optional=True)
_DEPLOYMENT = (*_k8s("get", "deployments", group="apps"), *_NAMESPACE)
_HISTORY = (*_DEPLOYMENT, *_k8s("list", "replicasets", group="apps"))
_ROLLBACK = (*_HISTORY, *_k8s("patch", "deployments", group="apps", purpose="mitigate"))
_SCALE = _k8s("patch", "deployments", group="apps", subresource="scale", purpose="mitigate")
_SCALE_OUT = (*_DEPLOYMENT, *_SCALE)
_NODE_PODS = (*_k8s("list", "nodes", cluster_scoped=True), *_k8s("list", "pods", cluster_scoped=True))
_DRAIN = (
    *_k8s("get", "nodes", cluster_scoped=True),
    *_k8s("list", "pods", cluster_scoped=True),
    *_k8s("patch", "nodes", cluster_scoped=True, purpose="mitigate"),
    *_k8s("create", "pods", subresource="eviction", purpose="mitigate"),
)
_GET_METRICS = _iam("cloudwatch:GetMetricData")
_LOGS_INSIGHTS = _iam("logs:StartQuery", "logs:GetQueryResults", "logs:StopQuery")
_CODEDEPLOY = _iam(  # without a deployment group: every group of the application
    "codedeploy:GetApplication", "codedeploy:ListDeploymentGroups", "codedeploy:ListDeployments",
    "codedeploy:BatchGetDeployments",
)
_TARGET_GROUPS = _iam(
    "elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeTargetGroups"
)
_RDS_INSTANCE = _iam("rds:DescribeDBInstances")
_RDS_PARAMETERS = _iam("rds:DescribeDBInstances", "rds:DescribeDBParameters")
_SEE_SESSIONS = (SqlRole("pg_read_all_stats", why="see every session's state and query"),)
_END_SESSIONS = (
    SqlRole("pg_signal_backend", purpose="mitigate", why="cancel or terminate other roles' sessions"),
)
_NOTHING = Needs()

# Every step a runbook may call (`rk.<module>.<step>`, as written in its code cells) -> what it needs.
# A runbook's needs are the union over the steps its code cells call (`runbook_needs`): adding a step
# to a runbook adds its needs, and a step missing here is refused (`undeclared_steps`), not guessed.
# Pure steps (assess_*, plot_*, the diagnose_* that only record what they are given) need nothing.
STEPS: dict[str, Needs] = {
    "apply": _NOTHING,  # what it applies is declared by the plan_* step that built the plan
    # --- rk.k8s
    # one read of the workload (rk.k8s.workload_snapshot); the views called on it read nothing more,
    # but may also be called live, so they keep their own needs
    "k8s.workload_snapshot": Needs(
        k8s=(
            *_k8s("get,list", "pods"),
            *_k8s("get", "pods", subresource="log"),
            *_k8s("list", "events"),
            *_HISTORY,
            *_DEPLOYMENT,
            *_METRICS,
        )
    ),
    "k8s.pod_status": Needs(k8s=(*_k8s("list", "pods"), *_DEPLOYMENT)),
    "k8s.most_restarted_pod": _NOTHING,
    "k8s.plot_restarts": _NOTHING,
    "k8s.plot_memory": _NOTHING,
    "k8s.deployment_status": Needs(k8s=(*_k8s("get,list", "deployments", group="apps"), *_NAMESPACE)),
    "k8s.rollout_history": Needs(k8s=_HISTORY),
    "k8s.revision_diff": Needs(k8s=_HISTORY),
    "k8s.container_logs": Needs(k8s=(*_k8s("get", "pods"), *_k8s("get", "pods", subresource="log"))),
    "k8s.pod_events": Needs(k8s=_k8s("list", "events")),
    "k8s.container_resources": Needs(k8s=(*_k8s("list", "pods"), *_DEPLOYMENT, *_METRICS)),
    "k8s.diagnose_crashloop": Needs(
        k8s=(
            *_k8s("get,list", "pods"),
            *_k8s("get", "pods", subresource="log"),
            *_k8s("list", "events"),
            *_k8s("get", "replicasets", group="apps"),  # a crashing pod's owner
            *_DEPLOYMENT,
            *_METRICS,
        )
    ),
    "k8s.plan_mitigation": Needs(k8s=_ROLLBACK),  # rollback, restart, raise_memory: one deployment patch
    "k8s.verify_rollout": Needs(k8s=(*_DEPLOYMENT, *_k8s("list", "pods"))),
    "k8s.node_status": Needs(k8s=(*_k8s("get,list", "nodes", cluster_scoped=True),
                                  *_k8s("list", "pods", cluster_scoped=True))),
    "k8s.instance_nodes": Needs(k8s=_NODE_PODS),
    "k8s.plan_action": Needs(
        k8s=(
            *_k8s("get", "pods"),  # delete_pod reads the pod (and its owner) first
            *_ROLLBACK,
            *_SCALE,
            *_k8s("delete", "pods", purpose="mitigate"),
            *_DRAIN,
        )
    ),
    # --- rk.aws
    "aws.alb_metrics": Needs(iam=_GET_METRICS),
    "aws.diagnose_spike": _NOTHING,
    "aws.plot_latency": _NOTHING,
    "aws.verify_latency": Needs(iam=_GET_METRICS),
    "aws.deployments": Needs(iam=_CODEDEPLOY),
    "aws.lookup_events": Needs(iam=_iam("cloudtrail:LookupEvents")),
    "aws.insights_query": Needs(iam=_LOGS_INSIGHTS),
    "aws.error_timeline": Needs(iam=_LOGS_INSIGHTS),
    "aws.top_errors": Needs(iam=_LOGS_INSIGHTS),
    "aws.diagnose_errors": Needs(iam=_LOGS_INSIGHTS),
    "aws.target_health": Needs(iam=(*_TARGET_GROUPS, *_iam("elasticloadbalancing:DescribeTargetHealth"))),
    "aws.target_group_metrics": Needs(iam=(*_TARGET_GROUPS, *_GET_METRICS)),
    "aws.assess_targets": _NOTHING,
    "aws.diagnose_targets": _NOTHING,
    "aws.instance_status": Needs(iam=_RDS_INSTANCE),
    "aws.parameters": Needs(iam=_RDS_PARAMETERS),
    "aws.rds_metrics": Needs(iam=_GET_METRICS),
    "aws.plot_rds_metrics": Needs(iam=_GET_METRICS),
    "aws.plan_max_connections": Needs(
        iam=(*_RDS_PARAMETERS, *_iam("rds:ModifyDBParameterGroup", purpose="mitigate"))
    ),
    "aws.plan_reboot": Needs(iam=(*_RDS_INSTANCE, *_iam("rds:RebootDBInstance", purpose="mitigate"))),
    # --- rk.pg
    "pg.connection_snapshot": Needs(sql=_SEE_SESSIONS),
    "pg.top_holders": Needs(sql=_SEE_SESSIONS),
    "pg.idle_sessions": Needs(sql=_SEE_SESSIONS),
    "pg.long_running_queries": Needs(sql=_SEE_SESSIONS),
    "pg.blocking_chains": Needs(sql=_SEE_SESSIONS),
    "pg.slow_queries": Needs(sql=_SEE_SESSIONS),
    "pg.verify_headroom": Needs(sql=_SEE_SESSIONS),
    "pg.diagnose_connections": _NOTHING,
    "pg.assess_max_connections": _NOTHING,
    "pg.plot_connections": _NOTHING,
    "pg.plan_terminate_idle": Needs(sql=(*_SEE_SESSIONS, *_END_SESSIONS)),
    "pg.plan_cancel_long_queries": Needs(sql=(*_SEE_SESSIONS, *_END_SESSIONS)),
    "pg.plan_terminate_long_queries": Needs(sql=(*_SEE_SESSIONS, *_END_SESSIONS)),
    # --- rk.investigate
    "investigate.change_events": _NOTHING,
    "investigate.diagnose_cause": _NOTHING,
    "investigate.diagnose_database": Needs(iam=_GET_METRICS),
    "investigate.plan_rollback_of_cause": Needs(k8s=_ROLLBACK),
    "investigate.plan_scale_out": Needs(k8s=_SCALE_OUT),
    "investigate.plan_latency_mitigation": Needs(k8s=(*_ROLLBACK, *_SCALE_OUT)),  # one or the other
    "investigate.plan_database_action": Needs(
        iam=(
            *_RDS_PARAMETERS,
            *_iam("rds:ModifyDBParameterGroup", "rds:RebootDBInstance", purpose="mitigate"),
        ),
        sql=(*_SEE_SESSIONS, *_END_SESSIONS),
    ),
    "investigate.node_snapshot": Needs(
        k8s=_NODE_PODS,
        iam=_iam("ec2:DescribeInstanceStatus", "ec2:DescribeInstances",
                 "autoscaling:DescribeAutoScalingInstances"),
    ),
    "investigate.node_metrics": Needs(iam=_GET_METRICS),
    "investigate.diagnose_node": _NOTHING,
    "investigate.plan_node_drain": Needs(k8s=_DRAIN),
    "investigate.plan_node_reboot": Needs(iam=_iam("ec2:RebootInstances", purpose="mitigate")),
    "investigate.plan_node_replacement": Needs(
        k8s=_DRAIN,
        iam=(*_iam("autoscaling:DescribeAutoScalingGroups"),
             *_iam("autoscaling:TerminateInstanceInAutoScalingGroup", purpose="mitigate")),
    ),
    "investigate.verify_node_replacement": Needs(k8s=_NODE_PODS, iam=_iam("ec2:DescribeInstances")),
    "investigate.collect_changes": Needs(
        k8s=(
            *_k8s("list", "deployments", group="apps"),
            *_k8s("list", "replicasets", group="apps"),
            *_k8s("list", "configmaps"),
            *_k8s("list", "secrets"),  # values are dropped as they are read
        ),
        iam=(
            *_CODEDEPLOY,
            *_iam("cloudtrail:LookupEvents", "cloudformation:ListStacks",
                  "cloudformation:DescribeStackEvents",
                  "guardduty:ListDetectors", "guardduty:ListFindings", "guardduty:GetFindings",
                  "securityhub:GetFindings"),
        ),
    ),
    "investigate.symptom_metrics": Needs(iam=_GET_METRICS),
    "investigate.change_timeline": _NOTHING,
    "investigate.diagnose_what_changed": _NOTHING,
    "investigate.plot_what_changed": _NOTHING,
    "investigate.diagnose_security": _NOTHING,  # reads the findings collect_changes already holds
    # --- rk.triage
    "triage.dashboard_metrics": Needs(iam=_iam("cloudwatch:GetDashboard", "cloudwatch:GetMetricData")),
    "triage.plot_dashboard": _NOTHING,
    "triage.app_health": Needs(k8s=(*_k8s("list", "deployments", group="apps"), *_k8s("list", "pods"))),
    "triage.alb_health": Needs(iam=_GET_METRICS),
    "triage.recent_changes": Needs(
        k8s=_k8s("list", "replicasets", group="apps"), iam=(*_CODEDEPLOY, *_iam("cloudtrail:LookupEvents"))
    ),
    "triage.assess_incident": _NOTHING,
    "triage.record_assessment": _NOTHING,
    # --- rk.verification
    "verification.check_health": _NOTHING,  # HTTP to the given URLs: no cloud permission
    "verification.check_synthetic": _NOTHING,
    "verification.check_deployment": Needs(
        k8s=(*_k8s("get", "deployments", group="apps"), *_k8s("list", "pods"))
    ),
    "verification.check_alarms": Needs(iam=_iam("cloudwatch:DescribeAlarms")),
    "verification.check_alb": Needs(iam=_GET_METRICS),
    "verification.check_error_logs": Needs(iam=_LOGS_INSIGHTS),
    "verification.kubectl_top": Needs(
        k8s=(
            *_k8s("list", "pods", group="metrics.k8s.io", optional=True),
            *_k8s("list", "nodes", group="metrics.k8s.io", cluster_scoped=True, optional=True),
        )
    ),
    "verification.record_verdict": _NOTHING,
}


def steps(nb: Mapping[str, Any]) -> tuple[str, ...]:
    """The `rk.` steps a notebook's code cells call, as `module.step` (`apply` for `rk.apply`), in order."""
    found: dict[str, None] = {}
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        text = cell.get("source", "")
        text = "".join(text) if isinstance(text, list) else text
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue  # a cell the kernel would refuse too; the runbook contract tests catch it
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                name = ast.unparse(node.func)
                if name.startswith("rk."):
                    found.setdefault(name.removeprefix("rk."), None)
    return tuple(found)


def undeclared_steps(nb: Mapping[str, Any]) -> tuple[str, ...]:
    """Steps the notebook calls that STEPS does not declare (empty: its needs are known)."""
    return tuple(s for s in steps(nb) if s not in STEPS)


def _merge_k8s(items: Iterable[K8sPermission]) -> tuple[K8sPermission, ...]:
    """One permission per (verb, resource): required if any step requires it, `read` if any step reads."""
    merged: dict[tuple[str, str, str, str, bool], K8sPermission] = {}
    for p in items:
        key = (p.verb, p.resource, p.group, p.subresource, p.cluster_scoped)
        seen = merged.get(key)
        merged[key] = p if seen is None else dataclasses.replace(
            seen,
            optional=seen.optional and p.optional,
            purpose="read" if "read" in (seen.purpose, p.purpose) else seen.purpose,
        )
    return tuple(merged.values())


def _merge_purpose(items: Iterable[Any], key: str) -> tuple[Any, ...]:
    merged: dict[str, Any] = {}
    for item in items:
        seen = merged.get(getattr(item, key))
        if seen is None or (seen.purpose != "read" and item.purpose == "read"):
            merged[getattr(item, key)] = item
    return tuple(merged.values())


def runbook_needs(nb: Mapping[str, Any]) -> Needs:
    """The union of what the notebook's steps need; UnknownRunbook naming any step not in STEPS."""
    unknown = undeclared_steps(nb)
    if unknown:
        raise UnknownRunbook(
            "calls steps whose permissions runbook_kit/permissions.py does not declare: "
            + ", ".join(f"rk.{s}" for s in unknown)
        )
    parts = [STEPS[s] for s in steps(nb)]
    return Needs(
        k8s=_merge_k8s(p for n in parts for p in n.k8s),
        iam=_merge_purpose((a for n in parts for a in n.iam), "action"),
        sql=_merge_purpose((r for n in parts for r in n.sql), "role"),
    )


def declared() -> dict[str, Needs]:
    """Every runbook on the search path whose steps are all declared in STEPS, with its needs.

    A runbook of `$RUNBOOK_PATH` that calls an undeclared step is left out (`needs(name)` says which
    step), so one custom notebook does not stop `runbook doctor` from checking the others."""
    out = {}
    for book in catalog.runbooks():
        try:
            nb = catalog.load(book.path)
        except (OSError, ValueError, UnknownRunbook):
            continue
        if not undeclared_steps(nb):
            out[book.name] = runbook_needs(nb)
    return out


def needs(name: str) -> Needs:
    """What runbook `name` needs, from the steps its code cells call.

    UnknownRunbook for a name no runbook has, or a runbook calling a step STEPS does not declare."""
    try:
        nb = catalog.load(catalog.find(name).path)
    except OSError as exc:
        raise UnknownRunbook(f"runbook {name!r} cannot be read: {exc}") from None
    try:
        return runbook_needs(nb)
    except UnknownRunbook as exc:
        raise UnknownRunbook(f"runbook {name!r} {exc}") from None
