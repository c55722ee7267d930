"""What each runbook needs, declared as data: Kubernetes RBAC, IAM actions, PostgreSQL roles.

`runbook doctor` checks this table against the environment before an incident, so it must say what
the runbook's code really calls, not what its prose says: a table in code, read by the doctor, and
a test (tests/doctor/test_permissions.py) that each runbook's "Permissions needed" markdown mentions
every permission declared here, so the prose and the table cannot drift apart silently.

    needs("pod_crashloop").k8s    -> (K8sPermission("get", "pods"), ...)

`purpose` is `read` (the diagnosis) or `mitigate` (what `rk.apply` needs with dry_run=False, and
for Kubernetes also the server-side dry run, which needs the same verb). `optional` permissions
degrade a step instead of failing it (without metrics.k8s.io, usage is reported as unavailable).
Pure data and pure functions: nothing here calls a backend.
"""

from __future__ import annotations

import dataclasses

from runbook_kit.errors import UnknownRunbook

__all__ = ["IamAction", "K8sPermission", "Needs", "SqlRole", "declared", "needs"]


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


_METRICS = (
    *_k8s("get,list", "pods", group="metrics.k8s.io", optional=True),
)
_DEPLOYMENT_READS = (
    *_k8s("get,list", "deployments", group="apps"),
    *_k8s("list", "replicasets", group="apps"),
)
_ROLLBACK = _k8s("patch", "deployments", group="apps", purpose="mitigate")
_RDS_READS = _iam("rds:DescribeDBInstances", "rds:DescribeDBParameters", "cloudwatch:GetMetricData")
_RDS_WRITES = _iam("rds:ModifyDBParameterGroup", "rds:RebootDBInstance", purpose="mitigate")
_SESSIONS = (
    SqlRole("pg_read_all_stats", why="see every session's state and query"),
    SqlRole("pg_signal_backend", purpose="mitigate", why="cancel or terminate other roles' sessions"),
)

_RUNBOOKS: dict[str, Needs] = {
    "pod_crashloop": Needs(
        k8s=(
            *_k8s("get,list", "pods"),
            *_k8s("get", "pods", subresource="log"),
            *_k8s("list", "events"),
            *_k8s("get", "namespaces", cluster_scoped=True),
            *_DEPLOYMENT_READS,
            *_METRICS,
            *_ROLLBACK,
        ),
    ),
    "k8s_mitigation": Needs(
        k8s=(
            *_k8s("get,list", "pods"),
            *_k8s("list", "pods", cluster_scoped=True),  # node status: pods of every namespace
            *_k8s("get,list", "nodes", cluster_scoped=True),
            *_k8s("get", "namespaces", cluster_scoped=True),
            *_DEPLOYMENT_READS,
            *_ROLLBACK,
            *_k8s("patch", "deployments", group="apps", subresource="scale", purpose="mitigate"),
            *_k8s("delete", "pods", purpose="mitigate"),
            *_k8s("patch", "nodes", cluster_scoped=True, purpose="mitigate"),
            *_k8s("create", "pods", subresource="eviction", purpose="mitigate"),
        ),
    ),
    "api_latency_spike": Needs(
        k8s=(*_k8s("get", "deployments", group="apps"), *_k8s("list", "replicasets", group="apps"),
             *_ROLLBACK),
        iam=_iam(
            "cloudwatch:GetMetricData", "logs:StartQuery", "logs:GetQueryResults", "logs:StopQuery",
            "cloudtrail:LookupEvents", "codedeploy:GetApplication", "codedeploy:ListDeploymentGroups",
            "codedeploy:ListDeployments", "codedeploy:BatchGetDeployments",
        ),
    ),
    "db_connection_exhaustion": Needs(iam=(*_RDS_READS, *_RDS_WRITES), sql=_SESSIONS),
    "db_mitigation": Needs(iam=(*_RDS_READS, *_RDS_WRITES), sql=_SESSIONS),
}


def declared() -> dict[str, Needs]:
    """Every runbook with a declared table (a copy)."""
    return dict(_RUNBOOKS)


def needs(name: str) -> Needs:
    """What runbook `name` needs; UnknownRunbook if it declares nothing here."""
    try:
        return _RUNBOOKS[name]
    except KeyError:
        raise UnknownRunbook(
            f"runbook {name!r} declares no permissions in runbook_kit/permissions.py"
        ) from None
