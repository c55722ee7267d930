"""20 writer processes adding their runs to one incident's index at once: S3 (compare-and-swap on the
sandbox's moto S3) beside the local store (flock), same writers, same run.

    .venv/bin/python benchmarks/bench_s3_index.py [--writers 20] [--rounds 3]

Each writer is a fresh process that imports the kit, waits for a common start, then writes its run's
entry three times (two "running" snapshots, then "succeeded"), as a run updates incident.json. Figure:
seconds from the common start until the last writer is done (median over rounds), runs kept, and on
S3 the 412s (lost compare-and-swaps, each retried after a jittered backoff).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "store"))

from test_s3_concurrency import _WRITER  # noqa: E402  (the writer the test runs)


def _round(location: str, writers: int, env: dict[str, str]) -> float:
    start = time.time() + 4  # time for the interpreters to import the kit
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, location, "INC", str(n), str(start)],
                              env=env, stdout=subprocess.DEVNULL) for n in range(writers)]
    if any(p.wait() for p in procs):
        raise SystemExit("a writer failed")
    return time.time() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writers", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import boto3

    from runbook_sandbox import manager

    state_dir = Path(tempfile.mkdtemp(prefix="bench-s3-index-"))
    work = Path(tempfile.mkdtemp(prefix="bench-s3-local-"))
    try:
        info = manager.up("all", state_dir=state_dir, parts=("aws",), timeout=60)
        env = {**os.environ, **info.env}
        s3 = boto3.client("s3", endpoint_url=info.aws_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        rows: dict[str, list[float]] = {"s3 (CAS)": [], "local (flock)": []}
        conflicts, kept = [], {"s3 (CAS)": [], "local (flock)": []}
        for rnd in range(args.rounds):
            bucket = f"bench-{rnd}-{int(time.time())}"
            s3.create_bucket(Bucket=bucket)
            with urllib.request.urlopen(f"{info.aws_endpoint}/_sandbox/requests") as r:
                seen = len(json.load(r))
            rows["s3 (CAS)"].append(_round(f"s3://{bucket}/prod", args.writers, env))
            with urllib.request.urlopen(f"{info.aws_endpoint}/_sandbox/requests") as r:
                log = json.load(r)[seen:]
            conflicts.append(sum(e["status"] == 412 and e["path"].endswith("/incident.json") for e in log))
            body = s3.get_object(Bucket=bucket, Key="prod/INC/incident.json")["Body"].read()
            kept["s3 (CAS)"].append(len(json.loads(body)["runs"]))
            local = work / f"r{rnd}"
            rows["local (flock)"].append(_round(str(local), args.writers, env))
            index = json.loads((local / "INC" / "incident.json").read_text())
            kept["local (flock)"].append(len(index["runs"]))
    finally:
        manager.down(state_dir=state_dir)
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"{args.writers} writers x 3 updates, {args.rounds} rounds\n")
    print(f"{'store':<16}{'median s':>10}{'min s':>8}{'max s':>8}  runs kept per round")
    for name, values in rows.items():
        print(f"{name:<16}{med[name]:>10.2f}{min(values):>8.2f}{max(values):>8.2f}  {kept[name]}")
    print(f"\nS3 412s per round (compare-and-swaps lost, then retried): {conflicts}")
    print(f"s3 / local: {med['s3 (CAS)'] / med['local (flock)']:.2f}")


if __name__ == "__main__":
    main()
