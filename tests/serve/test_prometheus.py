"""End to end: Prometheus scrapes the sandbox's kube-state-metrics series, the documented rule fires
on the crash loop, Alertmanager routes it, runbook serve runs pod_crashloop, the record names OOMKilled."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from serve_harness import ROOT, http, wait_for

from runbook_sandbox import timeline as tl

RULES = ROOT / "deploy" / "prometheus" / "runbook-rules.yaml"
ROUTE = {
    "name": "crashloop",
    "match": {"alertname": "KubePodCrashLooping"},
    "runbook": "pod_crashloop",
    "parameters": {"namespace": "{labels.namespace}", "deployment": "{labels.deployment}"},
    "incident": "alert-{labels.namespace}-{labels.deployment}",
}


def test_prometheus_rule_to_alertmanager_to_record(serve, alertmanager, prometheus, fresh_sandbox):
    sandbox = fresh_sandbox("crashloop", parts=("k8s",))
    server = serve(routes=[ROUTE], env=sandbox.env)
    am = alertmanager(f"{server.url}/webhook/alertmanager", server.dir / "token")
    rules = yaml.safe_load(RULES.read_text())
    rules["groups"][0]["rules"][0]["for"] = "0s"  # the documented rule, without its one-minute hold
    prom = prometheus(f"{sandbox.k8s_url}/_sandbox/kube-state-metrics", rules, am.url)

    def firing():
        code, raw = http("GET", f"{prom}/api/v1/alerts")
        alerts = json.loads(raw)["data"]["alerts"] if code == 200 else []
        return [a for a in alerts if a["state"] == "firing"]

    [alert] = wait_for(firing, timeout=60, what="the KubePodCrashLooping rule to fire")
    assert alert["labels"]["namespace"] == tl.CRASHLOOP_NAMESPACE
    assert alert["labels"]["deployment"] == tl.CRASHLOOP_DEPLOYMENT

    [run] = server.finished_runs(1, timeout=240)
    assert run["state"] == "succeeded", run
    assert json.loads(run["parameters"]) == {
        "namespace": tl.CRASHLOOP_NAMESPACE,
        "deployment": tl.CRASHLOOP_DEPLOYMENT,
        "dry_run": True,
    }
    meta = json.loads(Path(run["record"]).read_text())["metadata"]["runbook_kit"]
    cause = next(e for e in meta["entries"] if e["kind"] == "finding" and e["severity"] == "high")
    assert cause["details"]["reason"] == "OOMKilled" and "OOMKilled" in cause["title"]
