"""The declared permissions table (runbook_kit/permissions.py) against the runbooks' own prose.

What is checked, per runbook, inside the markdown section that starts at "Permissions needed" in its
first cell:
  * Kubernetes: some bullet line holds both the verb and the resource in backticks (`get` … `pods/log`,
    `deployments` or `deployments.apps`); when a resource name exists in two groups (`pods` and the
    `pods` of metrics.k8s.io) the non-core group must be named on that line too;
  * IAM: the action, e.g. `cloudwatch:GetMetricData`, in backticks;
  * SQL: the predefined role, e.g. `pg_signal_backend`, in backticks.
The prose may say more than the table (a comment, an optional extra); the table may not say more
than the prose, and every shipped runbook must have an entry.
"""

from __future__ import annotations

import re

import pytest

from runbook_kit import catalog, permissions
from runbook_kit.doctor import Check, Report
from runbook_kit.errors import UnknownRunbook
from runbook_kit.permissions import K8sPermission


def permissions_section(name: str) -> str:
    nb = catalog.load(catalog.find(name).path)
    text = next(c["source"] for c in nb["cells"] if c["cell_type"] == "markdown")
    start = text.find("Permissions needed")
    assert start >= 0, f"{name}: the first cell has no 'Permissions needed' section"
    return text[start:]


def bullets(section: str) -> list[str]:
    return [ln for ln in section.splitlines() if ln.lstrip().startswith(("-", "*"))]


def _ambiguous() -> set[str]:
    """Resource names declared in more than one group (`pods` and `pods` of metrics.k8s.io)."""
    groups: dict[str, set[str]] = {}
    for needs in permissions.declared().values():
        for p in needs.k8s:
            groups.setdefault(p.resource, set()).add(p.group)
    return {name for name, gs in groups.items() if len(gs) > 1}


def mentions_rbac(lines: list[str], p: K8sPermission) -> bool:
    """A bullet with the verb and the resource; the group too when the name alone is ambiguous."""
    names = {f"`{p.markdown_name}`", f"`{p.resource}.{p.group}`"} if p.group else {f"`{p.markdown_name}`"}
    need_group = bool(p.group) and p.resource in _ambiguous()
    return any(
        f"`{p.verb}`" in line and any(n in line for n in names) and (not need_group or p.group in line)
        for line in lines
    )


def test_every_shipped_runbook_declares_its_permissions():
    shipped = {b.name for b in catalog.runbooks()}
    assert shipped <= set(permissions.declared()), shipped - set(permissions.declared())


@pytest.mark.parametrize("name", sorted(permissions.declared()))
def test_the_runbook_markdown_names_every_declared_permission(name: str):
    section = permissions_section(name)
    lines = bullets(section)
    needs = permissions.needs(name)
    missing = [f"{p.verb} {p.kubectl_resource}" for p in needs.k8s if not mentions_rbac(lines, p)]
    missing += [a.action for a in needs.iam if f"`{a.action}`" not in section]
    missing += [r.role for r in needs.sql if f"`{r.role}`" not in section]
    assert not missing, f"{name}: declared in permissions.py but not in its 'Permissions needed': {missing}"


def test_rbac_spellings():
    p = K8sPermission("patch", "deployments", group="apps", subresource="scale")
    assert p.kubectl_resource == "deployments.apps/scale" and p.markdown_name == "deployments/scale"
    assert K8sPermission("get", "pods", subresource="log").kubectl_resource == "pods/log"


def test_needs_of_an_undeclared_runbook_is_refused():
    with pytest.raises(UnknownRunbook, match="declares no permissions"):
        permissions.needs("not_a_runbook")


def test_backends_follow_from_the_table():
    assert permissions.needs("pod_crashloop").backends == ("k8s",)
    assert permissions.needs("db_connection_exhaustion").backends == ("aws", "postgres")
    assert set(permissions.needs("api_latency_spike").backends) == {"aws", "k8s"}


def test_report_lines_and_exit_code():
    ok = Check("k8s", "get pods in payments", "ok")
    optional = Check("k8s", "list pods.metrics.k8s.io in payments", "missing", "denied", "kubectl …",
                     required=False)
    report = Report(("pod_crashloop",), (ok, optional))
    assert report.exit_code == 0 and report.missing == []
    assert optional.line().startswith("✗ k8s") and "(optional)" in optional.line()
    assert report.lines()[-1] == "all needed access is present"
    missing = Check("postgres", "pg_signal_backend (mitigate)", "missing", "not granted",
                    'GRANT pg_signal_backend TO "oncall";')
    report = Report(("db_mitigation",), (ok, missing))
    assert report.exit_code == 1
    assert re.search(r'✗ postgres +pg_signal_backend \(mitigate\): not granted  → GRANT pg_signal_backend',
                     report.lines()[2])
    assert report.to_json()["ok"] is False
