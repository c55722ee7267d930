"""Benchmark: listing 10,000 pods from the sandbox's Kubernetes server.

Claim under test (issue 3): the sandbox keeps objects as dicts and serialises pages cheaply, so a
10,000-pod namespace lists fast enough for runbooks and kubectl. Measured in the same run, against
the same server:

* `kubectl get pods -n bulk` (server-side Table output, kubectl's default chunks of 500),
* a raw paginated list with the python client (`_preload_content=False`, limit=500, json.loads),
* `kubectl get pods -n bulk --chunk-size=0`: one Table request; kubectl's own client-side rate limit
  (5 requests/s after a burst) spaces the 20 chunk requests above about 200 ms apart,
* the python client's model deserialisation of the same pages (what a runbook gets without
  `_preload_content=False`): the alternative the design note rules out.

The script starts its own server (`python -m runbook_sandbox.k8s --pods N`) on 127.0.0.1 and
ends it by PID.

    .venv/bin/python benchmarks/bench_k8s_sandbox_list.py [--pods 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kubernetes import client, config


def _start(state_dir: Path, pods: int) -> tuple[subprocess.Popen[str], dict[str, str], float]:
    started = time.perf_counter()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runbook_sandbox.k8s",
            "--state-dir",
            str(state_dir),
            "--scenario",
            "none",
            "--pods",
            str(pods),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    ready = json.loads(process.stdout.readline())
    return process, ready, time.perf_counter() - started


def _median(fn: Callable[[], int], runs: int, expected: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        count = fn()
        times.append(time.perf_counter() - started)
        if count != expected:
            raise SystemExit(f"listed {count} pods, expected {expected}")
    return statistics.median(times), times


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    kubectl = shutil.which("kubectl")
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        process, ready, start_seconds = _start(state, args.pods)
        try:
            api = config.new_client_from_config(config_file=ready["kubeconfig"], context="runbook-sandbox")
            core = client.CoreV1Api(api)

            def raw() -> int:
                count, token = 0, None
                while True:
                    response = core.list_namespaced_pod(
                        "bulk", limit=500, _continue=token, _preload_content=False
                    )
                    page = json.loads(response.data)
                    count += len(page["items"])
                    token = page["metadata"].get("continue")
                    if not token:
                        return count

            def models() -> int:
                count, token = 0, None
                while True:
                    page = core.list_namespaced_pod("bulk", limit=500, _continue=token)
                    count += len(page.items)
                    token = page.metadata._continue
                    if not token:
                        return count

            def kubectl_get(*extra: str) -> int:
                done = subprocess.run(
                    [
                        kubectl or "kubectl",
                        "--kubeconfig",
                        ready["kubeconfig"],
                        "--cache-dir",
                        str(state / "cache"),
                        "--request-timeout",
                        "60s",
                        "get",
                        "pods",
                        "-n",
                        "bulk",
                        "--no-headers",
                        *extra,
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                return len(done.stdout.splitlines())

            raw()  # warm-up: connection pool, discovery cache
            results = [("python client, raw JSON pages (limit=500)", *_median(raw, args.runs, args.pods))]
            if kubectl:
                kubectl_get()
                results.append(
                    (
                        "kubectl get pods -n bulk (Table, chunks of 500)",
                        *_median(kubectl_get, args.runs, args.pods),
                    )
                )
                results.append(  # kubectl's client-side rate limit spaces its chunk requests ~200 ms apart
                    (
                        "kubectl get pods -n bulk --chunk-size=0 (one Table)",
                        *_median(lambda: kubectl_get("--chunk-size=0"), args.runs, args.pods),
                    )
                )
            results.append(
                ("python client, model deserialisation (limit=500)", *_median(models, args.runs, args.pods))
            )
        finally:
            os.kill(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
            if process.stdout:
                process.stdout.close()
    baseline = results[0][1]
    print(f"sandbox with {args.pods} bulk pods: start-to-ready {start_seconds:.2f} s")
    print(f"{'method':<52} {'median s':>9} {'x raw':>7}   runs")
    for name, median, times in results:
        runs = " ".join(f"{t:.2f}" for t in times)
        print(f"{name:<52} {median:>9.3f} {median / baseline:>7.1f}   {runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
