"""k8s_mitigation against the sandbox: the status default, blast radius, drain vs PDB, cordon, scale."""

from __future__ import annotations

import collections
import json

from k8s_witness import kubectl, requests_log

from runbook_kit.runner import run_notebook
from runbook_sandbox.scenarios import runbook_parameters


def _node_with_most_pods(info):
    """(node, the pods kubectl drain would evict there): DaemonSet and mirror pods stay."""
    by_node = collections.defaultdict(list)
    for p in kubectl(info, "get", "pods", "-A")["items"]:
        owners = [o["kind"] for o in p["metadata"].get("ownerReferences", []) if o.get("controller")]
        mirror = "kubernetes.io/config.mirror" in p["metadata"].get("annotations", {})
        if p["spec"].get("nodeName") and "DaemonSet" not in owners and not mirror:
            by_node[p["spec"]["nodeName"]].append(f"{p['metadata']['namespace']}/{p['metadata']['name']}")
    node = max(by_node, key=lambda n: len(by_node[n]))
    return node, sorted(by_node[node])


def _action(result):
    return next(e for e in result.entries if e.kind == "action")


def test_default_is_status_only(sandbox, tmp_path):
    result = run_notebook(
        "k8s_mitigation",
        parameters=runbook_parameters("k8s_mitigation"),
        incident="INC-50",
        store=str(tmp_path),
        env=sandbox.env,
        timeout=600,
    )
    assert result.status == "succeeded", result.failure
    assert _action(result).outcome == "skipped"


def test_drain_beyond_the_blast_radius_is_refused(fresh_k8s, tmp_path):
    node, evictable = _node_with_most_pods(fresh_k8s)
    assert len(evictable) >= 2
    before = len(requests_log(fresh_k8s))
    result = run_notebook(
        "k8s_mitigation",
        parameters=runbook_parameters(
            "k8s_mitigation", **{"action": "drain", "node": node, "max_pods": 1, "dry_run": False}
        ),
        incident="INC-51",
        store=str(tmp_path),
        env=fresh_k8s.env,
        timeout=600,
    )

    assert result.status == "failed" and "blast radius of 1" in result.failure
    action = _action(result)
    assert action.outcome == "refused" and action.title == f"drain: node/{node}"
    assert sorted(action.details["targets"]) == evictable
    assert any(skipped.endswith("(DaemonSet-managed)") for skipped in action.details["skipped"])
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
        parameters=runbook_parameters(
            "k8s_mitigation", **{"action": "drain", "node": node, "max_pods": 10, "dry_run": False}
        ),
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
        parameters=runbook_parameters(
            "k8s_mitigation", **{"action": "cordon", "node": node, "dry_run": False}
        ),
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
        parameters=runbook_parameters(
            "k8s_mitigation",
            **{
                "action": "scale",
                "namespace": "payments",
                "deployment": "worker",
                "replicas": 3,
                "dry_run": False,
            },
        ),
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
