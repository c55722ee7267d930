"""Benchmark: the pod status step over a 10,000-pod namespace, against kubectl and the client's models.

Claim under test (issue 4): `rk.k8s.pod_status(namespace="bulk")` over 10,000 pods completes in
≤ 3 s and ≤ 300 MB peak RSS. It pages with limit/continue (500 per page) and parses raw JSON
(`_preload_content=False`) into one DataFrame. Measured in the same run:

* `kubectl get pods -n bulk` — what the on-call engineer types today (table output, its own paging);
* the naive client path — `list_namespaced_pod` with the client's model deserialisation (one page per
  500 pods, as the helper), then the same flattening: what the raw-JSON choice avoids.

Each measurement runs in a fresh process (so peak RSS is that step's, and no cache carries over);
times are of the step itself (imports excluded for the Python paths; kubectl is timed as a whole
process, as typed). The script starts its own sandbox Kubernetes server on 127.0.0.1 with
`--pods N` and stops it, by PID, at the end.

    .venv/bin/python benchmarks/bench_k8s_pod_status.py [--pods 10000] [--runs 5] [--model-runs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, os, resource, sys, time
mode, namespace = sys.argv[1], sys.argv[2]
import runbook_kit as rk
import runbook_kit.k8s  # noqa: F401  (imports excluded from the timing)
from runbook_kit import clients
from runbook_kit.k8s.status import pod_rows
core = clients.core_v1()
start = time.perf_counter()
if mode == "helper":
    n = len(rk.k8s.pod_status(namespace=namespace))
else:  # the client's model classes, then the same rows
    pods, token = [], None
    while True:
        page = core.list_namespaced_pod(namespace, limit=500, _continue=token)
        pods += [core.api_client.sanitize_for_serialization(p) for p in page.items]
        token = page.metadata._continue
        if not token:
            break
    n = len(pod_rows(pods))
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "rows": n,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _python_step(mode: str, namespace: str, env: dict[str, str]) -> tuple[float, float, int]:
    """The step in a fresh Python process: (step seconds, that process's peak RSS MB, rows)."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, mode, namespace], env=env, capture_output=True, text=True, timeout=600
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} failed: {proc.stderr.strip()[-500:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return data["seconds"], data["rss_mb"], data["rows"]


def _kubectl(namespace: str, env: dict[str, str]) -> tuple[float, float, int]:
    # kubectl's own peak RSS: /usr/bin/time is not always installed, so read it from wait4()
    start = time.perf_counter()
    proc = subprocess.Popen(
        ["kubectl", "get", "pods", "-n", namespace, "--no-headers"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out = proc.stdout.read() if proc.stdout else b""
    err = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl failed: {err.decode()[-500:]}")
    return wall, usage.ru_maxrss / 1024, len(out.splitlines())


def _start_sandbox(pods: int, state_dir: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runbook_sandbox.k8s",
            "--state-dir",
            str(state_dir),
            "--port",
            "0",
            "--scenario",
            "none",
            "--pods",
            str(pods),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    info = json.loads(line)
    if "error" in info:
        raise RuntimeError(info["error"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "RUNBOOK_KUBE"))}
    env["KUBECONFIG"] = info["kubeconfig"]
    return proc, env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model-runs", type=int, default=2, help="runs of the slow model path (0: skip)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-k8s-") as tmp:
        server, env = _start_sandbox(args.pods, Path(tmp))
        try:
            results: dict[str, list[tuple[float, float, int]]] = {"helper": [], "kubectl": [], "models": []}
            _python_step("helper", "bulk", env)  # warm the server's caches and the OS page cache once
            for _ in range(args.runs):
                results["helper"].append(_python_step("helper", "bulk", env))
                results["kubectl"].append(_kubectl("bulk", env))
            for _ in range(args.model_runs):
                results["models"].append(_python_step("models", "bulk", env))
        finally:
            server.terminate()
            server.wait(timeout=10)
    label = {
        "helper": "rk.k8s.pod_status (raw JSON, pages of 500)",
        "kubectl": "kubectl get pods -n bulk",
        "models": "client models (list_namespaced_pod) + same rows",
    }
    base = statistics.median(s for s, _, _ in results["helper"])
    print(
        f"\npod status over namespace bulk ({args.pods} pods), {args.runs} runs (models: {args.model_runs})\n"
    )
    header = f"{'method':<50} {'median s':>9} {'min s':>7} {'max s':>7} {'peak RSS MB':>12} {'rows':>6}"
    print(f"{header} {'× helper':>9}")
    for key, runs in results.items():
        if not runs:
            continue
        secs = [s for s, _, _ in runs]
        med = statistics.median(secs)
        print(
            f"{label[key]:<50} {med:>9.2f} {min(secs):>7.2f} {max(secs):>7.2f} "
            f"{max(r for _, r, _ in runs):>12.0f} {runs[0][2]:>6} {med / base:>9.1f}"
        )
    ok_time = base <= 3.0
    ok_rss = max(r for _, r, _ in results["helper"]) <= 300
    print(f"\nclaim: ≤ 3 s → {'met' if ok_time else 'NOT met'}; ≤ 300 MB → {'met' if ok_rss else 'NOT met'}")
    return 0 if ok_time and ok_rss else 1


if __name__ == "__main__":
    sys.exit(main())
