"""CloudWatch percentiles for query-protocol clients, through botocore's own query serializer and parser.

The installed botocore speaks JSON to CloudWatch, so boto3 alone cannot exercise this path; the
request is built by botocore's `query` serializer and the XML answer read by its `query` parser,
the code older SDKs run.
"""

from __future__ import annotations

import datetime as dt
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import botocore.session
import pytest
from aws_shapes import assert_model_shape
from botocore import parsers, serialize

from runbook_sandbox import timeline as tl
from runbook_sandbox.aws.query_protocol import unflatten
from runbook_sandbox.manager import SandboxInfo

MODEL = botocore.session.get_session().get_service_model("cloudwatch")


def call(endpoint: str, operation: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    op = MODEL.operation_model(operation)
    request = serialize.create_serializer("query").serialize_to_request(params, op)
    body = urllib.parse.urlencode(request["body"]).encode()
    http = urllib.request.Request(
        endpoint + "/",
        data=body,
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    try:
        with urllib.request.urlopen(http, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    parsed = parsers.create_parser("query").parse(
        {"status_code": status, "headers": {}, "body": raw}, op.output_shape
    )
    return status, parsed


def test_unflatten_lists_of_structures_and_scalars() -> None:
    assert unflatten(
        {
            "Q.member.2.Id": "b",
            "Q.member.1.Id": "a",
            "Q.member.1.M.D.member.1.Name": "n",
            "S.member.1": "p99",
            "Period": "60",
        }
    ) == {"Q": [{"Id": "a", "M": {"D": [{"Name": "n"}]}}, {"Id": "b"}], "S": ["p99"], "Period": "60"}


@pytest.mark.sandbox
def test_p99_over_the_query_protocol(aws_pg_sandbox: SandboxInfo) -> None:
    metric = {
        "Namespace": "AWS/ApplicationELB",
        "MetricName": "TargetResponseTime",
        "Dimensions": [{"Name": "LoadBalancer", "Value": tl.LATENCY_LOAD_BALANCER}],
    }
    end = aws_pg_sandbox.anchor
    start = end - dt.timedelta(minutes=30)
    status, data = call(
        aws_pg_sandbox.aws_endpoint,
        "GetMetricData",
        {
            "MetricDataQueries": [
                {"Id": "p99", "MetricStat": {"Metric": metric, "Period": 300, "Stat": "p99"}}
            ],
            "StartTime": start,
            "EndTime": end,
        },
    )
    assert status == 200, data
    assert_model_shape(MODEL, "GetMetricData", data)
    (series,) = data["MetricDataResults"]
    assert series["Id"] == "p99" and series["StatusCode"] == "Complete"
    assert len(series["Values"]) == len(series["Timestamps"]) >= 5
    assert all(v > 2.0 for v in series["Values"])  # after the deploy: the 3 s timeouts dominate p99

    status, stats = call(
        aws_pg_sandbox.aws_endpoint,
        "GetMetricStatistics",
        {
            **metric,
            "StartTime": start,
            "EndTime": end,
            "Period": 1800,
            "Statistics": ["SampleCount"],
            "ExtendedStatistics": ["p99", "p50"],
        },
    )
    assert status == 200, stats
    assert_model_shape(MODEL, "GetMetricStatistics", stats)
    point = stats["Datapoints"][0]
    assert set(point["ExtendedStatistics"]) == {"p99", "p50"}
    assert point["ExtendedStatistics"]["p50"] < 1.0 < point["ExtendedStatistics"]["p99"]
    assert isinstance(point["Timestamp"], dt.datetime)


@pytest.mark.sandbox
def test_query_protocol_errors_are_error_responses(aws_pg_sandbox: SandboxInfo) -> None:
    status, data = call(
        aws_pg_sandbox.aws_endpoint,
        "GetMetricStatistics",
        {
            "Namespace": "X",
            "MetricName": "m",
            "StartTime": aws_pg_sandbox.anchor,
            "EndTime": aws_pg_sandbox.anchor,
            "Period": 60,
            "ExtendedStatistics": ["median"],
        },
    )
    assert status == 400
    assert data["Error"]["Code"] == "InvalidParameterValue"
