"""`runbook doctor` as a user runs it: a real process, the sandbox's environment exported, real
servers answering (moto's STS, the sandbox API server's SelfSubjectAccessReview, PostgreSQL's
pg_has_role), and real botocore failing on an SSO profile whose session has expired."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from runbook_sandbox.k8s.access import deny
from runbook_sandbox.manager import SandboxInfo
from runbook_sandbox.scenarios import runbook_parameters

_OURS = ("AWS_", "KUBECONFIG", "RUNBOOK_", "PG", "DATABASE_URL")


def doctor(*args: str, env: dict[str, str], home: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    base.update(HOME=str(home), RUNBOOK_RETRIES="0", RUNBOOK_CONNECT_TIMEOUT="2", **env)
    return subprocess.run([sys.executable, "-m", "runbook_kit.cli", "doctor", *args], env=base,
                          capture_output=True, text=True, timeout=120)


def marked(out: str, mark: str) -> list[str]:
    return [ln.strip() for ln in out.splitlines() if ln.strip().startswith(mark)]


def k8s_requests(info: SandboxInfo) -> list[dict]:
    import urllib.request

    with urllib.request.urlopen(f"{info.k8s_url}/_sandbox/requests", timeout=5) as response:
        return list(json.load(response))


def test_all_green_on_the_sandbox(sandbox: SandboxInfo, tmp_path: Path):
    seen = len(k8s_requests(sandbox))
    done = doctor(env=sandbox.env, home=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert marked(done.stdout, "✗") == []
    checked = marked(done.stdout, "✓")
    # every runbook's RBAC verbs were reviewed, the DB grants read, the identity found
    assert any("patch deployments.apps in default (mitigate)" in ln for ln in checked)
    assert any("create pods/eviction in default (mitigate)" in ln for ln in checked)
    assert any(ln.startswith("✓ postgres pg_signal_backend (mitigate)") for ln in checked)
    assert any("identity: arn:aws:sts::123456789012:" in ln for ln in checked)
    assert any(ln.startswith("✓ k8s      context runbook-sandbox: user runbook-sandbox") for ln in checked)
    assert done.stdout.rstrip().endswith("all needed access is present")
    # the doctor only asked: each of its Kubernetes requests was a review (or a read)
    mine = k8s_requests(sandbox)[seen:]
    reviews = [e for e in mine if e["path"].endswith(("/selfsubjectaccessreviews", "/selfsubjectreviews"))]
    assert len(reviews) >= 19
    assert all(e["method"] == "GET" for e in mine if e not in reviews)


def test_a_stripped_grant_is_named_with_its_fix(
    fresh_sandbox: Callable[..., SandboxInfo], tmp_path: Path
):
    import psycopg

    info = fresh_sandbox("connections", parts=("aws", "postgres"))
    with psycopg.connect(info.pg_dsn, autocommit=True) as admin:
        admin.execute("GRANT pg_read_all_stats, pg_signal_backend TO oncall_limited")
    args = ("db_connection_exhaustion", "--dsn", info.pg_dsn_unprivileged)
    before = doctor(*args, env=info.env, home=tmp_path)
    assert before.returncode == 0, before.stdout
    assert marked(before.stdout, "✓ postgres pg_signal_backend")

    with psycopg.connect(info.pg_dsn, autocommit=True) as admin:
        admin.execute("REVOKE pg_signal_backend FROM oncall_limited")
    after = doctor(*args, env=info.env, home=tmp_path)
    assert after.returncode == 1
    assert marked(after.stdout, "✗") == [
        "✗ postgres pg_signal_backend (mitigate): not granted to oncall_limited: cannot cancel or terminate "
        "other roles' sessions  → GRANT pg_signal_backend TO \"oncall_limited\";  -- as an admin "
        "(on RDS: the master user)"
    ]
    assert marked(after.stdout, "✓ postgres pg_read_all_stats")
    as_json = json.loads(doctor(*args, "--json", env=info.env, home=tmp_path).stdout)
    assert as_json["ok"] is False
    missing = [c["what"] for c in as_json["checks"] if c["status"] == "missing"]
    assert missing == ["pg_signal_backend (mitigate)"]


def test_a_denied_rbac_verb_is_named_with_its_fix(sandbox: SandboxInfo, tmp_path: Path):
    state = sandbox.state_dir / "k8s"
    deny(state, [{"verb": "patch", "group": "apps", "resource": "deployments", "namespace": "payments"},
                 {"verb": "list", "group": "metrics.k8s.io", "resource": "pods"}])
    try:
        done = doctor("pod_crashloop", "-n", "payments", env=sandbox.env, home=tmp_path)
    finally:
        deny(state, [])
    assert done.returncode == 1, done.stdout
    missing = marked(done.stdout, "✗")
    assert len(missing) == 2, done.stdout
    patch, metrics = sorted(missing, key=lambda ln: "metrics" in ln)
    assert patch.startswith("✗ k8s      patch deployments.apps in payments (mitigate): sandbox: denied by")
    assert patch.endswith(
        "→ kubectl create role runbook-patch-deployments.apps -n payments --verb=patch "
        "--resource=deployments.apps && kubectl create rolebinding runbook-patch-deployments.apps "
        "-n payments --role=runbook-patch-deployments.apps --user=runbook-sandbox")
    assert "list pods.metrics.k8s.io in payments" in metrics and "(optional)" in metrics
    assert marked(done.stdout, "✓ k8s      get deployments.apps in payments")
    # other namespaces were not denied
    assert doctor("pod_crashloop", "-n", "storefront", env=sandbox.env, home=tmp_path).returncode == 0


def _sso_config(home: Path, *, token: str | None) -> dict[str, str]:
    (home / ".aws").mkdir(parents=True, exist_ok=True)
    (home / ".aws" / "config").write_text(
        "[profile oncall]\nsso_session = corp\nsso_account_id = 123456789012\n"
        "sso_role_name = OnCall\nregion = eu-west-1\n\n"
        "[sso-session corp]\nsso_start_url = https://corp.example.invalid/start\nsso_region = eu-west-1\n")
    if token == "expired":
        cache = home / ".aws" / "sso" / "cache"
        cache.mkdir(parents=True)
        gone = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        (cache / (hashlib.sha1(b"corp").hexdigest() + ".json")).write_text(json.dumps(
            {"startUrl": "https://corp.example.invalid/start", "region": "eu-west-1",
             "accessToken": "expired-access-token", "expiresAt": gone}))
    return {"AWS_PROFILE": "oncall", "AWS_CONFIG_FILE": str(home / ".aws" / "config"),
            "KUBECONFIG": str(home / "no-kubeconfig")}


@pytest.mark.parametrize("token", ["never-logged-in", "expired"])
def test_an_sso_session_that_is_not_valid_names_aws_sso_login(tmp_path: Path, token: str):
    env = _sso_config(tmp_path, token=token)
    done = doctor("api_latency_spike", env=env, home=tmp_path)
    assert done.returncode == 1
    identity = next(ln for ln in marked(done.stdout, "✗ aws"))
    assert identity == ("✗ aws      identity: the SSO session of profile oncall has expired or was never "
                        "started  → aws sso login --profile oncall")
    assert marked(done.stdout, "✓ aws      region: eu-west-1")
    assert "expired-access-token" not in done.stdout + done.stderr
    # no kubeconfig: the Kubernetes part is one line naming the fix, not one per verb
    k8s = [ln for ln in marked(done.stdout, "") if ln[2:].startswith("k8s")]
    assert len(k8s) == 1 and "KUBECONFIG" in k8s[0]


def test_aws_without_region_unreachable_or_unknown_profile(tmp_path: Path):
    with socket.socket() as s:  # an endpoint that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": "not-a-secret",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_CONFIG_FILE": str(tmp_path / "none"),
           "KUBECONFIG": str(tmp_path / "none")}
    done = doctor("db_mitigation", "--dsn", f"postgresql://x@127.0.0.1:{port}/x", env=env, home=tmp_path)
    assert done.returncode == 1
    aws = marked(done.stdout, "✗ aws")
    assert aws[0].startswith("✗ aws      identity: unreachable: ") and f"127.0.0.1:{port}" in aws[0]
    assert aws[0].endswith("→ check the network path to AWS (or AWS_ENDPOINT_URL)")
    assert aws[1] == ("✗ aws      region: not set: AWS calls would go to us-east-1  → aws configure set "
                      "region <region> --profile default (or AWS_REGION)")
    assert "not-a-secret" not in done.stdout + done.stderr
    pg = marked(done.stdout, "✗ postgres")
    assert len(pg) == 1 and pg[0].startswith("✗ postgres connect: unreachable")

    done = doctor("db_mitigation", env={**env, "AWS_PROFILE": "nosuch"}, home=tmp_path)
    identity = marked(done.stdout, "✗ aws")
    assert identity == ["✗ aws      identity: failed: ProfileNotFound: The config profile (nosuch) could not "
                        "be found  → aws configure list-profiles, then export AWS_PROFILE=<one of them>"]


def test_an_unreachable_cluster_is_one_line(tmp_path: Path):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "kubeconfig"
    config.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "gone",
        "clusters": [{"name": "gone", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "u"}}]}))
    done = doctor("pod_crashloop", env={"KUBECONFIG": str(config)}, home=tmp_path)
    assert done.returncode == 1
    lines = marked(done.stdout, "✗")
    assert len(lines) == 1 and lines[0].startswith("✗ k8s      context gone: server http://127.0.0.1:")
    assert "kubectl cluster-info" in lines[0]


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path):
    done = doctor("pod_crashlop", env={}, home=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == ("runbook: no runbook named 'pod_crashlop'; did you mean 'pod_crashloop'? "
                                   "(see `runbook list`)")


def test_a_runbook_calling_a_step_without_declared_permissions_is_named_exit_2(tmp_path: Path):
    import nbformat

    folder = tmp_path / "runbooks"
    folder.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Custom\n\nA custom runbook."),
                nbformat.v4.new_code_cell("rk.k8s.pod_status(namespace='a')\nrk.custom.fix_it()")]
    nbformat.write(nb, folder / "custom_fix.ipynb")
    done = doctor("custom_fix", env={"RUNBOOK_PATH": str(folder)}, home=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == ("runbook: runbook 'custom_fix' calls steps whose permissions "
                                   "runbook_kit/permissions.py does not declare: rk.custom.fix_it")


# SigV4 scope -> IAM prefix, where they differ
_IAM_PREFIX = {"monitoring": "cloudwatch"}


def aws_requests(info: SandboxInfo) -> list[dict]:
    import urllib.request

    with urllib.request.urlopen(f"{info.aws_endpoint}/_sandbox/requests", timeout=5) as response:
        return list(json.load(response))


def _iam_action(entry: dict) -> str | None:
    """`service:Action` of a logged AWS request (JSON target, query Action, RPC-v2 path); None: unknown."""
    action = entry.get("action") or ""
    if not action and "/operation/" in entry.get("path", ""):
        action = entry["path"].rsplit("/operation/", 1)[1].strip("/")
    service = entry.get("service") or ""
    return f"{_IAM_PREFIX.get(service, service)}:{action}" if action and service else None


# verify_resolution is left out: with the sandbox's parameters it makes no AWS call to compare
@pytest.mark.parametrize("runbook", ["api_latency_spike", "node_health", "db_connection_exhaustion",
                                     "db_mitigation", "triage", "what_changed"])
def test_the_declared_iam_covers_every_aws_call_the_runbook_makes(
    sandbox: SandboxInfo, tmp_path: Path, runbook: str
):
    """The IAM side of the same promise: every AWS API call of a dry run is a declared action."""
    from runbook_kit import permissions

    seen = len(aws_requests(sandbox))
    params = [a for k, v in runbook_parameters(runbook).items() for a in ("-p", k, str(v))]
    base = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    done = subprocess.run(
        [sys.executable, "-m", "runbook_kit.cli", "run", runbook, *params,
         "--store", str(tmp_path / "store")],
        env={**base, **sandbox.env, "HOME": str(tmp_path)}, cwd=tmp_path, capture_output=True, text=True,
        timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    made = {a for a in map(_iam_action, aws_requests(sandbox)[seen:]) if a}
    declared = {a.action for a in permissions.needs(runbook).iam}
    assert made, "the run made no AWS request"
    assert made <= declared, f"AWS calls not declared in permissions.py: {sorted(made - declared)}"


def _request_permission(entry: dict) -> tuple[str, str, str, str, bool] | None:
    """(verb, group, resource, subresource, all_namespaces) of a logged API request; None for discovery
    and reviews."""
    parts = [p for p in entry["path"].split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        return None
    namespaced = len(rest) >= 2 and rest[0] == "namespaces" and len(rest) > 2
    if namespaced:
        rest = rest[2:]
    if not rest or group in ("authorization.k8s.io", "authentication.k8s.io"):
        return None
    resource, sub = rest[0], rest[2] if len(rest) > 2 else ""
    cluster_wide = not namespaced and resource not in ("nodes", "namespaces")
    return entry["verb"], group, resource, sub, cluster_wide


@pytest.mark.parametrize(("runbook", "params"), [
    ("pod_crashloop", ["-p", "namespace", "payments", "-p", "deployment", "api"]),
    ("k8s_mitigation",
     ["-p", "namespace", "payments", "-p", "deployment", "api", "-p", "action", "rollback"]),
    ("k8s_mitigation",
     ["-p", "namespace", "payments", "-p", "deployment", "api", "-p", "action", "drain",
      "-p", "node", "ip-10-0-1-23.ec2.internal", "-p", "max_pods", "50"]),
    *[(name, [a for k, v in runbook_parameters(name).items() for a in ("-p", k, str(v))])
      for name in ("api_latency_spike", "node_health")],
])
def test_the_declared_rbac_covers_every_request_the_runbook_makes(
    sandbox: SandboxInfo, tmp_path: Path, runbook: str, params: list[str]
):
    """permissions.py must say what the code calls: run the runbook (dry run) and compare with the
    sandbox API server's request log."""
    from runbook_kit import permissions

    seen = len(k8s_requests(sandbox))
    base = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    done = subprocess.run(
        [sys.executable, "-m", "runbook_kit.cli", "run", runbook, *params,
         "--store", str(tmp_path / "store")],
        env={**base, **sandbox.env, "HOME": str(tmp_path)}, cwd=tmp_path, capture_output=True, text=True,
        timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    made = {p for p in map(_request_permission, k8s_requests(sandbox)[seen:]) if p is not None}
    declared = {(p.verb, p.group, p.resource, p.subresource, p.cluster_scoped and p.resource not in
                 ("nodes", "namespaces")) for p in permissions.needs(runbook).k8s}
    assert made, "the run made no Kubernetes request"
    assert made <= declared, f"requests not declared in permissions.py: {sorted(made - declared)}"
