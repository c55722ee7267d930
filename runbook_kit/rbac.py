"""`runbook rbac RUNBOOK`: the least-privilege identity a runbook runs under, from what it declares.

The permissions are never written by hand here: they are `permissions.needs(runbook)`, the union of
what the steps its code cells call need. This module turns them into the objects an administrator
applies: a ServiceAccount (`runbook-<runbook>`, the name the Kubernetes Job executor uses by
default), a Role + RoleBinding per namespace the runbook reads (`-n`, repeatable) for namespaced
resources, and a ClusterRole + ClusterRoleBinding for what is cluster-scoped (nodes, namespaces,
metrics.k8s.io nodes, pods listed across all namespaces). With `cluster_wide=True` the namespaced
rules go into the ClusterRole too (a runbook whose namespace is a parameter chosen per alert).

Every rule is minimal: exactly the verbs and resources (subresources spelled `pods/log`) declared,
one rule per API group and verb set, never `*`. Optional permissions (metrics.k8s.io: usage is
reported as unavailable without it) are included, because the runbook does call them; `mitigate`
permissions are left out with `read_only=True` (an identity for diagnosis only: its mitigations are
then refused by the API server, and the guard records the refusal).

Beside Kubernetes: the IAM policy of the AWS actions (for IRSA: attach it to the role that the
ServiceAccount's `eks.amazonaws.com/role-arn` annotation names) and the PostgreSQL GRANTs of the
predefined roles it needs. IAM actions are exact (no wildcards); their `Resource` is `*` because the
targets (an RDS instance, an Auto Scaling group) are parameters known only per run, and most of the
read actions (cloudwatch:GetMetricData, logs:StartQuery, cloudtrail:LookupEvents) support no
resource-level permission at all; narrow the mutating statement by hand where your targets are fixed.

Pure: builds plain dicts (the Kubernetes API's JSON), touches nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from runbook_kit import permissions
from runbook_kit.errors import ParameterError

__all__ = ["Identity", "default_service_account", "iam_policy", "identity", "sql_grants"]

MANAGED_BY = "runbook-kit"
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_LABEL = "runbook-kit.io/runbook"
_DNS = re.compile(r"[^a-z0-9-]+")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def default_service_account(runbook: str) -> str:
    """`runbook-<runbook>` with `_` → `-`, DNS-safe: the Job executor's default ServiceAccount."""
    name = _DNS.sub("-", f"runbook-{runbook}".lower().replace("_", "-"))
    return re.sub(r"-{2,}", "-", name)[:63].strip("-")


def _check_name(what: str, name: str) -> str:
    if not _DNS_LABEL.match(name):
        raise ParameterError(f"{what} {name!r} is not a valid Kubernetes name "
                             "(lower case letters, digits and '-', at most 63)")
    return name


def _rules(perms: Iterable[permissions.K8sPermission]) -> list[dict[str, Any]]:
    """Policy rules: per API group, resources sharing the same verbs in one rule; sorted, stable."""
    verbs: dict[tuple[str, str], set[str]] = {}
    for p in perms:
        verbs.setdefault((p.group, p.markdown_name), set()).add(p.verb)
    grouped: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for (group, resource), vs in sorted(verbs.items()):
        grouped.setdefault((group, tuple(sorted(vs))), []).append(resource)
    return [{"apiGroups": [group], "resources": sorted(resources), "verbs": list(vs)}
            for (group, vs), resources in sorted(grouped.items())]


class Identity:
    """What one runbook needs, as objects to apply and documents to hand to AWS and the DBA."""

    def __init__(self, *, runbook: str, needs: permissions.Needs, service_account: str,
                 service_account_namespace: str, namespaces: Sequence[str], cluster_wide: bool,
                 read_only: bool, iam_role_arn: str | None = None) -> None:
        self.runbook, self.needs, self.iam_role_arn = runbook, needs, iam_role_arn
        self.service_account, self.sa_namespace = service_account, service_account_namespace
        self.namespaces, self.cluster_wide, self.read_only = tuple(namespaces), cluster_wide, read_only

    def _wanted(self, perms: Iterable[Any]) -> list[Any]:
        return [p for p in perms if not (self.read_only and p.purpose == "mitigate")]

    @property
    def namespaced(self) -> list[permissions.K8sPermission]:
        return [p for p in self._wanted(self.needs.k8s) if not p.cluster_scoped]

    @property
    def cluster_scoped(self) -> list[permissions.K8sPermission]:
        return [p for p in self._wanted(self.needs.k8s) if p.cluster_scoped]

    def _meta(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace is not None else {})}
        meta["labels"] = {"app.kubernetes.io/managed-by": MANAGED_BY, _LABEL: self.runbook.replace("_", "-")}
        return meta

    def _subject(self) -> list[dict[str, Any]]:
        return [{"kind": "ServiceAccount", "name": self.service_account, "namespace": self.sa_namespace}]

    def kubernetes(self) -> list[dict[str, Any]]:
        """ServiceAccount, then Role/RoleBinding per namespace, then ClusterRole/ClusterRoleBinding."""
        meta = self._meta(self.service_account, self.sa_namespace)
        if self.iam_role_arn is not None:  # IRSA: the pod's AWS identity, by reference
            meta["annotations"] = {IRSA_ANNOTATION: self.iam_role_arn}
        account: dict[str, Any] = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}
        out: list[dict[str, Any]] = [account]
        rbac = "rbac.authorization.k8s.io/v1"
        namespaced = self.namespaced
        if namespaced and not self.cluster_wide:
            for ns in self.namespaces:
                out.append({"apiVersion": rbac, "kind": "Role",
                            "metadata": self._meta(self.service_account, ns), "rules": _rules(namespaced)})
                out.append({"apiVersion": rbac, "kind": "RoleBinding",
                            "metadata": self._meta(self.service_account, ns),
                            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                        "name": self.service_account},
                            "subjects": self._subject()})
        cluster = self.cluster_scoped + (namespaced if self.cluster_wide else [])
        if cluster:
            # cluster-wide names are global: the ServiceAccount's namespace keeps two installs apart
            name = f"runbook-kit:{self.sa_namespace}:{self.service_account}"
            out.append({"apiVersion": rbac, "kind": "ClusterRole", "metadata": self._meta(name),
                        "rules": _rules(cluster)})
            out.append({"apiVersion": rbac, "kind": "ClusterRoleBinding", "metadata": self._meta(name),
                        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                    "name": name},
                        "subjects": self._subject()})
        return out


def identity(runbook: str, *, namespaces: Sequence[str] = (), service_account: str | None = None,
             service_account_namespace: str | None = None, cluster_wide: bool = False,
             read_only: bool = False, iam_role_arn: str | None = None) -> Identity:
    """The identity of `runbook` (UnknownRunbook for a name no runbook has).

    ParameterError when the runbook reads namespaced resources and neither a namespace nor
    `cluster_wide` says where: a Role in a guessed namespace would grant the wrong thing."""
    needs = permissions.needs(runbook)
    name = default_service_account(runbook) if service_account is None else service_account
    _check_name("service account", name)
    for ns in namespaces:
        _check_name("namespace", ns)
    namespaces = tuple(dict.fromkeys(namespaces))
    sa_ns = service_account_namespace or (namespaces[0] if namespaces else "default")
    _check_name("service account namespace", sa_ns)
    if iam_role_arn is not None and not _ROLE_ARN.match(iam_role_arn):
        raise ParameterError(f"--iam-role-arn {iam_role_arn!r} is not an IAM role ARN "
                             "(arn:aws:iam::<12-digit account>:role/<name>)")
    out = Identity(runbook=runbook, needs=needs, service_account=name, service_account_namespace=sa_ns,
                   namespaces=namespaces, cluster_wide=cluster_wide, read_only=read_only,
                   iam_role_arn=iam_role_arn)
    if out.namespaced and not namespaces and not cluster_wide:
        raise ParameterError(f"runbook {runbook!r} reads namespaced resources: name the namespace(s) "
                             "with -n NAMESPACE (repeatable), or grant them in every namespace with "
                             "--cluster-wide")
    return out


def iam_policy(ident: Identity) -> dict[str, Any] | None:
    """The IAM policy document of the runbook's AWS actions (None when it makes no AWS call)."""
    actions = ident._wanted(ident.needs.iam)
    if not actions:
        return None
    statements = []
    for purpose, sid in (("read", "RunbookRead"), ("mitigate", "RunbookMitigate")):
        chosen = sorted({a.action for a in actions if a.purpose == purpose})
        if chosen:
            statements.append({"Sid": sid, "Effect": "Allow", "Action": chosen, "Resource": "*"})
    return {"Version": "2012-10-17", "Statement": statements}


def sql_grants(ident: Identity, *, role: str) -> list[str]:
    """`GRANT <predefined role> TO "<role>";` per PostgreSQL role the runbook needs, with why."""
    quoted = '"' + role.replace('"', '""') + '"'
    return [f"GRANT {r.role} TO {quoted};  -- {r.purpose}: {r.why}".rstrip(": ")
            for r in ident._wanted(ident.needs.sql)]
