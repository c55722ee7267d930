"""boto3 against the sandbox's AWS endpoint: each gap fill's values and wire shape, and the seeded data."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import boto3
import pytest
from aws_shapes import assert_shape
from botocore.exceptions import ClientError

from runbook_sandbox import timeline as tl
from runbook_sandbox.manager import SandboxInfo

pytestmark = pytest.mark.sandbox

LB_DIMS = [{"Name": "LoadBalancer", "Value": tl.LATENCY_LOAD_BALANCER}]
DB_DIMS = [{"Name": "DBInstanceIdentifier", "Value": tl.DB_INSTANCE_ID}]


def client(info: SandboxInfo, service: str) -> Any:
    return boto3.session.Session(
        aws_access_key_id=info.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=info.env["AWS_SECRET_ACCESS_KEY"],
        region_name=info.env["AWS_REGION"],
    ).client(service, endpoint_url=info.aws_endpoint)


@pytest.fixture(scope="module")
def info(aws_pg_sandbox: SandboxInfo) -> SandboxInfo:
    return aws_pg_sandbox


# --- CloudWatch percentiles ----------------------------------------------------------------------


def test_p99_of_known_values_from_get_metric_data_and_statistics(info: SandboxInfo) -> None:
    cw = client(info, "cloudwatch")
    minute = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(minutes=3)
    dims = [{"Name": "Test", "Value": "p99-known"}]
    values = [float(v) for v in range(1, 201)]  # 1..200: nearest-rank p99 = 198, p50 = 100
    cw.put_metric_data(
        Namespace="Sandbox/Tests",
        MetricData=[
            {"MetricName": "Latency", "Dimensions": dims, "Timestamp": minute, "Values": values[:150]},
            {
                "MetricName": "Latency",
                "Dimensions": dims,
                "Timestamp": minute + dt.timedelta(seconds=10),
                "Values": values[150:],
            },
            {
                "MetricName": "Latency",
                "Dimensions": [*dims, {"Name": "Extra", "Value": "x"}],
                "Timestamp": minute,
                "Values": [10_000.0],
            },  # another metric (more dimensions): must not leak into the result
        ],
    )
    metric = {"Namespace": "Sandbox/Tests", "MetricName": "Latency", "Dimensions": dims}
    response = cw.get_metric_data(
        MetricDataQueries=[
            {"Id": "p99", "MetricStat": {"Metric": metric, "Period": 60, "Stat": "p99"}},
            {"Id": "avg", "MetricStat": {"Metric": metric, "Period": 60, "Stat": "Average"}},
        ],
        StartTime=minute - dt.timedelta(minutes=5),
        EndTime=minute + dt.timedelta(minutes=5),
    )
    assert_shape(cw, "GetMetricData", response)
    by_id = {r["Id"]: r for r in response["MetricDataResults"]}
    assert by_id["p99"]["Values"] == [198.0]
    assert by_id["avg"]["Values"] == [100.5]
    assert by_id["p99"]["Timestamps"] == [minute]
    assert by_id["p99"]["StatusCode"] == "Complete"

    stats = cw.get_metric_statistics(
        Namespace="Sandbox/Tests",
        MetricName="Latency",
        Dimensions=dims,
        StartTime=minute - dt.timedelta(minutes=5),
        EndTime=minute + dt.timedelta(minutes=5),
        Period=60,
        Statistics=["SampleCount", "Maximum"],
        ExtendedStatistics=["p99", "p50"],
    )
    assert_shape(cw, "GetMetricStatistics", stats)
    (point,) = stats["Datapoints"]
    assert point["ExtendedStatistics"] == {"p99": 198.0, "p50": 100.0}
    assert (point["SampleCount"], point["Maximum"]) == (200.0, 200.0)


def test_latency_scenario_p99_spikes_at_the_deploy(info: SandboxInfo) -> None:
    cw = client(info, "cloudwatch")
    deploy = tl.at(info.anchor, tl.LATENCY_DEPLOY_AGO)
    metric = {"Namespace": "AWS/ApplicationELB", "MetricName": "TargetResponseTime", "Dimensions": LB_DIMS}
    response = cw.get_metric_data(
        MetricDataQueries=[{"Id": "p99", "MetricStat": {"Metric": metric, "Period": 60, "Stat": "p99"}}],
        StartTime=info.anchor.replace(second=0) - tl.LATENCY_WINDOW,
        EndTime=info.anchor,
        ScanBy="TimestampAscending",
    )
    series = response["MetricDataResults"][0]
    assert len(series["Values"]) == int(tl.LATENCY_WINDOW / dt.timedelta(minutes=1))
    before = [v for t, v in zip(series["Timestamps"], series["Values"], strict=True) if t < deploy]
    after = [v for t, v in zip(series["Timestamps"], series["Values"], strict=True) if t >= deploy]
    assert max(before) < 1.0 < 2.0 < min(after)
    assert series["Timestamps"] == sorted(series["Timestamps"])


def test_rds_metrics_show_connections_rising_and_cpu_modest(info: SandboxInfo) -> None:
    cw = client(info, "cloudwatch")
    start, end = info.anchor.replace(second=0) - dt.timedelta(hours=3), info.anchor

    def series(name: str, stat: str) -> list[float]:
        result = cw.get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "m",
                    "MetricStat": {
                        "Metric": {"Namespace": "AWS/RDS", "MetricName": name, "Dimensions": DB_DIMS},
                        "Period": 60,
                        "Stat": stat,
                    },
                }
            ],
            StartTime=start,
            EndTime=end,
            ScanBy="TimestampAscending",
        )
        return list(result["MetricDataResults"][0]["Values"])

    connections = series("DatabaseConnections", "Maximum")
    assert len(connections) == 180
    assert connections[-1] > 0.8 * tl.DB_MAX_CONNECTIONS > 60 > connections[0]
    assert max(series("CPUUtilization", "p99")) < 40


# --- Logs Insights -------------------------------------------------------------------------------


def _query(logs: Any, info: SandboxInfo, query: str) -> dict[str, Any]:
    started = logs.start_query(
        logGroupName=tl.LATENCY_LOG_GROUP,
        queryString=query,
        startTime=int((info.anchor - tl.LATENCY_WINDOW).timestamp()),
        endTime=int(info.anchor.timestamp()),
    )
    response = logs.get_query_results(queryId=started["queryId"])
    assert_shape(logs, "GetQueryResults", response)
    assert response["status"] == "Complete"
    return dict(response)


def _rows(response: dict[str, Any]) -> list[dict[str, str]]:
    return [{c["field"]: c["value"] for c in line} for line in response["results"]]


def test_acceptance_query_returns_only_error_lines(info: SandboxInfo) -> None:
    logs = client(info, "logs")
    response = _query(
        logs,
        info,
        "fields @timestamp, @message | filter @message like /ERROR/ | sort @timestamp desc | limit 100",
    )
    rows = _rows(response)
    assert len(rows) == 100
    assert all(r["@message"].startswith("ERROR") for r in rows)
    assert all(r["@ptr"] for r in rows)
    stamps = [r["@timestamp"] for r in rows]
    assert stamps == sorted(stamps, reverse=True)
    stats = response["statistics"]
    assert stats["recordsScanned"] > stats["recordsMatched"] > 100


def test_errors_cluster_after_the_deploy(info: SandboxInfo) -> None:
    logs = client(info, "logs")
    rows = _rows(_query(logs, info, "filter @message like /ERROR/ | stats count(*) as errors by bin(15m)"))
    deploy = tl.at(info.anchor, tl.LATENCY_DEPLOY_AGO)

    def moment(value: str) -> dt.datetime:
        return dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=dt.UTC)

    before = sum(int(r["errors"]) for r in rows if moment(r["bin(15m)"]) + dt.timedelta(minutes=15) <= deploy)
    after = sum(int(r["errors"]) for r in rows if moment(r["bin(15m)"]) >= deploy)
    assert after > 20 * max(before, 1)


def test_parse_and_percentile_stats_over_info_lines(info: SandboxInfo) -> None:
    logs = client(info, "logs")
    rows = _rows(
        _query(
            logs,
            info,
            'parse @message "INFO [checkout] * * 200 *ms" as method, path, ms '
            "| filter ispresent(ms) | stats count(*) as n, pct(ms, 99) as p99 by path "
            "| sort n desc",
        )
    )
    assert {r["path"] for r in rows} == {"/api/checkout", "/api/cart", "/api/checkout/quote"}
    assert all(50 < float(r["p99"]) < 1000 for r in rows)


def test_describe_stop_and_malformed_queries(info: SandboxInfo) -> None:
    logs = client(info, "logs")
    started = logs.start_query(
        logGroupName=tl.LATENCY_LOG_GROUP,
        queryString="stats count(*)",
        startTime=int(info.anchor.timestamp()) - 600,
        endTime=int(info.anchor.timestamp()),
    )
    described = logs.describe_queries(logGroupName=tl.LATENCY_LOG_GROUP)
    assert_shape(logs, "DescribeQueries", described)
    assert started["queryId"] in {q["queryId"] for q in described["queries"]}
    assert logs.stop_query(queryId=started["queryId"])["success"] is False  # already complete
    with pytest.raises(ClientError) as err:
        logs.start_query(logGroupName=tl.LATENCY_LOG_GROUP, queryString="frobnicate", startTime=0, endTime=10)
    assert err.value.response["Error"]["Code"] == "MalformedQueryException"
    with pytest.raises(ClientError) as err:
        logs.start_query(logGroupName="/no/such/group", queryString="stats count(*)", startTime=0, endTime=10)
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


# --- CloudTrail ----------------------------------------------------------------------------------


def test_lookup_events_by_user_newest_first_with_real_structure(info: SandboxInfo) -> None:
    trail = client(info, "cloudtrail")
    response = trail.lookup_events(
        LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": "ci-deployer"}]
    )
    assert_shape(trail, "LookupEvents", response)
    events = response["Events"]
    assert [e["EventName"] for e in events] == ["UpdateService", "CreateDeployment", "RegisterTaskDefinition"]
    deploy = next(e for e in events if e["EventName"] == "CreateDeployment")
    assert abs(deploy["EventTime"] - tl.at(info.anchor, tl.LATENCY_DEPLOY_AGO)) < dt.timedelta(seconds=1)
    record = json.loads(deploy["CloudTrailEvent"])
    assert record["eventName"] == "CreateDeployment"
    assert record["userIdentity"]["userName"] == "ci-deployer"
    assert record["requestParameters"]["applicationName"] == "storefront-checkout"
    assert {"ResourceType": "AWS::CodeDeploy::Application", "ResourceName": "storefront-checkout"} in deploy[
        "Resources"
    ]


def test_lookup_events_filters_time_and_pages(info: SandboxInfo) -> None:
    trail = client(info, "cloudtrail")
    deploy = tl.at(info.anchor, tl.LATENCY_DEPLOY_AGO)
    by_name = trail.lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "PutBucketPolicy"}]
    )
    assert [e["Username"] for e in by_name["Events"]] == ["alice"]
    window = trail.lookup_events(
        StartTime=deploy - dt.timedelta(minutes=5), EndTime=deploy + dt.timedelta(minutes=5)
    )
    assert {e["EventName"] for e in window["Events"]} == {
        "RegisterTaskDefinition",
        "CreateDeployment",
        "UpdateService",
    }
    source = trail.lookup_events(
        LookupAttributes=[{"AttributeKey": "EventSource", "AttributeValue": "ecs.amazonaws.com"}]
    )
    assert {e["EventName"] for e in source["Events"]} == {"RegisterTaskDefinition", "UpdateService"}
    pages = list(trail.get_paginator("lookup_events").paginate(PaginationConfig={"PageSize": 2}))
    assert len(pages) >= 3 and all(len(p["Events"]) <= 2 for p in pages)
    names = [e["EventId"] for p in pages for e in p["Events"]]
    assert len(names) == len(set(names))
    with pytest.raises(ClientError) as err:
        trail.lookup_events(
            LookupAttributes=[
                {"AttributeKey": "Username", "AttributeValue": "a"},
                {"AttributeKey": "EventName", "AttributeValue": "b"},
            ]
        )
    assert err.value.response["Error"]["Code"] == "InvalidLookupAttributesException"


def test_write_calls_through_the_server_are_recorded(fresh_sandbox: Any) -> None:
    info = fresh_sandbox("crashloop", parts=("aws",))
    rds, trail = client(info, "rds"), client(info, "cloudtrail")
    assert trail.lookup_events()["Events"] == []
    rds.create_db_parameter_group(
        DBParameterGroupName="tuned", DBParameterGroupFamily="postgres16", Description="test"
    )
    rds.describe_db_parameter_groups()  # reads are not recorded
    (event,) = trail.lookup_events()["Events"]
    assert (event["EventName"], event["EventSource"], event["ReadOnly"]) == (
        "CreateDBParameterGroup",
        "rds.amazonaws.com",
        "false",
    )
    assert event["Resources"] == [{"ResourceType": "AWS::RDS::DBParameterGroup", "ResourceName": "tuned"}]


# --- RDS, CodeDeploy, ELBv2 ------------------------------------------------------------------------


def test_rds_instance_and_custom_parameter_group(info: SandboxInfo) -> None:
    rds = client(info, "rds")
    (instance,) = rds.describe_db_instances(DBInstanceIdentifier=tl.DB_INSTANCE_ID)["DBInstances"]
    assert (instance["Engine"], instance["DBInstanceStatus"]) == ("postgres", "available")
    assert instance["Endpoint"]["Port"] == 5432
    group = instance["DBParameterGroups"][0]["DBParameterGroupName"]
    parameters = rds.get_paginator("describe_db_parameters").paginate(DBParameterGroupName=group)
    values = {p["ParameterName"]: p.get("ParameterValue") for page in parameters for p in page["Parameters"]}
    assert values["max_connections"] == str(tl.DB_MAX_CONNECTIONS)


def test_db_parameters_carry_source_and_apply_type_and_filter_by_source(info: SandboxInfo) -> None:
    rds = client(info, "rds")
    group = f"{tl.DB_INSTANCE_ID}-params"
    everything = rds.describe_db_parameters(DBParameterGroupName=group)
    assert_shape(rds, "DescribeDBParameters", everything)
    by_name = {p["ParameterName"]: p for p in everything["Parameters"]}
    assert by_name["max_connections"]["Source"] == "user"
    assert (by_name["max_connections"]["ApplyType"], by_name["max_connections"]["DataType"]) == (
        "static",
        "integer",
    )
    assert by_name["work_mem"]["Source"] == "engine-default" and "ParameterValue" not in by_name["work_mem"]
    user = rds.describe_db_parameters(DBParameterGroupName=group, Source="user")["Parameters"]
    assert {p["ParameterName"] for p in user} == {"max_connections", "idle_in_transaction_session_timeout"}
    with pytest.raises(ClientError) as err:
        rds.describe_db_parameters(DBParameterGroupName="no-such-group")
    assert err.value.response["Error"]["Code"] == "DBParameterGroupNotFound"
    with pytest.raises(ClientError) as err:
        rds.describe_db_parameters(DBParameterGroupName=group, MaxRecords=5)
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_codedeploy_deployment_at_the_spike_and_the_load_balancer(info: SandboxInfo) -> None:
    cd = client(info, "codedeploy")
    (deployment_id,) = cd.list_deployments(applicationName="storefront-checkout", deploymentGroupName="prod")[
        "deployments"
    ]
    deployment = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert deployment["status"] == "Succeeded"
    assert abs(deployment["createTime"] - tl.at(info.anchor, tl.LATENCY_DEPLOY_AGO)) < dt.timedelta(seconds=1)
    assert cd.batch_get_deployments(deploymentIds=[deployment_id])["deploymentsInfo"][0]["deploymentId"] == (
        deployment_id
    )
    (lb,) = client(info, "elbv2").describe_load_balancers(Names=["storefront-alb"])["LoadBalancers"]
    assert lb["LoadBalancerArn"].endswith(":loadbalancer/" + tl.LATENCY_LOAD_BALANCER)
    assert math.isclose(len(lb["AvailabilityZones"]), 2)
