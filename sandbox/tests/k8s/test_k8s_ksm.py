"""The kube-state-metrics-style series Prometheus scrapes: parsed with Prometheus' own text-format rules
(one sample per line, `name{labels} value`), and true to the crashloop scenario."""

from __future__ import annotations

import re
import urllib.request

from runbook_sandbox import timeline as tl

_SAMPLE = re.compile(r'^([a-z_]+)\{((?:[a-z_]+="(?:[^"\\]|\\.)*",?)*)\} (\d+(?:\.\d+)?)$')


def _samples(cluster) -> list[tuple[str, dict[str, str], float]]:
    with urllib.request.urlopen(f"{cluster.url}/_sandbox/kube-state-metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    out = []
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) [a-z_]+ ", line), line
            continue
        m = _SAMPLE.match(line)
        assert m, f"not a Prometheus sample: {line!r}"
        labels = dict(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', m.group(2)))
        out.append((m.group(1), labels, float(m.group(3))))
    return out


def test_crashloop_series_join_pods_to_their_deployment(cluster):
    samples = _samples(cluster)
    ns = tl.CRASHLOOP_NAMESPACE
    waiting = [
        s
        for s in samples
        if s[0] == "kube_pod_container_status_waiting_reason"
        and s[1]["namespace"] == ns
        and s[1]["reason"] == "CrashLoopBackOff"
    ]
    assert waiting, "the scenario's crash-looping pods are waiting in CrashLoopBackOff"
    pods = {s[1]["pod"] for s in waiting}
    terminated = {
        s[1]["pod"]
        for s in samples
        if s[0] == "kube_pod_container_status_last_terminated_reason" and s[1]["reason"] == "OOMKilled"
    }
    assert pods <= terminated
    restarts = {s[1]["pod"]: s[2] for s in samples if s[0] == "kube_pod_container_status_restarts_total"}
    assert all(restarts[p] > 0 for p in pods)
    owners = {s[1]["pod"]: s[1]["owner_name"] for s in samples if s[0] == "kube_pod_owner"}
    deployments = {s[1]["replicaset"]: s[1]["owner_name"] for s in samples if s[0] == "kube_replicaset_owner"}
    assert {deployments[owners[p]] for p in pods} == {tl.CRASHLOOP_DEPLOYMENT}
    assert not any(r["path"] == "/_sandbox/kube-state-metrics" for r in cluster.requests())  # not in the log
