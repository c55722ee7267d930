"""Benchmark: pod_crashloop's evidence read once (snapshot + views + diagnosis) vs each step reading live.

Claim under test (issue 10 item 3): with `rk.k8s.workload_snapshot`, the tables and the diagnosis
of `pod_crashloop` cost the cluster one read per API path, instead of each table and the diagnosis
reading for itself. Measured in the same run against the sandbox's crashloop scenario, in this
process (the steps' record lines are silenced), with the API server's own request log as the counter:

* live: the nine steps as the notebook called them before (`pod_status`, `deployment_status`,
  `pod_events`, `container_logs`, `container_resources`, `rollout_history`, `revision_diff`, each
  with keywords, then `diagnose_crashloop(namespace=...)`, which reads what it needs by itself);
* snapshot: `workload_snapshot(...)`, the same views of it, `diagnose_crashloop(snap)`.

The script starts its own sandbox Kubernetes server on 127.0.0.1 and stops it, by PID, at the end.

    .venv/bin/python benchmarks/bench_k8s_snapshot.py [--runs 7]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

NS, DEP = "payments", "api"


def _start_sandbox(state_dir: Path) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "runbook_sandbox.k8s", "--state-dir", str(state_dir), "--port", "0",
         "--scenario", "crashloop"],
        stdout=subprocess.PIPE,
        text=True,
    )
    info = json.loads(proc.stdout.readline() if proc.stdout else "{}")
    if "error" in info:
        raise RuntimeError(info["error"])
    return proc, info


def _requests(url: str) -> int:
    with urllib.request.urlopen(f"{url}/_sandbox/requests", timeout=10) as response:
        return len(json.load(response))


def _live(k8s: Any) -> None:
    where = {"namespace": NS, "deployment": DEP}
    pods = k8s.pod_status(**where)
    k8s.deployment_status(**where)
    pod = k8s.most_restarted_pod(pods)
    k8s.pod_events(namespace=NS, pod=pod)
    k8s.container_logs(namespace=NS, pod=pod, tail=50)
    k8s.container_resources(**where)
    k8s.rollout_history(**where)
    k8s.revision_diff(**where)
    k8s.diagnose_crashloop(**where)


def _snapshot(k8s: Any) -> None:
    snap = k8s.workload_snapshot(namespace=NS, deployment=DEP)
    k8s.pod_status(snap)
    k8s.deployment_status(snap)
    pod = k8s.most_restarted_pod(snap)
    k8s.pod_events(snap, pod=pod)
    k8s.container_logs(snap, pod=pod, tail=50)
    k8s.container_resources(snap)
    k8s.rollout_history(snap)
    k8s.revision_diff(snap)
    k8s.diagnose_crashloop(snap)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-k8s-snap-") as tmp:
        server, info = _start_sandbox(Path(tmp))
        try:
            for key in [k for k in os.environ if k.startswith(("KUBECONFIG", "RUNBOOK_KUBE"))]:
                del os.environ[key]
            os.environ["KUBECONFIG"] = info["kubeconfig"]
            url = info["url"]
            import runbook_kit.k8s as k8s
            from runbook_kit import clients

            clients.reset()
            results: dict[str, list[tuple[float, int]]] = {"live": [], "snapshot": []}
            with contextlib.redirect_stdout(io.StringIO()):
                _live(k8s)  # warm the client and the server once
            for _ in range(args.runs):
                for name, steps in (("live", _live), ("snapshot", _snapshot)):
                    before = _requests(url)
                    start = time.perf_counter()
                    with contextlib.redirect_stdout(io.StringIO()):
                        steps(k8s)
                    elapsed = time.perf_counter() - start
                    results[name].append((elapsed, _requests(url) - before))
        finally:
            server.terminate()
            server.wait(timeout=10)
    base = statistics.median(s for s, _ in results["snapshot"])
    print(f"\npod_crashloop's tables + diagnosis, namespace {NS}/{DEP}, {args.runs} runs\n")
    print(f"{'method':<44} {'median s':>9} {'min s':>7} {'max s':>7} {'API requests':>13} {'× snapshot':>11}")
    for name, runs in results.items():
        secs = [s for s, _ in runs]
        med = statistics.median(secs)
        print(f"{name:<44} {med:>9.3f} {min(secs):>7.3f} {max(secs):>7.3f} "
              f"{statistics.median(n for _, n in runs):>13.0f} {med / base:>11.2f}")
    fewer = statistics.median(n for _, n in results["snapshot"]) < statistics.median(
        n for _, n in results["live"])
    print(f"\nclaim: fewer API requests with the snapshot → {'met' if fewer else 'NOT met'}")
    return 0 if fewer else 1


if __name__ == "__main__":
    sys.exit(main())
