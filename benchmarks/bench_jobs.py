"""50 short runs through Kubernetes Jobs on the sandbox beside 50 through the local executor.

    .venv/bin/python benchmarks/bench_jobs.py [--runs 50] [--concurrency 5]

The same run both ways (a two-cell runbook that records one finding, records on the sandbox's S3),
each started as a user would: `runbook run bench_job ...` and `runbook run bench_job ... --on
kubernetes` (submit, watch, stream the log, read the record back), `--concurrency` at a time.
Prints throughput (runs/s over the whole batch) and p50/p90 latency (one command, start to exit) for
both, and the Jobs/local ratios. The sandbox is started here (AWS and Kubernetes parts) and stopped.
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
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BOOK = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "cells": [
        {
            "cell_type": "code",
            "id": "p",
            "metadata": {"tags": ["parameters"]},
            "outputs": [],
            "execution_count": None,
            "source": "dry_run = True\nn = 0\n",
        },
        {
            "cell_type": "code",
            "id": "a",
            "metadata": {},
            "outputs": [],
            "execution_count": None,
            "source": "import runbook_kit as rk\n"
            "rk.record.finding(f'run {n}: all is well', severity='info')\n",
        },
    ],
}


def _batch(
    env: dict[str, str], cwd: Path, runs: int, concurrency: int, extra: list[str]
) -> tuple[float, list[float]]:
    incident = f"BENCH-{uuid.uuid4().hex[:6]}"

    def one(i: int) -> float:
        started = time.monotonic()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "runbook_kit.cli",
                "run",
                "bench_job",
                "-p",
                "n",
                str(i),
                "--incident",
                incident,
                "--store",
                env["RUNBOOK_STORE"],
                *extra,
            ],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise SystemExit(f"run {i} failed ({done.returncode}): {done.stderr[-800:]}")
        return time.monotonic() - started

    started = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = list(pool.map(one, range(runs)))
    return time.monotonic() - started, latencies


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=5)
    args = parser.parse_args()

    import boto3
    import kubernetes

    from runbook_sandbox import manager

    state = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    info = manager.up("all", state_dir=state / "sandbox", parts=("aws", "k8s"))
    try:
        books = state / "books"
        books.mkdir()
        (books / "bench_job.ipynb").write_text(json.dumps(BOOK))
        (state / "runbook.yaml").write_text(
            json.dumps(
                {
                    "jobs": {
                        "image": "runbook-kit:bench",
                        "namespace": "default",
                        "env": {"RUNBOOK_PATH": str(books)},
                    }
                }
            )
        )
        env = {
            **os.environ,
            **info.env,
            "RUNBOOK_PATH": str(books),
            "RUNBOOK_CONFIG": str(state / "runbook.yaml"),
            "RUNBOOK_STORE": "s3://bench-records/prod",
            "HOME": str(state),
        }
        env.pop("AWS_PROFILE", None)
        boto3.client(
            "s3",
            endpoint_url=info.aws_endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket="bench-records")
        config = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=str(info.kubeconfig), client_configuration=config)
        kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(config)).create_namespaced_service_account(
            "default", {"metadata": {"name": "runbook-bench-job"}}
        )

        _batch(env, state, 2, 2, [])  # warm the page cache for both ways
        _batch(env, state, 2, 2, ["--on", "kubernetes"])
        local_wall, local = _batch(env, state, args.runs, args.concurrency, [])
        jobs_wall, jobs = _batch(env, state, args.runs, args.concurrency, ["--on", "kubernetes"])
    finally:
        manager.down(state_dir=state / "sandbox")

    def line(name: str, wall: float, lat: list[float]) -> tuple[float, float]:
        p50 = statistics.median(lat)
        p90 = statistics.quantiles(lat, n=10)[-1]
        print(
            f"{name:<22} {args.runs / wall:8.2f} runs/s  p50 {p50:6.2f} s  p90 {p90:6.2f} s  "
            f"(wall {wall:.1f} s)"
        )
        return args.runs / wall, p50

    print(f"{args.runs} runs each, {args.concurrency} at a time, records on the sandbox's S3")
    local_tp, local_p50 = line("local executor", local_wall, local)
    jobs_tp, jobs_p50 = line("Kubernetes Jobs", jobs_wall, jobs)
    print(f"Jobs/local: throughput {jobs_tp / local_tp:.2f}, p50 latency {jobs_p50 / local_p50:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
