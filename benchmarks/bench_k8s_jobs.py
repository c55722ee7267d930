"""Benchmark: what a Kubernetes Job costs on the sandbox, against running its process directly.

Claim under test (issue 14, item 7): the sandbox's job controller and kubelet add little to a Job's
own process time, so tests and the Jobs-versus-local benchmark measure the runner, not the sandbox.
Measured in the same run, with the same command (the sandbox's python `-c pass`):

* a Job created with the official client, until its `Complete` condition is seen (polled every
  20 ms), one after another,
* the same command started directly (`subprocess.run`), one after another,
* N Jobs created at once, until all are Complete (throughput).

The script starts its own server (`python -m runbook_sandbox.k8s`, the manager's default tick of
0.5 s) on 127.0.0.1 and ends it by PID.

    .venv/bin/python benchmarks/bench_k8s_jobs.py [--runs 15] [--parallel 20]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config

CODE = "pass"


def _job(name: str) -> dict[str, Any]:
    container = {"name": "main", "image": "runbook-kit:dev", "command": ["python", "-c", CODE]}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": {"restartPolicy": "Never", "containers": [container]}},
        },
    }


def _complete(api: Any, name: str) -> bool:
    j = api.read_namespaced_job(name, "default")
    return any(c.type == "Complete" and c.status == "True" for c in j.status.conditions or [])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--parallel", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        process = subprocess.Popen(
            [sys.executable, "-m", "runbook_sandbox.k8s", "--state-dir", str(state), "--scenario", "none"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            ready = json.loads(process.stdout.readline())
            api = client.BatchV1Api(config.new_client_from_config(config_file=ready["kubeconfig"]))
            jobs, direct = [], []
            for i in range(args.runs):
                started = time.perf_counter()
                api.create_namespaced_job("default", _job(f"seq-{i}"))
                while not _complete(api, f"seq-{i}"):
                    time.sleep(0.02)
                jobs.append(time.perf_counter() - started)
                started = time.perf_counter()
                subprocess.run([sys.executable, "-c", CODE], check=True)
                direct.append(time.perf_counter() - started)
            started = time.perf_counter()
            for i in range(args.parallel):
                api.create_namespaced_job("default", _job(f"par-{i}"))
            pending = {f"par-{i}" for i in range(args.parallel)}
            while pending:
                pending = {name for name in pending if not _complete(api, name)}
                time.sleep(0.02)
            burst = time.perf_counter() - started
        finally:
            os.kill(process.pid, signal.SIGTERM)
            process.wait(10)
    job_p50, direct_p50 = statistics.median(jobs), statistics.median(direct)
    print(f"{'what':<52} {'median s':>9}")
    print(f"{'Job create -> Complete (python -c pass), sequential':<52} {job_p50:>9.3f}")
    print(f"{'the same process run directly':<52} {direct_p50:>9.3f}")
    print(f"{'sandbox overhead per Job':<52} {job_p50 - direct_p50:>9.3f}")
    print(f"{args.parallel} Jobs at once: all Complete in {burst:.2f} s ({args.parallel / burst:.1f} Jobs/s)")
    print(f"ratio Job / direct = {job_p50 / direct_p50:.2f} (runs: {args.runs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
