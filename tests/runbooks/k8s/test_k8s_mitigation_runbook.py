"""k8s_mitigation against the sandbox: the status default, blast radius, drain vs PDB, cordon, scale."""

from __future__ import annotations

import collections
import json

from k8s_witness import kubectl, requests_log

from runbook_kit.runner import run_notebook


def _node_with_most_pods(info):
    pods = kubectl(info, "get", "pods", "-A")["items"]
    counts = collections.Counter(p["spec"].get("nodeName") for p in pods if p["spec"].get("nodeName"))
    return counts.most_common(1)[0]


def _action(result):
    return next(e for e in result.entries if e.kind == "action")


def test_default_is_status_only(sandbox, tmp_path):
    result = run_notebook(
        "k8s_mitigation", parameters={}, incident="INC-50", store=str(tmp_path), env=sandbox.env, timeout=600
    )
    assert result.status == "succeeded", result.failure
    assert _action(result).outcome == "skipped"


def test_drain_beyond_the_blast_radius_is_refused(fresh_k8s, tmp_path):
    node, count = _node_with_most_pods(fresh_k8s)
    assert count >= 2
    before = len(requests_log(fresh_k8s))
    result = run_notebook(
        "k8s_mitigation",
        parameters={"action": "drain", "node": node, "max_pods": 1, "dry_run": False},
        incident="INC-51",
        store=str(tmp_path),
        env=fresh_k8s.env,
        timeout=600,
    )

    assert result.status == "failed" and "blast radius of 1" in result.failure
    action = _action(result)
    assert action.outcome == "refused" and action.title == f"drain: node/{node}"
    assert len(action.details["targets"]) == count
    assert [r for r in requests_log(fresh_k8s)[before:] if r["method"] != "GET"] == []
    assert not kubectl(fresh_k8s, "get", "node", node)["spec"].get("unschedulable")


def test_drain_reports_evictions_a_pdb_refuses(fresh_k8s, tmp_path):
    dns = kubectl(fresh_k8s, "get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns")["items"]
    node = dns[0]["spec"]["nodeName"]
    pdb = tmp_path / "pdb.json"
    pdb.write_text(
        json.dumps(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": "dns-strict", "namespace": "kube-system"},
                "spec": {"minAvailable": "100%", "selector": {"matchLabels": {"k8s-app": "kube-dns"}}},
            }
        )
    )
    kubectl(fresh_k8s, "create", "--validate=false", "-f", str(pdb))

    result = run_notebook(
        "k8s_mitigation",
        parameters={"action": "drain", "node": node, "max_pods": 10, "dry_run": False},
        incident="INC-52",
        store=str(tmp_path),
        env=fresh_k8s.env,
        timeout=600,
    )

    assert result.status == "failed"
    action = _action(result)
    assert action.outcome == "failed" and "PodDisruptionBudget (429)" in action.details["error"]
    assert dns[0]["metadata"]["name"] in action.details["error"]
    assert kubectl(fresh_k8s, "get", "node", node)["spec"].get("unschedulable") is True
    evictions = [r for r in requests_log(fresh_k8s) if r["path"].endswith("/eviction")]
    assert any(r["status"] == 429 for r in evictions)


def test_cordon_and_scale_apply_with_before_and_after(fresh_k8s, tmp_path):
    node, _ = _node_with_most_pods(fresh_k8s)
    cordon = run_notebook(
        "k8s_mitigation",
        parameters={"action": "cordon", "node": node, "dry_run": False},
        incident="INC-53",
        store=str(tmp_path),
        env=fresh_k8s.env,
        timeout=600,
    )
    assert cordon.status == "succeeded", cordon.failure
    action = _action(cordon)
    assert (
        action.outcome,
        action.details["before"]["unschedulable"],
        action.details["after"]["unschedulable"],
    ) == ("applied", False, True)
    assert kubectl(fresh_k8s, "get", "node", node)["spec"]["unschedulable"] is True

    scale = run_notebook(
        "k8s_mitigation",
        parameters={
            "action": "scale",
            "namespace": "payments",
            "deployment": "worker",
            "replicas": 3,
            "dry_run": False,
        },
        incident="INC-54",
        store=str(tmp_path),
        env=fresh_k8s.env,
        timeout=600,
    )
    assert scale.status == "succeeded", scale.failure
    action = _action(scale)
    assert (action.details["before"]["replicas"], action.details["after"]["replicas"]) == (2, 3)
    assert kubectl(fresh_k8s, "get", "deployment", "worker", "-n", "payments")["spec"]["replicas"] == 3
    assert any(f.details.get("recovered") for f in scale.findings)
