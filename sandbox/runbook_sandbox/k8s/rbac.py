"""RBAC for requests made with a ServiceAccount's token: what a Job pod's process may do.

Roles, ClusterRoles, RoleBindings and ClusterRoleBindings (rbac.authorization.k8s.io/v1) are stored
like other objects. A request whose token names a ServiceAccount (localpods.py gives Job pods one) is
allowed only when a bound rule allows its verb on its resource, as the API server's RBAC authorizer
decides: RoleBindings in the request's namespace (to a Role there or a ClusterRole), ClusterRoleBindings
everywhere; subjects matched by ServiceAccount, or by the groups `system:serviceaccounts`,
`system:serviceaccounts:NS` and `system:authenticated`; rules matched on apiGroups, resources
(`pods/log` for a subresource), verbs and resourceNames, `*` matching anything. Otherwise 403
Forbidden with the API server's message. Discovery and self reviews are allowed to every
authenticated identity (the default `system:discovery` and `system:basic-user` bindings).
Requests with the sandbox's admin credentials are always allowed. Aggregated ClusterRoles and
nonResourceURLs rules are not evaluated. The bootstrap ClusterRoles `cluster-admin`, `admin`, `edit`
and `view` exist, with rules close to the real ones (view cannot read Secrets).
"""

from __future__ import annotations

from typing import Any

from runbook_sandbox.k8s.status import ApiError
from runbook_sandbox.k8s.store import Store

ALWAYS = {"selfsubjectaccessreviews", "selfsubjectreviews", "selfsubjectrulesreviews"}
_READ = ["get", "list", "watch"]
_WRITE = ["create", "delete", "deletecollection", "patch", "update"]
_WORKLOADS = [
    "deployments",
    "replicasets",
    "daemonsets",
    "statefulsets",
    "deployments/scale",
    "replicasets/scale",
]
_CORE = [
    "pods",
    "pods/log",
    "pods/status",
    "configmaps",
    "events",
    "serviceaccounts",
    "services",
    "endpoints",
    "persistentvolumeclaims",
    "replicationcontrollers",
    "namespaces",
]


def _role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
        "rules": rules,
    }


def bootstrap_roles() -> list[dict[str, Any]]:
    view = [
        {"apiGroups": [""], "resources": _CORE, "verbs": _READ},
        {"apiGroups": ["apps"], "resources": _WORKLOADS, "verbs": _READ},
        {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": _READ},
        {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": _READ},
        # metrics-server's system:aggregated-metrics-reader, aggregated into view/edit/admin
        {"apiGroups": ["metrics.k8s.io"], "resources": ["pods", "nodes"], "verbs": _READ},
    ]
    edit = [dict(rule, verbs=_READ + _WRITE) for rule in view] + [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": _READ + _WRITE},
        {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
    ]
    admin = [
        *edit,
        {
            "apiGroups": ["rbac.authorization.k8s.io"],
            "resources": ["roles", "rolebindings"],
            "verbs": _READ + _WRITE,
        },
    ]
    return [
        _role("cluster-admin", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
        _role("admin", admin),
        _role("edit", edit),
        _role("view", view),
    ]


def _subject_matches(subject: dict[str, Any], *, namespace: str, name: str, binding_ns: str) -> bool:
    kind = subject.get("kind")
    if kind == "ServiceAccount":
        return subject.get("name") == name and (subject.get("namespace") or binding_ns) == namespace
    if kind == "Group":
        return subject.get("name") in (
            "system:serviceaccounts",
            f"system:serviceaccounts:{namespace}",
            "system:authenticated",
        )
    if kind == "User":
        return subject.get("name") == f"system:serviceaccount:{namespace}:{name}"
    return False


def _rule_allows(rule: dict[str, Any], *, verb: str, group: str, resource: str, name: str | None) -> bool:
    def has(values: Any, wanted: str) -> bool:
        return isinstance(values, list) and ("*" in values or wanted in values)

    if not (has(rule.get("verbs"), verb) and has(rule.get("apiGroups"), group)):
        return False
    resources = rule.get("resources") or []
    _, _, sub = resource.partition("/")
    if not (has(resources, resource) or (sub and f"*/{sub}" in resources)):
        return False
    names = rule.get("resourceNames") or []
    return not names or (name is not None and name in names)


def rules_for(
    store: Store, *, sa_namespace: str, sa_name: str, namespace: str | None
) -> list[dict[str, Any]]:
    """Every rule bound to the ServiceAccount that applies in `namespace` (None: cluster scope)."""
    found: list[dict[str, Any]] = []

    def role_rules(ref: dict[str, Any], binding_ns: str) -> list[dict[str, Any]]:
        if ref.get("kind") == "Role":
            role = store.get("roles", binding_ns, ref.get("name", ""))
        else:
            role = store.get("clusterroles", "", ref.get("name", ""))
        return list((role or {}).get("rules") or [])

    bindings = [(b, "") for b in store.items("clusterrolebindings")]
    if namespace:
        bindings += [(b, namespace) for b in store.items("rolebindings", namespace)]
    for binding, binding_ns in bindings:
        if any(
            _subject_matches(s, namespace=sa_namespace, name=sa_name, binding_ns=binding_ns)
            for s in binding.get("subjects") or []
        ):
            found += role_rules(binding.get("roleRef") or {}, binding_ns)
    return found


def allowed(
    store: Store,
    *,
    user: tuple[str, str],
    verb: str,
    group: str,
    resource: str,
    namespace: str | None,
    name: str | None,
) -> bool:
    if resource in ALWAYS:
        return True
    rules = rules_for(store, sa_namespace=user[0], sa_name=user[1], namespace=namespace)
    return any(_rule_allows(r, verb=verb, group=group, resource=resource, name=name) for r in rules)


def forbidden(
    *, username: str, verb: str, group: str, resource: str, namespace: str | None, name: str | None
) -> ApiError:
    """The API server's 403 for an RBAC denial."""
    base, _, _ = resource.partition("/")
    qualified = f"{base}.{group}" if group else base
    subject = f'{qualified} "{name}"' if name else qualified
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    message = (
        f'{subject} is forbidden: User "{username}" cannot {verb} resource "{resource}" '
        f'in API group "{group}" {scope}'
    )
    details: dict[str, Any] = {"group": group, "kind": base}
    if name:
        details["name"] = name
    return ApiError(403, message, reason="Forbidden", details=details)


def verb_of(method: str, *, named: bool, watch: bool) -> str:
    if method == "GET":
        return "get" if named else ("watch" if watch else "list")
    if method == "DELETE":
        return "delete" if named else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


def authorize(
    store: Store,
    *,
    username: str,
    method: str,
    query: dict[str, str],
    group: str,
    plural: str,
    sub: str | None,
    namespace: str | None,
    name: str | None,
) -> None:
    """Raise 403 unless the ServiceAccount `username` (system:serviceaccount:NS:NAME) may do this."""
    _, _, rest = username.partition("system:serviceaccount:")
    sa_namespace, _, sa_name = rest.partition(":")
    verb = (
        "create"
        if method == "POST" and sub
        else verb_of(method, named=name is not None, watch=query.get("watch") in ("true", "1"))
    )
    if sub == "log" or (sub and method == "GET"):
        verb = "get"
    resource = f"{plural}/{sub}" if sub else plural
    if not allowed(
        store,
        user=(sa_namespace, sa_name),
        verb=verb,
        group=group,
        resource=resource,
        namespace=namespace,
        name=name,
    ):
        raise forbidden(
            username=username, verb=verb, group=group, resource=resource, namespace=namespace, name=name
        )


def review(store: Store, *, username: str, attrs: dict[str, Any]) -> dict[str, Any]:
    """The status of a SelfSubjectAccessReview by a ServiceAccount, from RBAC."""
    _, _, rest = username.partition("system:serviceaccount:")
    sa_namespace, _, sa_name = rest.partition(":")
    resource = attrs.get("resource", "")
    if attrs.get("subresource"):
        resource = f"{resource}/{attrs['subresource']}"
    ok = allowed(
        store,
        user=(sa_namespace, sa_name),
        verb=str(attrs.get("verb", "")),
        group=str(attrs.get("group", "")),
        resource=resource,
        namespace=attrs.get("namespace") or None,
        name=attrs.get("name") or None,
    )
    return {"allowed": ok, "reason": "RBAC: allowed by a bound rule" if ok else ""}
