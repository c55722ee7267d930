"""The resources the sandbox serves, described once: discovery, routing and messages read this table.

Everything a client learns about the API (which group/version a plural lives in, its kind, short
names, verbs, subresources) comes from discovery; kubectl resolves `deploy`, `po`, `pdb` and checks
eviction support from it. One table keeps discovery, the router and error messages from drifting apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Resource:
    plural: str
    kind: str
    group: str
    version: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ("create", "delete", "get", "list", "patch", "update", "watch")
    categories: tuple[str, ...] = ()
    subresources: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = field(default=())
    # (name, group, version, kind, verbs) of each subresource

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()


_RO = ("get", "list")
RESOURCES: tuple[Resource, ...] = (
    Resource("namespaces", "Namespace", "", "v1", False, ("ns",)),
    Resource("nodes", "Node", "", "v1", False, ("no",)),
    Resource(
        "pods",
        "Pod",
        "",
        "v1",
        True,
        ("po",),
        categories=("all",),
        subresources=(
            ("log", "", "v1", "Pod", ("get",)),
            ("eviction", "policy", "v1", "Eviction", ("create",)),
            ("status", "", "v1", "Pod", ("get", "patch", "update")),
        ),
    ),
    Resource("events", "Event", "", "v1", True, ("ev",)),
    Resource("configmaps", "ConfigMap", "", "v1", True, ("cm",)),
    Resource("secrets", "Secret", "", "v1", True),
    Resource("serviceaccounts", "ServiceAccount", "", "v1", True, ("sa",)),
    Resource(
        "deployments",
        "Deployment",
        "apps",
        "v1",
        True,
        ("deploy",),
        categories=("all",),
        subresources=(
            ("scale", "autoscaling", "v1", "Scale", ("get", "patch", "update")),
            ("status", "apps", "v1", "Deployment", ("get", "patch", "update")),
        ),
    ),
    Resource(
        "replicasets",
        "ReplicaSet",
        "apps",
        "v1",
        True,
        ("rs",),
        categories=("all",),
        subresources=(
            ("scale", "autoscaling", "v1", "Scale", ("get", "patch", "update")),
            ("status", "apps", "v1", "ReplicaSet", ("get", "patch", "update")),
        ),
    ),
    Resource("daemonsets", "DaemonSet", "apps", "v1", True, ("ds",), categories=("all",)),
    Resource(
        "jobs",
        "Job",
        "batch",
        "v1",
        True,
        categories=("all",),
        subresources=(("status", "batch", "v1", "Job", ("get", "patch", "update")),),
    ),
    Resource("poddisruptionbudgets", "PodDisruptionBudget", "policy", "v1", True, ("pdb",)),
    Resource("pods", "PodMetrics", "metrics.k8s.io", "v1beta1", True, verbs=_RO),
    Resource("nodes", "NodeMetrics", "metrics.k8s.io", "v1beta1", False, verbs=_RO),
    # RBAC (rbac.py: enforced for requests made with a ServiceAccount's token)
    Resource("roles", "Role", "rbac.authorization.k8s.io", "v1", True),
    Resource("rolebindings", "RoleBinding", "rbac.authorization.k8s.io", "v1", True),
    Resource("clusterroles", "ClusterRole", "rbac.authorization.k8s.io", "v1", False),
    Resource("clusterrolebindings", "ClusterRoleBinding", "rbac.authorization.k8s.io", "v1", False),
    # reviews (access.py): answered, never stored
    Resource("selfsubjectaccessreviews", "SelfSubjectAccessReview", "authorization.k8s.io", "v1", False,
             verbs=("create",)),
    Resource("selfsubjectreviews", "SelfSubjectReview", "authentication.k8s.io", "v1", False,
             verbs=("create",)),
)
VIRTUAL_GROUPS = frozenset({"metrics.k8s.io", "authorization.k8s.io", "authentication.k8s.io"})

BY_PATH: dict[tuple[str, str, str], Resource] = {(r.group, r.version, r.plural): r for r in RESOURCES}
GROUP_VERSIONS: dict[str, list[str]] = {}
for _r in RESOURCES:
    GROUP_VERSIONS.setdefault(_r.group, [])
    if _r.version not in GROUP_VERSIONS[_r.group]:
        GROUP_VERSIONS[_r.group].append(_r.version)

# Objects live in the store under these keys (metrics are computed and reviews answered, never stored).
STORED = {r.plural for r in RESOURCES if r.group not in VIRTUAL_GROUPS}


def lookup(group: str, version: str, plural: str) -> Resource | None:
    return BY_PATH.get((group, version, plural))


def of_plural(plural: str) -> Resource:
    for r in RESOURCES:
        if r.plural == plural and r.group not in VIRTUAL_GROUPS:
            return r
    raise KeyError(plural)
