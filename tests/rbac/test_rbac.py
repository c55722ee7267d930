"""`runbook rbac RUNBOOK`: the objects are the official client's models, the rules are exactly what
the runbook declares (never `*`), and they allow every Kubernetes request the runbook really makes on
the sandbox (the sandbox API server's request log, as tests/doctor checks permissions.py itself)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from runbook_kit import permissions
from runbook_sandbox.manager import SandboxInfo

_OURS = ("AWS_", "KUBECONFIG", "RUNBOOK_", "PG", "DATABASE_URL")
_MODELS = {"ServiceAccount": "V1ServiceAccount", "Role": "V1Role", "RoleBinding": "V1RoleBinding",
           "ClusterRole": "V1ClusterRole", "ClusterRoleBinding": "V1ClusterRoleBinding"}


def runbook(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            ) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    return subprocess.run([sys.executable, "-m", "runbook_kit.cli", *args], env={**base, **(env or {})},
                          cwd=cwd, capture_output=True, text=True, timeout=300)


def rbac_objects(*args: str) -> list[dict]:
    done = runbook("rbac", *args)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def as_model(obj: dict):
    """The object deserialized by the official Kubernetes client, as it would read it from the API."""
    from kubernetes.client import ApiClient

    # the client's own JSON -> model step (its public `deserialize` changed signature across releases)
    return ApiClient()._ApiClient__deserialize(obj, _MODELS[obj["kind"]])


def granted(objects: list[dict]) -> set[tuple[str, str, str, bool]]:
    """(verb, group, resource[/sub], cluster-wide) of every rule; a Role's rules are per namespace."""
    out = set()
    for obj in objects:
        for rule in obj.get("rules", []):
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        out.add((verb, group, resource, obj["kind"] == "ClusterRole"))
    return out


@pytest.mark.parametrize(("name", "args"), [
    ("pod_crashloop", ["-n", "payments"]),
    ("k8s_mitigation", ["-n", "payments", "-n", "storefront"]),
    ("node_health", ["--cluster-wide"]),
    ("triage", ["-n", "payments", "--read-only"]),
])
def test_objects_are_client_models_and_rules_are_exactly_the_declared_permissions(name, args):
    objects = rbac_objects(name, *args)
    models = [as_model(o) for o in objects]
    assert type(models[0]).__name__ == "V1ServiceAccount"
    assert models[0].metadata.name == f"runbook-{name.replace('_', '-')}"
    assert "*" not in json.dumps(objects)
    read_only = "--read-only" in args
    declared = {(p.verb, p.group, p.markdown_name) for p in permissions.needs(name).k8s
                if not (read_only and p.purpose == "mitigate")}
    assert {(v, g, r) for v, g, r, _ in granted(objects)} == declared
    namespaces = [a for i, a in enumerate(args) if i and args[i - 1] == "-n"]
    roles = [m for m in models if type(m).__name__ == "V1Role"]
    assert sorted(r.metadata.namespace for r in roles) == sorted(namespaces)
    for binding in (m for m in models if type(m).__name__.endswith("Binding")):
        (subject,) = binding.subjects
        assert (subject.kind, subject.name) == ("ServiceAccount", models[0].metadata.name)
        assert subject.namespace == models[0].metadata.namespace
        assert any(o["kind"] == binding.role_ref.kind and o["metadata"]["name"] == binding.role_ref.name
                   for o in objects)
    if read_only:
        assert all(p.purpose == "read" or (p.verb, p.group, p.markdown_name) not in
                   {(v, g, r) for v, g, r, _ in granted(objects)} for p in permissions.needs(name).k8s)


def test_json_iam_and_sql_say_what_the_runbook_needs_beyond_kubernetes():
    arn = "arn:aws:iam::123456789012:role/runbook-db-mitigation"
    done = runbook("rbac", "db_mitigation", "--iam", "--sql", "--db-role", "oncall", "--json",
                   "--service-account-namespace", "runbooks", "--iam-role-arn", arn)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["kubernetes"]["kind"] == "List"
    (account,) = [as_model(o) for o in doc["kubernetes"]["items"]]  # it needs no Kubernetes permission
    assert account.metadata.annotations == {"eks.amazonaws.com/role-arn": arn}
    assert account.metadata.namespace == "runbooks"
    assert "needs no Kubernetes permission" in done.stderr
    needs = permissions.needs("db_mitigation")
    actions = {a for s in doc["iam"]["Statement"] for a in s["Action"]}
    assert actions == {a.action for a in needs.iam} and not any("*" in a for a in actions)
    assert {s["Sid"] for s in doc["iam"]["Statement"]} == {"RunbookRead", "RunbookMitigate"}
    assert [g.split(";")[0] for g in doc["sql"]] == [f'GRANT {r.role} TO "oncall"' for r in needs.sql]
    # the YAML keeps kubectl's input clean: IAM and SQL as comments, the need named on stderr otherwise
    plain = runbook("rbac", "db_mitigation", "--iam", "--sql")
    assert not [ln for ln in plain.stdout.splitlines() if ln.startswith(("{", "GRANT", '"'))]
    assert "# GRANT pg_signal_backend" in plain.stdout and '#   "Version": "2012-10-17",' in plain.stdout
    bare = runbook("rbac", "db_mitigation")
    assert "also needs AWS actions (add --iam)" in bare.stderr
    assert "PostgreSQL roles (add --sql)" in bare.stderr


@pytest.mark.parametrize(("args", "says"), [
    (["nope"], "no runbook named 'nope'"),
    (["pod_crashloop"], "-n NAMESPACE"),
    (["pod_crashloop", "-n", "Payments_1"], "not a valid Kubernetes name"),
    (["node_health", "--cluster-wide", "--iam-role-arn", "runbook-role"], "not an IAM role ARN"),
])
def test_bad_input_is_one_line_and_exit_2(args, says):
    done = runbook("rbac", *args)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and says in done.stderr


def _request(entry: dict) -> tuple[str, str, str, str | None] | None:
    """(verb, group, resource[/sub], namespace or None) of a logged API request; None for discovery
    and the reviews every client may make."""
    parts = [p for p in entry["path"].split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        return None
    namespace = None
    if len(rest) > 2 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or group in ("authorization.k8s.io", "authentication.k8s.io"):
        return None
    resource = rest[0] + (f"/{rest[2]}" if len(rest) > 2 else "")
    return entry["verb"], group, resource, namespace


def _allows(objects: list[dict], verb: str, group: str, resource: str, namespace: str | None) -> bool:
    """Kubernetes RBAC's rule: a ClusterRole (bound cluster-wide) allows it anywhere, a Role only in
    its own namespace, and a request without a namespace only through a ClusterRole."""
    for obj in objects:
        if obj["kind"] == "Role" and (namespace is None or obj["metadata"]["namespace"] != namespace):
            continue
        for rule in obj.get("rules", []):
            if group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]:
                return True
    return False


@pytest.mark.parametrize(("name", "params", "rbac_args"), [
    ("pod_crashloop", {"namespace": "payments", "deployment": "api"}, ["-n", "payments"]),
    ("k8s_mitigation", {"namespace": "payments", "deployment": "api", "action": "rollback"},
     ["-n", "payments"]),
    ("k8s_mitigation", {"namespace": "payments", "deployment": "api", "action": "drain",
                        "node": "ip-10-0-1-23.ec2.internal", "max_pods": 50}, ["--cluster-wide"]),
])
def test_the_printed_rbac_allows_every_request_the_runbook_makes(
    sandbox: SandboxInfo, tmp_path: Path, name: str, params: dict, rbac_args: list[str]
):
    def log() -> list[dict]:
        with urllib.request.urlopen(f"{sandbox.k8s_url}/_sandbox/requests", timeout=5) as response:
            return list(json.load(response))

    objects = rbac_objects(name, *rbac_args)
    seen = len(log())
    pairs = [a for k, v in params.items() for a in ("-p", k, str(v))]
    done = runbook("run", name, *pairs, "--store", str(tmp_path / "store"),
                   env={**sandbox.env, "HOME": str(tmp_path)}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    made = {r for r in map(_request, log()[seen:]) if r is not None}
    assert made, "the run made no Kubernetes request"
    denied = sorted(r for r in made if not _allows(objects, *r))
    assert denied == [], f"requests the printed RBAC would deny: {denied}"
