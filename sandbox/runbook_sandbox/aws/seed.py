"""Seed the AWS side of the scenarios: RDS, CloudWatch metrics, CodeDeploy, CloudTrail and logs.

Seeding goes through boto3 against the sandbox's own endpoint (marked with the seed header so it is
not recorded as a trail event), so the data is stored exactly as a runbook's writes would be. The
few things the API cannot express (a deployment created 75 minutes ago, a load balancer with the
ARN the metrics name) are then set on moto's in-process models. Everything is placed relative to
the anchor with timeline's offsets and drawn from seeded RNGs: same anchor, same data.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import random
import uuid
from typing import Any

from runbook_sandbox import timeline as tl
from runbook_sandbox.aws.app import SEED_HEADER
from runbook_sandbox.aws.cloudtrail import ACCOUNT_ID, Trail, TrailEvent
from runbook_sandbox.aws.fleet import FleetHealth
from runbook_sandbox.aws.guardduty import FindingBook
from runbook_sandbox.aws.seed_changes import StackBook, seed_stacks
from runbook_sandbox.aws.seed_node import seed_dashboard, seed_node, seed_target_metrics
from runbook_sandbox.aws.seed_security import seed_security

__all__ = ["seed"]

MINUTE = dt.timedelta(minutes=1)
CI_USER = "ci-deployer"
DEPLOYMENT_GROUP = tl.LATENCY_CODEDEPLOY_GROUP
CODEDEPLOY_APP = tl.LATENCY_CODEDEPLOY_APP
# what the PostgreSQL part really holds at the anchor (~81 client sessions + the kit's own): the
# CloudWatch series ends where pg_stat_activity starts, so the two views of the incident agree
PEAK_CONNECTIONS = tl.DB_MAX_CONNECTIONS - 15


def _clients(url: str) -> Any:
    import boto3

    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )

    def client(name: str) -> Any:
        c = session.client(name, endpoint_url=url)
        c.meta.events.register(
            "before-sign.*.*", lambda request, **_: request.headers.add_header(SEED_HEADER, "1")
        )
        return c

    return client


def _minutes(anchor: dt.datetime, window: dt.timedelta) -> list[dt.datetime]:
    end = anchor.replace(second=0, microsecond=0)
    count = int(window / MINUTE)
    return [end - MINUTE * i for i in range(count, 0, -1)]


def _put(cw: Any, namespace: str, data: list[dict[str, Any]]) -> None:
    for i in range(0, len(data), 500):
        cw.put_metric_data(Namespace=namespace, MetricData=data[i : i + 500])


# --- RDS -----------------------------------------------------------------------------------------


def seed_rds(client: Any, anchor: dt.datetime, *, leaking: bool) -> None:
    rds, cw = client("rds"), client("cloudwatch")
    group = f"{tl.DB_INSTANCE_ID}-params"
    rds.create_db_parameter_group(
        DBParameterGroupName=group,
        DBParameterGroupFamily="postgres16",
        Description=f"custom parameters of {tl.DB_INSTANCE_ID}",
    )
    rds.modify_db_parameter_group(
        DBParameterGroupName=group,
        Parameters=[
            {
                "ParameterName": "max_connections",
                "ParameterValue": str(tl.DB_MAX_CONNECTIONS),
                "ApplyMethod": "pending-reboot",
            },
            {
                "ParameterName": "idle_in_transaction_session_timeout",
                "ParameterValue": "0",
                "ApplyMethod": "immediate",
            },
        ],
    )
    rds.create_db_instance(
        DBInstanceIdentifier=tl.DB_INSTANCE_ID,
        DBInstanceClass="db.t3.medium",
        Engine="postgres",
        EngineVersion="16.3",
        MasterUsername="orders_admin",
        MasterUserPassword="sandbox-not-a-secret",
        AllocatedStorage=100,
        DBName=tl.DB_NAME,
        DBParameterGroupName=group,
        MultiAZ=True,
        Tags=[{"Key": "team", "Value": "orders"}],
    )
    rng = random.Random(f"rds/{leaking}")
    dims = [{"Name": "DBInstanceIdentifier", "Value": tl.DB_INSTANCE_ID}]
    leak_start = anchor - tl.LEAK_AGE - dt.timedelta(minutes=40)
    data = []
    for minute in _minutes(anchor, dt.timedelta(hours=6)):
        base = 38 + 6 * math.sin(minute.timestamp() / 3600) + rng.uniform(-3, 3)
        if leaking and minute > leak_start:
            progress = min(1.0, (minute - leak_start) / (anchor - leak_start))
            base += (PEAK_CONNECTIONS - base) * progress
        data += [
            {
                "MetricName": "DatabaseConnections",
                "Dimensions": dims,
                "Timestamp": minute,
                "Value": round(base),
                "Unit": "Count",
            },
            {
                "MetricName": "CPUUtilization",
                "Dimensions": dims,
                "Timestamp": minute,
                "Value": round(rng.uniform(14, 26), 2),
                "Unit": "Percent",
            },
            {
                "MetricName": "FreeableMemory",
                "Dimensions": dims,
                "Timestamp": minute,
                "Value": round(1.6e9 - 4e6 * base + rng.uniform(-2e7, 2e7)),
                "Unit": "Bytes",
            },
        ]
    _put(cw, "AWS/RDS", data)


# --- latency -------------------------------------------------------------------------------------


def _load_balancer(client: Any) -> None:
    ec2, elb = client("ec2"), client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.40.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"][
            "SubnetId"
        ]
        for i, z in ((1, "a"), (2, "b"))
    ]
    name = tl.LATENCY_LOAD_BALANCER.split("/")[1]
    arn = elb.create_load_balancer(Name=name, Subnets=subnets, Type="application")["LoadBalancers"][0][
        "LoadBalancerArn"
    ]
    from moto.elbv2.models import elbv2_backends

    backend = elbv2_backends[ACCOUNT_ID]["us-east-1"]
    wanted = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT_ID}:loadbalancer/{tl.LATENCY_LOAD_BALANCER}"
    lb = backend.load_balancers.pop(arn)
    lb.arn = wanted  # the ARN suffix is the metrics' LoadBalancer dimension
    backend.load_balancers[wanted] = lb
    tg = elb.create_target_group(
        Name="storefront-checkout", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    elb.create_listener(
        LoadBalancerArn=wanted,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}],
    )


def _overview_dashboard(client: Any) -> None:
    """The environment's overview dashboard (the triage runbook draws its metric widgets)."""
    lb = tl.LATENCY_LOAD_BALANCER
    body = {"widgets": [
        {"type": "metric", "properties": {"title": "Storefront ALB latency", "period": 60, "metrics": [
            ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", lb, {"stat": "p99", "label": "p99"}],
            [".", ".", ".", ".", {"stat": "Average", "label": "average"}]]}},
        {"type": "metric", "properties": {"title": "Storefront ALB requests and 5xx", "period": 60,
                                          "metrics": [
            ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", lb, {"stat": "Sum"}],
            ["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "LoadBalancer", lb, {"stat": "Sum"}]]}},
        {"type": "text", "properties": {"markdown": "# Storefront overview"}},
    ]}
    client("cloudwatch").put_dashboard(DashboardName=tl.OVERVIEW_DASHBOARD, DashboardBody=json.dumps(body))


def _latency_metrics(client: Any, anchor: dt.datetime) -> None:
    rng = random.Random("latency/metrics")
    deploy = tl.at(anchor, tl.LATENCY_DEPLOY_AGO)
    dims = [{"Name": "LoadBalancer", "Value": tl.LATENCY_LOAD_BALANCER}]
    data = []
    for minute in _minutes(anchor, tl.LATENCY_WINDOW):
        after = minute >= deploy
        requests = int(1100 + 300 * math.sin(minute.timestamp() / 2400) + rng.uniform(-60, 60))
        samples = []
        for _ in range(100):  # a sample of this minute's response times, in seconds
            value = rng.lognormvariate(math.log(0.12), 0.35)
            if after and rng.random() < 0.08:
                value = rng.uniform(2.5, 3.2)  # requests waiting on the downstream's 3 s timeout
            samples.append(round(value, 3))
        data.append(
            {
                "MetricName": "TargetResponseTime",
                "Dimensions": dims,
                "Timestamp": minute,
                "Values": samples,
                "Unit": "Seconds",
            }
        )
        errors = rng.randint(25, 70) if after else rng.choice([0, 0, 0, 1, 2])
        data.append(
            {
                "MetricName": "HTTPCode_Target_5XX_Count",
                "Dimensions": dims,
                "Timestamp": minute,
                "Value": errors,
                "Unit": "Count",
            }
        )
        data.append(
            {
                "MetricName": "RequestCount",
                "Dimensions": dims,
                "Timestamp": minute,
                "Value": requests,
                "Unit": "Count",
            }
        )
    _put(client("cloudwatch"), "AWS/ApplicationELB", data)


def _deployment(client: Any, anchor: dt.datetime) -> str:
    cd = client("codedeploy")
    cd.create_application(applicationName=CODEDEPLOY_APP, computePlatform="ECS")
    cd.create_deployment_group(
        applicationName=CODEDEPLOY_APP,
        deploymentGroupName=DEPLOYMENT_GROUP,
        serviceRoleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/codedeploy-ecs",
    )
    deployment_id = cd.create_deployment(
        applicationName=CODEDEPLOY_APP,
        deploymentGroupName=DEPLOYMENT_GROUP,
        description="checkout v2.14.0: new payments client (pipeline #4821)",
    )["deploymentId"]
    from moto.codedeploy.models import codedeploy_backends

    info = codedeploy_backends[ACCOUNT_ID]["us-east-1"].deployments[deployment_id]
    deploy = tl.at(anchor, tl.LATENCY_DEPLOY_AGO).replace(tzinfo=None)
    info.create_time, info.start_time = deploy, deploy + dt.timedelta(seconds=4)
    info.complete_time = deploy + dt.timedelta(minutes=6)
    info.status = "Succeeded"
    info.deployment_overview = {**info.deployment_overview, "Succeeded": 1}
    return str(deployment_id)


def _trail_events(trail: Trail, anchor: dt.datetime, deployment_id: str) -> None:
    deploy = tl.at(anchor, tl.LATENCY_DEPLOY_AGO).replace(microsecond=0)
    ci: dict[str, Any] = {
        "username": CI_USER,
        "access_key_id": "AKIACIDEPLOYER000001",
        "user_agent": "aws-sdk-go-v2/1.30 ci",
        "source_ip": "198.51.100.24",
    }
    task = "storefront-checkout:214"
    events: list[tuple[int, str, str, tuple[tuple[str, str], ...], dict[str, Any], dict[str, Any]]] = [
        (
            -180,
            "RegisterTaskDefinition",
            "ecs.amazonaws.com",
            (("AWS::ECS::TaskDefinition", task),),
            {"family": "storefront-checkout"},
            ci,
        ),
        (
            0,
            "CreateDeployment",
            "codedeploy.amazonaws.com",
            (
                ("AWS::CodeDeploy::Application", CODEDEPLOY_APP),
                ("AWS::CodeDeploy::DeploymentGroup", DEPLOYMENT_GROUP),
            ),
            {
                "applicationName": CODEDEPLOY_APP,
                "deploymentGroupName": DEPLOYMENT_GROUP,
                "deploymentId": deployment_id,
            },
            ci,
        ),
        (
            20,
            "UpdateService",
            "ecs.amazonaws.com",
            (("AWS::ECS::Service", "storefront-checkout"),),
            {"service": "storefront-checkout", "taskDefinition": task},
            ci,
        ),
        (
            -3600,
            "PutBucketPolicy",
            "s3.amazonaws.com",
            (("AWS::S3::Bucket", "storefront-assets"),),
            {"bucketName": "storefront-assets"},
            {"username": "alice", "access_key_id": "AKIAALICE00000000001"},
        ),
        (900, "DescribeDBInstances", "rds.amazonaws.com", (), {}, {"username": "bob", "read_only": True}),
    ]
    for offset, name, source, resources, params, who in events:
        trail.add(
            TrailEvent(
                event_name=name,
                event_source=source,
                event_time=deploy + dt.timedelta(seconds=offset),
                resources=resources,
                request_parameters=params,
                event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox/trail/{name}/{offset}")),  # stable
                **who,
            )
        )


_DOWNSTREAM_ERRORS = [
    "ERROR [checkout] upstream timeout calling payments-gateway after 3000ms request_id={rid}"
    " path=/api/checkout",
    "ERROR [checkout] Unhandled exception in POST /api/checkout request_id={rid}\n"
    "Traceback (most recent call last):"
    '\n  File "/app/checkout/payments.py", line 88, in authorize\n    resp = client.post(url, timeout=3.0)\n'
    "httpx.ReadTimeout: timed out",
    "ERROR [checkout] circuit breaker open for payments-gateway (failures=12) request_id={rid}",
]


def _logs(client: Any, anchor: dt.datetime) -> None:
    logs = client("logs")
    rng = random.Random("latency/logs")
    deploy = tl.at(anchor, tl.LATENCY_DEPLOY_AGO)
    start = anchor - tl.LATENCY_WINDOW
    logs.create_log_group(logGroupName=tl.LATENCY_LOG_GROUP)
    pods = ["checkout-6d9f7c8b5-x2k4p", "checkout-6d9f7c8b5-q8r7t", "checkout-6d9f7c8b5-m3n9v"]
    for pod in pods:
        logs.create_log_stream(logGroupName=tl.LATENCY_LOG_GROUP, logStreamName=pod)
        events = []
        moment = start + dt.timedelta(seconds=rng.uniform(0, 20))
        while moment < anchor:
            after = moment >= deploy
            rid = f"{rng.getrandbits(48):012x}"
            if rng.random() < (0.35 if after else 0.004):
                message = rng.choice(_DOWNSTREAM_ERRORS).format(rid=rid)
            else:
                ms = int(rng.lognormvariate(math.log(120), 0.35) * (1.3 if after else 1.0))
                path = rng.choice(["/api/checkout", "/api/cart", "/api/checkout/quote"])
                message = f"INFO [checkout] {rng.choice(['GET', 'POST'])} {path} 200 {ms}ms request_id={rid}"
            events.append({"timestamp": int(moment.timestamp() * 1000), "message": message})
            moment += dt.timedelta(seconds=rng.uniform(8, 16))
        for i in range(0, len(events), 5000):
            answer = logs.put_log_events(
                logGroupName=tl.LATENCY_LOG_GROUP, logStreamName=pod, logEvents=events[i : i + 5000]
            )
            rejected = answer.get("rejectedLogEventsInfo")
            if rejected:  # an anchor more than 14 days back: say so in aws.log
                logging.getLogger(__name__).warning("log events rejected: %s", rejected)


def seed(
    url: str,
    *,
    scenarios: set[str],
    anchor: dt.datetime,
    trail: Trail,
    fleet: FleetHealth | None = None,
    findings: FindingBook | None = None,
    stacks: StackBook | None = None,
) -> None:
    """Seed the AWS side of `scenarios` (crashloop has none) into the server at `url`."""
    client = _clients(url)
    if "node" in scenarios:
        bad = seed_node(client, anchor, fleet if fleet is not None else FleetHealth())
    if scenarios & {"latency", "node"}:
        probed = bad if "node" in scenarios else "i-0a1b2c3d4e5f60718"
        seed_security(client, anchor, findings if findings is not None else FindingBook(), instance_id=probed)
    if scenarios & {"connections", "latency"}:
        seed_rds(client, anchor, leaking="connections" in scenarios)
    if "latency" in scenarios:
        _load_balancer(client)
        _latency_metrics(client, anchor)
        _overview_dashboard(client)
        _trail_events(trail, anchor, _deployment(client, anchor))
        _logs(client, anchor)
        if stacks is not None:
            seed_stacks(stacks, anchor)
    seed_target_metrics(client, anchor, scenarios)
    seed_dashboard(client, scenarios)
