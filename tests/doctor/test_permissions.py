"""runbook_kit/permissions.py (the one source) against the steps the runbooks call and their prose.

A runbook's needs are derived from the `rk.` steps its code cells call (permissions.STEPS). What is
checked, per runbook, inside the markdown section that starts at "Permissions needed" in its first
cell (bullets in the standard form `- **Kubernetes RBAC** …`, `- **IAM** …`, `- **SQL** …`; other
bullets such as **EKS**, **HTTP** or **git** describe access outside the runbook's steps and are
not parsed):
  * declared → listed: Kubernetes: some bullet line holds both the verb and the resource in backticks
    (`get` … `pods/log`, `deployments` or `deployments.apps`); when a resource name exists in two
    groups (`pods` and the `pods` of metrics.k8s.io) the non-core group must be named on that line
    too. IAM: the action, e.g. `cloudwatch:GetMetricData`, in backticks. SQL: the predefined role,
    e.g. `pg_signal_backend`, in backticks;
  * listed → declared: every backticked IAM action of an **IAM** bullet and every `pg_*` role of a
    **SQL** bullet is declared; in a **Kubernetes RBAC** bullet, within each clause (`;`-separated:
    "`get`, `list` on `pods`, `events`"), every resource is declared with one of the clause's verbs
    and every verb on one of its resources (prose groups verbs, so not every pair need be declared).
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


SHIPPED = (
    "api_latency_spike", "db_connection_exhaustion", "db_mitigation", "k8s_mitigation", "node_health",
    "pod_crashloop", "triage", "verify_resolution", "what_changed",
)
VERBS = {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
IAM_ACTION = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9*]+$")
# `pods`, `pods/log`, `deployments.apps`; not `dryRun=All`
RESOURCE = re.compile(r"^[a-z][a-z0-9.-]*(/[a-z]+)?$")


def test_every_shipped_runbook_declares_its_permissions():
    shipped = {b.name for b in catalog.runbooks()}
    assert shipped >= set(SHIPPED)
    assert shipped <= set(permissions.declared()), shipped - set(permissions.declared())
    for name in SHIPPED:
        nb = catalog.load(catalog.find(name).path)
        assert not permissions.undeclared_steps(nb), (name, permissions.undeclared_steps(nb))
        needs = permissions.needs(name)
        assert needs.k8s or needs.iam or needs.sql, f"{name} needs nothing?"


def headed(section: str, heading: str) -> list[str]:
    return [ln for ln in bullets(section) if re.sub(r"^\s*[-*]\s+", "", ln).startswith(f"**{heading}**")]


def ticked(line: str) -> list[str]:
    return re.findall(r"`([^`]+)`", line)


def listed_not_declared(name: str) -> list[str]:
    """What the markdown lists that the steps do not need (see the module docstring)."""
    section, needs = permissions_section(name), permissions.needs(name)
    actions = {a.action for a in needs.iam}
    extra = [t for ln in headed(section, "IAM") for t in ticked(ln)
             if IAM_ACTION.match(t) and t not in actions]
    roles = {r.role for r in needs.sql}
    extra += [t for ln in headed(section, "SQL") for t in ticked(ln)
              if t.startswith("pg_") and t not in roles]
    groups = {p.group for p in needs.k8s if p.group}
    for line in headed(section, "Kubernetes RBAC"):
        for clause in line.split(";"):
            tokens = ticked(clause)
            verbs = {t for t in tokens if t in VERBS}
            group = next((t for t in tokens if t in groups and "." in t), None)
            resources = [t for t in tokens if t not in VERBS and t != group and RESOURCE.match(t)]
            if resources and not verbs:
                extra.append(f"{resources} without a verb in {clause.strip()!r}")

            def declared(verb: str, resource: str, group: str | None = group) -> bool:
                res, _, sub = resource.partition("/")
                res, _, res_group = res.partition(".")
                want = res_group or group
                return any(
                    (p.verb, p.resource, p.subresource) == (verb, res, sub)
                    and (want is None or p.group == want)
                    for p in needs.k8s
                )

            extra += [f"{verbs} {r}" for r in resources if not any(declared(v, r) for v in verbs)]
            extra += [f"{v} {resources}" for v in verbs
                      if resources and not any(declared(v, r) for r in resources)]
    return extra


@pytest.mark.parametrize("name", SHIPPED)
def test_the_runbook_markdown_lists_nothing_its_steps_do_not_need(name: str):
    extra = listed_not_declared(name)
    assert not extra, f"{name}: its 'Permissions needed' lists what none of its steps needs: {extra}"


@pytest.mark.parametrize("name", SHIPPED)
def test_the_permissions_section_has_the_standard_form(name: str):
    section, needs = permissions_section(name), permissions.needs(name)
    assert section.startswith("Permissions needed**:\n- "), section[:60]
    for heading, has in (("Kubernetes RBAC", needs.k8s), ("IAM", needs.iam), ("SQL", needs.sql)):
        assert bool(headed(section, heading)) == bool(has), f"{name}: a **{heading}** bullet iff it is needed"
    assert all(ln.startswith("- **") for ln in bullets(section)), bullets(section)


def test_needs_follow_from_the_steps_a_runbook_calls():
    nb = catalog.load(catalog.find("pod_crashloop").path)
    before = permissions.runbook_needs(nb)
    assert "cloudtrail:LookupEvents" not in {a.action for a in before.iam}
    nb["cells"].append(
        {"cell_type": "code", "metadata": {}, "source": "trail = rk.aws.lookup_events(minutes=60)"}
    )
    after = permissions.runbook_needs(nb)
    assert {a.action for a in after.iam} == {"cloudtrail:LookupEvents"} and after.k8s == before.k8s
    assert after.backends == ("aws", "k8s")


def test_a_step_without_declared_permissions_is_refused_by_name():
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "source": "x = rk.k8s.pod_status(namespace='a')\n"
                     "rk.k8s.shiny_new_step(x)"}]}
    assert permissions.steps(nb) == ("k8s.pod_status", "k8s.shiny_new_step")
    assert permissions.undeclared_steps(nb) == ("k8s.shiny_new_step",)
    with pytest.raises(UnknownRunbook, match=r"rk\.k8s\.shiny_new_step"):
        permissions.runbook_needs(nb)


def test_every_declared_step_is_a_real_step():
    import runbook_kit as rk

    missing = []
    for name in permissions.STEPS:
        obj = rk
        for part in name.split("."):
            obj = getattr(obj, part, None)
        if not callable(obj):
            missing.append(name)
    assert not missing, f"permissions.STEPS names steps rk does not have: {missing}"


def test_merged_needs_keep_the_strongest_form():
    code = ("rk.k8s.container_resources(namespace='a')\nrk.verification.kubectl_top(namespace='a')\n"
            "rk.investigate.plan_rollback_of_cause(cause=c)")
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "source": code}]}
    needs = permissions.runbook_needs(nb)
    metrics = [p for p in needs.k8s if p.group == "metrics.k8s.io" and p.resource == "pods"]
    assert sorted(p.verb for p in metrics) == ["get", "list"] and all(p.optional for p in metrics)
    core_pods = [p for p in needs.k8s if (p.verb, p.resource, p.group) == ("list", "pods", "")]
    assert len(core_pods) == 1 and not core_pods[0].optional
    patch = next(p for p in needs.k8s if p.verb == "patch")
    assert patch.purpose == "mitigate"
    get_deployment = [p for p in needs.k8s if (p.verb, p.resource) == ("get", "deployments")]
    assert len(get_deployment) == 1 and get_deployment[0].purpose == "read"


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
    with pytest.raises(UnknownRunbook, match="no runbook named 'not_a_runbook'"):
        permissions.needs("not_a_runbook")


def test_needs_of_a_runbook_calling_an_undeclared_step_names_the_step(tmp_path, monkeypatch):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Custom\n\nA custom runbook."),
                nbformat.v4.new_code_cell("rk.k8s.pod_status(namespace='a')\nrk.custom.fix_it()")]
    nbformat.write(nb, tmp_path / "custom_fix.ipynb")
    monkeypatch.setenv("RUNBOOK_PATH", str(tmp_path))
    with pytest.raises(UnknownRunbook, match=r"runbook 'custom_fix' calls steps .* rk\.custom\.fix_it"):
        permissions.needs("custom_fix")
    assert "custom_fix" not in permissions.declared() and "pod_crashloop" in permissions.declared()


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
