"""20 writers, separate processes, one incident's index on the sandbox's S3: no run lost.

Each writer is a process of its own with the real boto3 (the kit's clients) against the sandbox's
moto S3, adding its run to `<incident>/incident.json` as a run does: a few snapshots while it runs,
then its final status. The compare-and-swap (If-Match / If-None-Match, retried with jittered
backoff) must keep every run; the sandbox's request log shows the writers really collided (412s).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid

import boto3

from runbook_sandbox.manager import SandboxInfo

WRITERS = 20
_WRITER = r"""
import json, sys, time
from runbook_kit.recorder import with_run
from runbook_kit.store import open_store

location, incident, n, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
store = open_store(location)
while time.time() < start:  # all writers begin together
    time.sleep(0.002)
for status in ("running", "running", "succeeded"):
    run = {"record_id": f"{incident}/20261130T000000.{n:06d}Z-job", "runbook": "job", "status": status,
           "started": f"2026-11-30T00:00:00.{n:06d}Z", "updated": time.strftime("%H:%M:%S")}
    store.update_json(f"{incident}/incident.json", lambda d: with_run(d, incident, run))
print("ok")
"""


def _s3_log(info: SandboxInfo) -> list[dict]:
    with urllib.request.urlopen(f"{info.aws_endpoint}/_sandbox/requests", timeout=5) as response:
        return list(json.load(response))


def test_twenty_writer_processes_lose_no_run_in_the_index(sandbox: SandboxInfo):
    bucket = f"records-{uuid.uuid4().hex[:12]}"
    env = {**os.environ, **sandbox.env}
    boto3.client("s3", endpoint_url=sandbox.aws_endpoint, region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing").create_bucket(Bucket=bucket)
    location, incident = f"s3://{bucket}/prod", "INC-20"
    seen = len(_s3_log(sandbox))
    start = time.time() + 4  # time for 20 interpreters to import the kit on 2 cores
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, location, incident, str(n), str(start)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in range(WRITERS)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * WRITERS, [err[-500:] for _, err in outs if err]

    raw = boto3.client("s3", endpoint_url=sandbox.aws_endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing").get_object(
        Bucket=bucket, Key=f"prod/{incident}/incident.json")["Body"].read()
    runs = json.loads(raw)["runs"]
    assert len(runs) == WRITERS
    assert {r["status"] for r in runs} == {"succeeded"}
    assert sorted(r["record_id"] for r in runs) == sorted(
        f"{incident}/20261130T000000.{n:06d}Z-job" for n in range(WRITERS))
    puts = [r for r in _s3_log(sandbox)[seen:]
            if r["method"] == "PUT" and r["path"].endswith("/incident.json")]
    assert any(r["status"] == 412 for r in puts), "the writers never collided: the test proved nothing"
    assert sum(r["status"] == 200 for r in puts) == 3 * WRITERS  # every snapshot landed exactly once


def test_when_retries_run_out_the_run_says_so_its_record_is_written_and_a_reader_indexes_it(
    sandbox: SandboxInfo, tmp_path, monkeypatch, capfd
):
    from runbook_kit import clients
    from runbook_kit.recovery import read_incident
    from runbook_kit.runner import run_notebook
    from runbook_kit.store import S3Store, open_store

    for key, value in sandbox.env.items():
        monkeypatch.setenv(key, value)
    clients.reset()
    bucket = f"records-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", endpoint_url=sandbox.aws_endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=bucket)
    src = tmp_path / "small.ipynb"
    src.write_text(json.dumps({
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [{"cell_type": "code", "id": "c0", "metadata": {}, "outputs": [], "execution_count": None,
                   "source": "print('checked')\n"}]}))
    # every compare-and-swap of the index loses: the bound is used up before a first try
    monkeypatch.setattr(S3Store, "MAX_ATTEMPTS", 0)
    try:
        result = run_notebook(str(src), incident="INC-C", store=f"s3://{bucket}/prod",
                              fallback_store=str(tmp_path / "fallback"), timeout=300)
    finally:
        monkeypatch.setattr(S3Store, "MAX_ATTEMPTS", 20)
        clients.reset()
    err = capfd.readouterr().err
    assert result.status == "succeeded" and result.recorded_elsewhere is None
    assert "stayed contended" in err and "runbook status INC-C" in err
    assert result.notebook_path.startswith(f"s3://{bucket}/prod/INC-C/")  # on S3, not the fallback
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert f"prod/INC-C/{result.notebook_path.rsplit('/', 1)[1]}" in keys
    assert "prod/INC-C/incident.json" not in keys and not (tmp_path / "fallback").exists()

    data = read_incident(open_store(f"s3://{bucket}/prod"), "INC-C")  # the next reader
    clients.reset()
    assert data is not None
    (run,) = data["runs"]
    assert run["status"] == "succeeded" and run["notebook"] == result.notebook_path
    assert run["indexed_by_reader"] and run["html"] and run["html"].endswith(".html")
