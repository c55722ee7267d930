"""The AWS server as a process: same anchor, same data; ready line; prompt exit on SIGTERM."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from runbook_sandbox import timeline as tl

pytestmark = pytest.mark.sandbox

# both servers get this anchor; recent, because CloudWatch Logs refuses events older than 14 days
ANCHOR = dt.datetime.now(dt.UTC).replace(minute=9, second=26, microsecond=0) - dt.timedelta(hours=1)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[tuple[subprocess.Popen[str], str]]]:
    started: list[tuple[subprocess.Popen[str], str]] = []
    for i in range(2):
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "runbook_sandbox.aws",
                "--state-dir",
                str(tmp_path / f"aws{i}"),
                "--scenario",
                "latency",
                "--anchor",
                ANCHOR.isoformat(),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["pid"] == proc.pid and ready["url"].startswith("http://127.0.0.1:")
        started.append((proc, ready["url"]))
    try:
        yield started
    finally:
        for proc, _ in started:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=5) == 0


def snapshot(url: str) -> dict[str, Any]:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    cw, logs, trail = (session.client(s, endpoint_url=url) for s in ("cloudwatch", "logs", "cloudtrail"))
    metric = {
        "Namespace": "AWS/ApplicationELB",
        "MetricName": "TargetResponseTime",
        "Dimensions": [{"Name": "LoadBalancer", "Value": tl.LATENCY_LOAD_BALANCER}],
    }
    p99 = cw.get_metric_data(
        MetricDataQueries=[{"Id": "p", "MetricStat": {"Metric": metric, "Period": 60, "Stat": "p99"}}],
        StartTime=ANCHOR.replace(second=0) - tl.LATENCY_WINDOW,
        EndTime=ANCHOR,
    )["MetricDataResults"][0]
    query = logs.start_query(
        logGroupName=tl.LATENCY_LOG_GROUP,
        queryString="fields @timestamp, @message, @ptr",
        startTime=int((ANCHOR - tl.LATENCY_WINDOW).timestamp()),
        endTime=int(ANCHOR.timestamp()),
    )
    lines = logs.get_query_results(queryId=query["queryId"])["results"]
    events = trail.lookup_events(StartTime=ANCHOR - dt.timedelta(days=1), EndTime=ANCHOR)["Events"]
    return {
        "p99": (p99["Timestamps"], p99["Values"]),
        "lines": lines,
        "trail": [(e["EventId"], e["EventName"], e["EventTime"]) for e in events],
    }


def test_same_anchor_same_data_and_clean_exit(servers: list[tuple[subprocess.Popen[str], str]]) -> None:
    first, second = (snapshot(url) for _, url in servers)
    assert first == second
    assert len(first["p99"][1]) == 180 and len(first["lines"]) > 1000 and len(first["trail"]) == 5
