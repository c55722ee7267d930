"""pod_crashloop against the sandbox's crashloop scenario: findings, dry run, rollback, bad input."""

from __future__ import annotations

from collections import Counter

from k8s_witness import crashlooping_pods, kubectl, requests_log

from runbook_kit.runner import run_notebook
from runbook_sandbox import timeline as tl
from runbook_sandbox.scenarios import runbook_parameters

NS, DEP = tl.CRASHLOOP_NAMESPACE, tl.CRASHLOOP_DEPLOYMENT


def _action(result, title_start):
    return next(e for e in result.entries if e.kind == "action" and e.title.startswith(title_start))


def test_defaults_name_the_cause_and_send_no_write(fresh_k8s, tmp_path):
    crashing = crashlooping_pods(fresh_k8s, NS)
    revision = kubectl(fresh_k8s, "get", "deployment", DEP, "-n", NS)["metadata"]["annotations"][
        "deployment.kubernetes.io/revision"
    ]
    assert crashing, "the scenario plants crash-looping pods"
    before = len(requests_log(fresh_k8s))

    result = run_notebook(
        "pod_crashloop",
        parameters=runbook_parameters("pod_crashloop"),
        incident="INC-42",
        store=str(tmp_path),
        env=fresh_k8s.env,
        timeout=600,
    )

    assert result.status == "succeeded", result.failure
    cause = next(e for e in result.findings if e.severity == "high")
    assert cause.details["reason"] == "OOMKilled"
    assert cause.details["pods"] == crashing
    assert cause.details["limit"] == tl.CRASHLOOP_BAD_LIMIT
    assert cause.details["rollout"]["revision"] == int(revision)
    assert f"limits.memory: {tl.CRASHLOOP_GOOD_LIMIT} → {tl.CRASHLOOP_BAD_LIMIT}" in " ".join(
        cause.details["rollout"]["changes"]
    )
    assert (
        "OOMKilled" in cause.title
        and tl.CRASHLOOP_BAD_LIMIT in cause.title
        and f"revision {revision}" in cause.title
    )
    recommended = next(e for e in result.findings if e.title.startswith("Recommended mitigation"))
    assert recommended.details["recommendation"] in ("rollback", "raise_memory")
    assert recommended.details["new_memory_limit"] == tl.CRASHLOOP_GOOD_LIMIT

    plan = _action(result, "rollout undo")
    assert plan.outcome == "dry-run" and plan.command.startswith(
        f"kubectl rollout undo deployment/{DEP} -n {NS}"
    )
    ours = requests_log(fresh_k8s)[before:]
    writes = [r for r in ours if r["method"] != "GET"]
    assert writes, "the plan was validated by the server (dryRun=All)"
    assert all(r["dry_run"] for r in writes), [r for r in writes if not r["dry_run"]]
    assert crashlooping_pods(fresh_k8s, NS) == crashing

    # One read of everything the tables and the diagnosis show: before the plan's dry-run write,
    # every path was read once, but the deployment and its replica sets, which the rollback plan
    # reads again right before planning (the guard's before-state and target revision, not evidence).
    reads = Counter(r["path"] for r in ours[: ours.index(writes[0])])
    assert reads.pop(f"/apis/apps/v1/namespaces/{NS}/deployments/{DEP}") == 2
    assert reads.pop(f"/apis/apps/v1/namespaces/{NS}/replicasets") == 2
    assert set(reads.values()) == {1}, reads
    assert f"/api/v1/namespaces/{NS}/pods" in reads and f"/api/v1/namespaces/{NS}/events" in reads
    assert f"/apis/metrics.k8s.io/v1beta1/namespaces/{NS}/pods" in reads
    assert {f"/api/v1/namespaces/{NS}/pods/{pod}/log" for pod in crashing} <= set(reads)
    evidence = cause.details["evidence"]
    assert [row["pod"] for row in evidence] == crashing
    assert {row["revision"] for row in evidence} == {int(revision)}
    assert {(row["reason"], row["exit_code"], row["memory_limit"]) for row in evidence} == {
        ("OOMKilled", 137, tl.CRASHLOOP_BAD_LIMIT)
    }
    assert all(row["last_log_lines"] for row in evidence)


def test_the_diagnosis_reads_nothing_the_snapshot_did_not(sandbox, monkeypatch):
    from runbook_kit import clients, k8s, record

    for name, value in sandbox.env.items():
        monkeypatch.setenv(name, value)
    clients.reset()
    try:
        start = len(requests_log(sandbox))
        snap = k8s.workload_snapshot(namespace=NS, deployment=DEP)
        taken = len(requests_log(sandbox))
        before = len(record.entries_this_session())
        views = [
            k8s.pod_status(snap), k8s.deployment_status(snap), k8s.replicaset_status(snap),
            k8s.pod_events(snap, pod=k8s.most_restarted_pod(snap)),
            k8s.container_logs(snap, pod=k8s.most_restarted_pod(snap)), k8s.container_resources(snap),
            k8s.rollout_history(snap), k8s.revision_diff(snap),
        ]
        diagnosis = k8s.diagnose_crashloop(snap)
    finally:
        clients.reset()

    assert len(requests_log(sandbox)) == taken, "views and diagnosis made no API call"
    assert taken - start >= 5 and all(not v.empty for v in views)
    assert diagnosis.cause == "OOMKilled" and diagnosis.pods == sorted(
        p["metadata"]["name"] for p, _ in snap.crashing
    )
    cause = record.entries_this_session()[before]
    assert cause.details["snapshot_taken_at"] == snap.taken_at.isoformat()
    assert [row["pod"] for row in cause.details["evidence"]] == diagnosis.pods


def test_rollback_applied_recovers_and_records_revisions(fresh_k8s, tmp_path):
    result = run_notebook(
        "pod_crashloop",
        parameters=runbook_parameters(
            "pod_crashloop", **{"mitigation": "rollback", "dry_run": False, "verify_timeout_s": 180}
        ),
        incident="INC-43",
        store=str(tmp_path),
        env=fresh_k8s.env,
        timeout=600,
    )

    assert result.status == "succeeded", result.failure
    action = _action(result, "rollout undo")
    assert action.outcome == "applied"
    before, after = action.details["before"], action.details["after"]
    assert after["revision"] == before["revision"] + 1  # the old template becomes the newest revision
    assert before["memory_limits"] == {"api": tl.CRASHLOOP_BAD_LIMIT}
    assert after["memory_limits"] == {"api": tl.CRASHLOOP_GOOD_LIMIT}
    verified = result.findings[-1]
    assert verified.details["recovered"] is True and "recovered" in verified.title

    dep = kubectl(fresh_k8s, "get", "deployment", DEP, "-n", NS)
    limits = dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["memory"] == tl.CRASHLOOP_GOOD_LIMIT
    assert dep["status"]["readyReplicas"] == dep["spec"]["replicas"] == dep["status"]["updatedReplicas"]
    assert crashlooping_pods(fresh_k8s, NS) == []


def test_raise_memory_applies_the_computed_limit(fresh_k8s, tmp_path):
    result = run_notebook(
        "pod_crashloop",
        parameters=runbook_parameters("pod_crashloop", **{"mitigation": "raise_memory", "dry_run": False}),
        incident="INC-44",
        store=str(tmp_path),
        env=fresh_k8s.env,
        timeout=600,
    )

    assert result.status == "succeeded", result.failure
    action = _action(result, "set memory limit")
    assert action.outcome == "applied" and action.details["memory_limit"] == tl.CRASHLOOP_GOOD_LIMIT
    assert "previous revision's limit" in action.details["reason"]
    dep = kubectl(fresh_k8s, "get", "deployment", DEP, "-n", NS)
    assert (
        dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"]
        == tl.CRASHLOOP_GOOD_LIMIT
    )
    assert result.findings[-1].details["recovered"] is True


def test_unknown_namespace_fails_with_one_line(sandbox, tmp_path):
    result = run_notebook(
        "pod_crashloop",
        parameters=runbook_parameters("pod_crashloop", **{"namespace": "no-such-namespace"}),
        incident="INC-45",
        store=str(tmp_path),
        env=sandbox.env,
        timeout=600,
    )

    assert result.status == "failed"
    assert 'namespaces "no-such-namespace" not found' in result.failure
    assert "Traceback" not in result.failure and "\n" not in result.failure


def test_unknown_deployment_fails_with_one_line(sandbox, tmp_path):
    result = run_notebook(
        "pod_crashloop",
        parameters=runbook_parameters("pod_crashloop", **{"deployment": "no-such-app"}),
        incident="INC-46",
        store=str(tmp_path),
        env=sandbox.env,
        timeout=600,
    )

    assert result.status == "failed"
    assert 'deployments.apps "no-such-app" not found' in result.failure
    assert result.entries == []  # nothing was concluded from a deployment that does not exist


def test_selector_without_deployment_finds_the_owner(sandbox, tmp_path):
    result = run_notebook(
        "pod_crashloop",
        parameters=runbook_parameters("pod_crashloop", **{"deployment": "", "selector": "app=api"}),
        incident="INC-47",
        store=str(tmp_path),
        env=sandbox.env,
        timeout=600,
    )

    assert result.status == "succeeded", result.failure
    cause = next(e for e in result.findings if e.severity == "high")
    assert cause.details["reason"] == "OOMKilled" and cause.details["deployment"] == DEP
    assert _action(result, "rollout undo").outcome == "dry-run"


def test_verify_reports_not_recovered_within_the_timeout(fresh_k8s, monkeypatch):
    from runbook_kit import clients, k8s, record

    for name, value in fresh_k8s.env.items():
        monkeypatch.setenv(name, value)
    clients.reset()
    try:
        result = k8s.verify_rollout(namespace=NS, deployment=DEP, timeout_s=2, quiet_s=1)
    finally:
        clients.reset()

    assert not result.recovered and "not recovered within 2 s" in result.message
    assert sorted(result.crashlooping) == crashlooping_pods(fresh_k8s, NS)
    entry = record.entries_this_session()[-1]
    assert entry.severity == "high" and entry.details["recovered"] is False


def test_metrics_not_served_is_one_gap_and_the_rest_still_read(sandbox, monkeypatch):
    import socket

    from kubernetes import client as k8s_client

    from runbook_kit import clients, k8s, record

    with socket.socket() as s:  # a loopback port nothing listens on: metrics.k8s.io unreachable
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = k8s_client.Configuration()
    config.host, config.retries = f"http://127.0.0.1:{port}", 0
    unreachable = k8s_client.CustomObjectsApi(k8s_client.ApiClient(config))
    for name, value in sandbox.env.items():
        monkeypatch.setenv(name, value)
    clients.reset()
    try:
        before = len(record.entries_this_session())
        snap = k8s.workload_snapshot(namespace=NS, deployment=DEP, custom=unreachable)
        resources = k8s.container_resources(snap)
        diagnosis = k8s.diagnose_crashloop(snap)
    finally:
        clients.reset()

    entries = record.entries_this_session()[before:]
    gaps = [e for e in entries if e.kind == "gap"]
    assert [g.title for g in gaps] == [f"container usage (metrics.k8s.io) in {NS}"]  # once, not per view
    assert snap.usage is None and len(snap.gaps) == 1 and "metrics='unavailable'" in repr(snap)
    assert set(resources["metrics"]) == {"unavailable"} and resources["memory_limit"].notna().all()
    assert snap.pods and snap.replicasets and snap.events and snap.logs
    assert diagnosis.cause == "OOMKilled" and diagnosis.gaps == snap.gaps
    cause = next(e for e in entries if e.kind == "finding" and e.severity == "high")
    assert cause.details["gaps"] == list(snap.gaps)
