"""Records on S3, through the kit's own clients, against a real moto server on loopback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from runbook_kit import ParameterError, clients
from runbook_kit.runner import run_notebook
from runbook_kit.store import open_store


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3_endpoint(monkeypatch):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        url = f"http://127.0.0.1:{port}"
        env = {
            "AWS_ENDPOINT_URL": url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
        }
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        clients.reset()
        yield url, env
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        clients.reset()


def test_run_writes_its_record_to_s3(s3_endpoint, write_notebook):
    url, env = s3_endpoint
    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
    s3.create_bucket(Bucket="incident-records")
    nb = write_notebook(
        "hello",
        ("code", "dry_run = True  # plan only\n", ["parameters"]),
        ("code", "import runbook_kit as rk\nrk.finding('on s3')"),
    )
    result = run_notebook(nb, incident="INC-S3", store="s3://incident-records/prod", env=env)
    assert result.status == "succeeded"
    assert result.notebook_path.startswith("s3://incident-records/prod/INC-S3/")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="incident-records")["Contents"]}
    stem = result.notebook_path.removeprefix("s3://incident-records/")
    assert {stem, stem.replace(".ipynb", ".html"), "prod/INC-S3/incident.json"} <= keys
    incident = json.loads(
        s3.get_object(Bucket="incident-records", Key="prod/INC-S3/incident.json")["Body"].read()
    )
    assert incident["runs"][0]["findings"][0]["title"] == "on s3"
    assert open_store("s3://incident-records/prod").read("INC-S3/missing.json") is None


def test_missing_bucket_keeps_the_record_locally(s3_endpoint, write_notebook, tmp_path):
    _, env = s3_endpoint
    nb = write_notebook("hello", ("code", "dry_run = True  # plan only\n", ["parameters"]))
    result = run_notebook(nb, incident="INC-S3", store="s3://no-such-bucket/x", env=env,
                          fallback_store=str(tmp_path / "unsent"))
    assert result.status == "succeeded" and Path(result.notebook_path).is_file()


@pytest.mark.parametrize(
    "location",
    ["s3://b/a/../b", "s3://b/..", "s3://b/x?versionId=1", "s3://b/x#frag", "s3://b/a//b", "s3://b/a b",
     "s3://b/./x", "s3://b/%2e%2e/x"],
)
def test_s3_prefixes_that_would_change_meaning_are_refused(location):
    with pytest.raises(ParameterError, match="prefix"):
        open_store(location)


def test_s3_keys_are_plain_and_leading_slashes_normalised(s3_endpoint):
    url, _ = s3_endpoint
    boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(Bucket="recs")
    store = open_store("s3://recs//prod/")
    assert store.url("INC-1/incident.json") == "s3://recs/prod/INC-1/incident.json"
    for key in ("../INC-1/x.ipynb", "INC-1/../../x", "INC-1/x?y", "INC-1/x#y", "/INC-1/x", "INC-1//x"):
        with pytest.raises(ParameterError, match="unsafe path"):
            store.write(key, b"{}")
    assert "Contents" not in boto3.client("s3", endpoint_url=url, region_name="us-east-1").list_objects_v2(
        Bucket="recs")
