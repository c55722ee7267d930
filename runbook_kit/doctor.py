"""`runbook doctor`: before an incident, what each runbook will be able to do from here.

At 3 a.m. the worst way to learn that the on-call role lacks `pg_signal_backend`, or that the SSO
session expired, is from a failed mitigation cell. The doctor asks each backend, with the same
clients and settings a run would use, and prints one line per check with the command that fixes
what is missing:

    AWS         sts:GetCallerIdentity (who, which account) and the region the kit will use; an expired
                or missing SSO session names `aws sso login --profile P`. IAM actions are listed, not
                verified: that needs a policy simulation the caller is rarely allowed to run.
    Kubernetes  the kubeconfig context and server, the user (SelfSubjectReview, when served), and one
                SelfSubjectAccessReview per RBAC verb in permissions.py: exactly `kubectl auth can-i`.
    PostgreSQL  connect as a run would, then `pg_has_role(current_user, role, 'USAGE')` for each
                predefined role the runbook needs (USAGE: the role's privileges are in effect, which
                is what a query needs; MEMBER alone is not enough for a NOINHERIT member).

It never changes anything (a review is a question, not a write). A check that cannot be done is a
line of its own saying why; it does not stop the others (a dead API server is one line, not twenty).
`check_access` returns a `Report`; the CLI prints it (exit 0 all present, 1 something missing).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from runbook_kit import clients, permissions, settings
from runbook_kit.errors import BackendError, Forbidden, NotFound, Unavailable, backend_call
from runbook_kit.permissions import K8sPermission, Needs, SqlRole

__all__ = ["Check", "Report", "check_access", "check_aws", "check_k8s", "check_postgres"]

OK, MISSING, UNCHECKED = "ok", "missing", "unchecked"
_MARKS = {OK: "✓", MISSING: "✗", UNCHECKED: "·"}
_SSO_ERRORS = {"UnauthorizedSSOTokenError", "SSOTokenLoadError", "TokenRetrievalError", "SSOError"}


@dataclasses.dataclass(frozen=True)
class Check:
    backend: str  # aws | k8s | postgres
    what: str  # "patch deployments.apps in payments"
    status: str  # ok | missing | unchecked
    detail: str = ""
    fix: str = ""  # the command that fixes a missing check
    required: bool = True  # an optional check that is missing degrades a step, it does not fail
    runbooks: tuple[str, ...] = ()

    def line(self) -> str:
        text = f"{_MARKS[self.status]} {self.backend:<8} {self.what}"
        if self.detail:
            text += f": {self.detail}"
        if self.status == MISSING and not self.required:
            text += " (optional)"
        if self.fix:
            text += f"  → {self.fix}"
        return text


@dataclasses.dataclass(frozen=True)
class Report:
    runbooks: tuple[str, ...]
    checks: tuple[Check, ...]

    @property
    def missing(self) -> list[Check]:
        return [c for c in self.checks if c.status == MISSING and c.required]

    @property
    def exit_code(self) -> int:
        return 1 if self.missing else 0

    def lines(self) -> list[str]:
        out = [f"access needed by {', '.join(self.runbooks)}, checked from here:"]
        out += [f"  {c.line()}" for c in self.checks]
        n = len(self.missing)
        out.append("all needed access is present" if not n else
                   f"{n} missing: run the command after → (or ask whoever administers that system)")
        return out

    def to_json(self) -> dict[str, Any]:
        return {"runbooks": list(self.runbooks), "ok": not self.missing,
                "checks": [dataclasses.asdict(c) for c in self.checks]}


def _why(err: BackendError) -> str:
    """The error without the 'backend op:' prefix that the check's line already says."""
    return f"{err.reason}: {err.message}" if err.message else err.reason


# --- AWS ---------------------------------------------------------------------------------------

def _profile() -> str:
    return settings.get().aws_profile or "default"


def _aws_fix(err: BackendError) -> tuple[str, str]:
    """(what went wrong, the fix) for a failed sts:GetCallerIdentity."""
    cause = type(err.__cause__).__name__ if err.__cause__ is not None else ""
    if cause in _SSO_ERRORS:
        return (f"the SSO session of profile {_profile()} has expired or was never started",
                f"aws sso login --profile {_profile()}")
    if "ExpiredToken" in str(err) or "expired" in str(err).lower():
        if settings.get().aws_profile:
            return _why(err), f"aws sso login --profile {_profile()}"
        return _why(err), "renew the temporary credentials (AWS_SESSION_TOKEN) or use a profile"
    if cause == "ProfileNotFound":
        return _why(err), "aws configure list-profiles, then export AWS_PROFILE=<one of them>"
    if cause in {"NoCredentialsError", "PartialCredentialsError"}:
        return _why(err), "aws configure sso --profile <name>, then export AWS_PROFILE=<name>"
    if isinstance(err, Unavailable):
        return _why(err), "check the network path to AWS (or AWS_ENDPOINT_URL)"
    return _why(err), "check the credentials: aws sts get-caller-identity"


def check_aws(*, iam: Iterable[tuple[str, tuple[str, ...]]] = (), sts: Any | None = None) -> list[Check]:
    """Identity and region; `iam` ((action, runbooks) pairs) is listed as not verified."""
    checks: list[Check] = []
    try:
        sts = sts or clients.aws("sts")
        with backend_call("aws", "sts get-caller-identity"):
            who = sts.get_caller_identity()
        endpoint = settings.get().aws_endpoint_url
        where = f", endpoint {endpoint}" if endpoint else ""
        checks.append(Check("aws", "identity", OK, f"{who['Arn']} (account {who['Account']}{where})"))
    except BackendError as err:
        detail, fix = _aws_fix(err)
        checks.append(Check("aws", "identity", MISSING, detail, fix))
    try:
        region = clients.aws_region()
    except BackendError:  # a profile that cannot be loaded: the identity line already says so
        pass
    else:
        if region:
            checks.append(Check("aws", "region", OK, region))
        else:
            checks.append(Check("aws", "region", MISSING, "not set: AWS calls would go to us-east-1",
                                f"aws configure set region <region> --profile {_profile()} (or AWS_REGION)"))
    actions = sorted(iam)
    if actions:
        names = ", ".join(a for a, _ in actions)
        runbooks = tuple(sorted({r for _, rs in actions for r in rs}))
        checks.append(Check("aws", "IAM actions", UNCHECKED,
                            f"not verified here (needs a policy simulation): {names}", runbooks=runbooks))
    return checks


# --- Kubernetes --------------------------------------------------------------------------------

def _describe(p: K8sPermission, namespace: str) -> str:
    scope = "cluster-wide" if p.cluster_scoped else f"in {namespace or 'every namespace'}"
    tail = f" ({p.purpose})" if p.purpose != "read" else ""
    return f"{p.verb} {p.kubectl_resource} {scope}{tail}"


def _rbac_fix(p: K8sPermission, namespace: str, user: str) -> str:
    name = f"runbook-{p.verb}-{p.kubectl_resource}".replace("/", "-")
    if p.cluster_scoped or not namespace:
        return (f"kubectl create clusterrole {name} --verb={p.verb} --resource={p.kubectl_resource} && "
                f"kubectl create clusterrolebinding {name} --clusterrole={name} --user={user}")
    return (f"kubectl create role {name} -n {namespace} --verb={p.verb} --resource={p.kubectl_resource} && "
            f"kubectl create rolebinding {name} -n {namespace} --role={name} --user={user}")


def _review_body(p: K8sPermission, namespace: str) -> dict[str, Any]:
    attrs = {"verb": p.verb, "group": p.group, "resource": p.resource}
    if p.subresource:
        attrs["subresource"] = p.subresource
    if namespace and not p.cluster_scoped:
        attrs["namespace"] = namespace
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attrs}}


def _whoami(authn: Any) -> str | None:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    try:
        with backend_call("k8s", "self subject review"):
            review = authn.create_self_subject_review(body)
    except (NotFound, Forbidden):  # not served before 1.28, or not allowed: the user stays unnamed
        return None
    info = getattr(getattr(review, "status", None), "user_info", None)
    return getattr(info, "username", None) or None


def check_k8s(
    *,
    rbac: Sequence[tuple[K8sPermission, tuple[str, ...]]],
    namespace: str | None = None,
    context: str | None = None,
    authz: Any | None = None,
    authn: Any | None = None,
) -> list[Check]:
    """The context, then one SelfSubjectAccessReview per permission (in `namespace`, else the
    context's namespace, as `kubectl auth can-i` does)."""
    try:
        ctx = clients.kube_context(context=context)
    except BackendError as err:
        fix = "set KUBECONFIG (on EKS: aws eks update-kubeconfig --name <cluster>) or RUNBOOK_KUBE_CONTEXT"
        return [Check("k8s", "context", MISSING, _why(err), fix)]
    namespace = namespace or ctx["namespace"]
    try:
        user = _whoami(authn or clients.authentication_v1(context=context))
    except BackendError as err:
        return [Check("k8s", f"context {ctx['name']}", MISSING, f"server {ctx['server']}: {_why(err)}",
                      "check that the cluster is reachable: kubectl cluster-info")]
    who = f"user {user}" if user else f"kubeconfig user {ctx['user'] or '?'}"
    checks = [Check("k8s", f"context {ctx['name']}", OK, f"{who}, server {ctx['server']}")]
    authz = authz or clients.authorization_v1(context=context)
    for p, runbooks in rbac:
        what = _describe(p, namespace)
        try:
            with backend_call("k8s", "self subject access review"):
                status = authz.create_self_subject_access_review(_review_body(p, namespace)).status
        except Unavailable as err:  # the server went away: one line, not one per permission
            checks.append(Check("k8s", "access reviews", MISSING, _why(err),
                                "check that the cluster is reachable: kubectl cluster-info"))
            break
        except BackendError as err:
            checks.append(Check("k8s", what, UNCHECKED, f"cannot ask: {_why(err)}", runbooks=runbooks))
            continue
        if status.allowed:
            checks.append(Check("k8s", what, OK, runbooks=runbooks))
        else:
            reason = status.reason or "denied"
            checks.append(Check("k8s", what, MISSING, reason, _rbac_fix(p, namespace, user or "<user>"),
                                required=not p.optional, runbooks=runbooks))
    return checks


# --- PostgreSQL --------------------------------------------------------------------------------

def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def check_postgres(
    *, roles: Sequence[tuple[SqlRole, tuple[str, ...]]], dsn: str | None = None,
    connect: Callable[..., Any] | None = None,
) -> list[Check]:
    """Connect as a run would, then whether each predefined role's privileges are in effect."""
    try:
        with backend_call("postgres", "connect"):
            conn = (connect or clients.pg_connect)(dsn or None)
    except BackendError as err:
        fix = ("check the password in ~/.pgpass and the server's pg_hba.conf" if isinstance(err, Forbidden)
               else "set RUNBOOK_DSN (or PGHOST, PGUSER, PGDATABASE), passwords in ~/.pgpass")
        return [Check("postgres", "connect", MISSING, _why(err), fix)]
    checks: list[Check] = []
    try:
        with conn, backend_call("postgres", "read role memberships"):
            row = conn.execute(
                "SELECT current_user, current_database(), current_setting('server_version'), "
                "r.rolsuper, pg_has_role(current_user, 'pg_monitor', 'MEMBER') "
                "FROM pg_roles r WHERE r.rolname = current_user").fetchone()
            user, database, version, superuser, monitor = row or ("?", "?", "?", False, False)
            extra = ", superuser" if superuser else ", member of pg_monitor" if monitor else ""
            checks.append(Check("postgres", "connect", OK,
                                f"database {database} as {user} (PostgreSQL {version}{extra})"))
            for role, runbooks in roles:
                granted = (conn.execute(
                    "SELECT pg_has_role(current_user, %s, 'USAGE')", (role.role,)).fetchone() or (False,))[0]
                what = f"{role.role} ({role.purpose})" if role.purpose != "read" else role.role
                if granted:
                    checks.append(Check("postgres", what, OK, role.why, runbooks=runbooks))
                    continue
                fix = f"GRANT {role.role} TO {_ident(user)};  -- as an admin (on RDS: the master user)"
                checks.append(Check("postgres", what, MISSING, f"not granted to {user}: cannot {role.why}",
                                    fix, runbooks=runbooks))
    except BackendError as err:
        checks.append(Check("postgres", "role memberships", UNCHECKED, f"cannot read them: {_why(err)}"))
    return checks


# --- all together ------------------------------------------------------------------------------

def _gather(books: dict[str, Needs], attr: str) -> list[tuple[Any, tuple[str, ...]]]:
    """Each distinct permission once, in declaration order, with the runbooks that need it."""
    seen: dict[Any, list[str]] = {}
    for name, needs in books.items():
        for item in getattr(needs, attr):
            seen.setdefault(item, []).append(name)
    return [(item, tuple(names)) for item, names in seen.items()]


def check_access(
    runbook: str | None = None, *, namespace: str | None = None, context: str | None = None,
    dsn: str | None = None,
) -> Report:
    """What `runbook` (default: every runbook in permissions.py) needs, checked against here.

    Only the backends the runbooks use are asked. Raises UnknownRunbook for a runbook that declares
    nothing (the CLI turns it into exit code 2)."""
    if runbook and runbook not in permissions.declared():
        from runbook_kit import catalog

        catalog.find(runbook)  # an unknown name: UnknownRunbook with the closest known name
    books = {runbook: permissions.needs(runbook)} if runbook else permissions.declared()
    checks: list[Check] = []
    rbac = _gather(books, "k8s")
    if rbac:
        checks += check_k8s(rbac=rbac, namespace=namespace, context=context)
    roles = _gather(books, "sql")
    if roles:
        checks += check_postgres(roles=roles, dsn=dsn)
    iam = [(a.action, names) for a, names in _gather(books, "iam")]
    if iam:
        checks += check_aws(iam=iam)
    return Report(tuple(books), tuple(checks))
