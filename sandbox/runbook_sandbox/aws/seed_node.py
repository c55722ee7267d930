"""Seed the `node` scenario's AWS side: an EKS worker Auto Scaling group whose first instance is impaired.

Real API calls through the seeding client: a launch template, a target group behind an ALB, and the
Auto Scaling group (moto launches its instances and registers them in the target group). Then the
one thing the API cannot express, the degraded host, is planted on the gap fill's `FleetHealth`;
CloudWatch gets the instances' CPUUtilization and StatusCheckFailed series for the last hour (the
impaired instance's checks fail from the impairment on), and a dashboard shows the environment.
The Kubernetes part reads the group through the same endpoint and keeps one Node per instance.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from typing import Any

from runbook_sandbox import timeline as tl
from runbook_sandbox.aws.fleet import FleetHealth, Impairment

__all__ = ["SEEDED_TAG", "seed_dashboard", "seed_node", "seed_target_metrics"]

MINUTE = dt.timedelta(minutes=1)
SEEDED_TAG = "runbook-sandbox:seeded"


def _default_subnets(ec2: Any) -> list[dict[str, Any]]:
    subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    return sorted(subnets, key=lambda s: s["AvailabilityZone"])[:3]


def seed_node(client: Any, anchor: dt.datetime, health: FleetHealth) -> str:
    """Seed the group, target group, metrics; return the impaired instance's id."""
    ec2, asg, elb = client("ec2"), client("autoscaling"), client("elbv2")
    subnets = _default_subnets(ec2)
    vpc = subnets[0]["VpcId"]
    ec2.create_launch_template(
        LaunchTemplateName=f"{tl.NODE_ASG}-template",
        LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "m5.xlarge"},
    )
    group = elb.create_target_group(
        Name=tl.NODE_TARGET_GROUP,
        Protocol="HTTP",
        Port=tl.NODE_TARGET_PORT,
        VpcId=vpc,
        TargetType="instance",
        HealthCheckPath="/healthz",
    )["TargetGroups"][0]["TargetGroupArn"]
    lb = elb.create_load_balancer(
        Name=f"{tl.NODE_NAMESPACE}-alb", Subnets=[s["SubnetId"] for s in subnets[:2]], Type="application"
    )["LoadBalancers"][0]["LoadBalancerArn"]
    elb.create_listener(
        LoadBalancerArn=lb,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group}],
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName=tl.NODE_ASG,
        LaunchTemplate={"LaunchTemplateName": f"{tl.NODE_ASG}-template"},
        MinSize=tl.NODE_COUNT,
        MaxSize=tl.NODE_COUNT + 2,
        DesiredCapacity=tl.NODE_COUNT,
        VPCZoneIdentifier=",".join(s["SubnetId"] for s in subnets),
        TargetGroupARNs=[group],
        Tags=[
            {"Key": f"kubernetes.io/cluster/{tl.NODE_CLUSTER}", "Value": "owned", "PropagateAtLaunch": True},
            {"Key": "eks:cluster-name", "Value": tl.NODE_CLUSTER, "PropagateAtLaunch": True},
            {"Key": "eks:nodegroup-name", "Value": "general", "PropagateAtLaunch": True},
        ],
    )
    instances = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[tl.NODE_ASG])["AutoScalingGroups"][0][
        "Instances"
    ]
    bad = instances[0]["InstanceId"]
    impaired_at = tl.at(anchor, tl.NODE_IMPAIRED_AGO).replace(microsecond=0)
    health.impair(bad, Impairment(since=impaired_at))
    asg.create_or_update_tags(  # the Kubernetes part waits for this mark before it seeds the nodes
        Tags=[
            {
                "ResourceId": tl.NODE_ASG,
                "ResourceType": "auto-scaling-group",
                "Key": SEEDED_TAG,
                "Value": "true",
                "PropagateAtLaunch": False,
            }
        ]
    )
    _metrics(client("cloudwatch"), anchor, [i["InstanceId"] for i in instances], bad, impaired_at)
    return str(bad)


def _metrics(cw: Any, anchor: dt.datetime, instances: list[str], bad: str, impaired_at: dt.datetime) -> None:
    rng = random.Random("node/metrics")
    end = anchor.replace(second=0, microsecond=0)
    data: list[dict[str, Any]] = []
    for minute in (end - MINUTE * i for i in range(60, 0, -1)):
        for instance in instances:
            dims = [{"Name": "InstanceId", "Value": instance}]
            failed = instance == bad and minute >= impaired_at
            if not failed:  # a host that lost reachability reports no CPU
                cpu = rng.uniform(28, 42) if instance != bad else rng.uniform(55, 70)
                data.append(
                    {
                        "MetricName": "CPUUtilization",
                        "Dimensions": dims,
                        "Timestamp": minute,
                        "Value": round(cpu, 1),
                        "Unit": "Percent",
                    }
                )
            for name, value in (
                ("StatusCheckFailed", failed),
                ("StatusCheckFailed_System", failed),
                ("StatusCheckFailed_Instance", False),
            ):
                data.append(
                    {
                        "MetricName": name,
                        "Dimensions": dims,
                        "Timestamp": minute,
                        "Value": float(value),
                        "Unit": "Count",
                    }
                )
    for i in range(0, len(data), 500):
        cw.put_metric_data(Namespace="AWS/EC2", MetricData=data[i : i + 500])


def seed_dashboard(client: Any, scenarios: set[str]) -> None:
    """One CloudWatch dashboard for the environment: the widgets of the scenarios that are seeded."""
    widgets: list[dict[str, Any]] = []
    if "latency" in scenarios:
        lb = tl.LATENCY_LOAD_BALANCER
        widgets.append(
            {
                "type": "metric",
                "x": 0,
                "y": 0,
                "width": 12,
                "height": 6,
                "properties": {
                    "title": f"{tl.LATENCY_SERVICE} latency",
                    "region": "us-east-1",
                    "stat": "p99",
                    "period": 60,
                    "metrics": [
                        ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", lb],
                        [".", "HTTPCode_Target_5XX_Count", ".", ".", {"stat": "Sum", "yAxis": "right"}],
                    ],
                },
            }
        )
    if "node" in scenarios:
        widgets.append(
            {
                "type": "metric",
                "x": 12,
                "y": 0,
                "width": 12,
                "height": 6,
                "properties": {
                    "title": f"{tl.NODE_ASG} status checks",
                    "region": "us-east-1",
                    "stat": "Maximum",
                    "period": 60,
                    "metrics": [["AWS/EC2", "StatusCheckFailed", "AutoScalingGroupName", tl.NODE_ASG]],
                },
            }
        )
    if "connections" in scenarios or "latency" in scenarios:
        widgets.append(
            {
                "type": "metric",
                "x": 0,
                "y": 6,
                "width": 12,
                "height": 6,
                "properties": {
                    "title": f"{tl.DB_INSTANCE_ID} connections",
                    "region": "us-east-1",
                    "stat": "Maximum",
                    "period": 60,
                    "metrics": [
                        ["AWS/RDS", "DatabaseConnections", "DBInstanceIdentifier", tl.DB_INSTANCE_ID]
                    ],
                },
            }
        )
    if widgets:
        client("cloudwatch").put_dashboard(
            DashboardName=tl.DASHBOARD, DashboardBody=json.dumps({"widgets": widgets})
        )


def _group_dimensions(elb: Any, name: str) -> list[dict[str, str]] | None:
    groups = elb.describe_target_groups(Names=[name])["TargetGroups"]
    if not groups or not groups[0].get("LoadBalancerArns"):
        return None
    group, lb = groups[0]["TargetGroupArn"], groups[0]["LoadBalancerArns"][0]
    return [
        {"Name": "TargetGroup", "Value": group.split(":", 5)[5]},
        {"Name": "LoadBalancer", "Value": lb.split(":loadbalancer/", 1)[1]},
    ]


def seed_target_metrics(client: Any, anchor: dt.datetime, scenarios: set[str]) -> None:
    """Per target group: healthy/unhealthy hosts, 5xx and TargetResponseTime samples (for p99).

    latency: every target of storefront-checkout slows down after the deploy (a deployment, not a
    subset of targets); node: one of three shop-web targets turns unhealthy when its host fails.
    """
    elb, cw = client("elbv2"), client("cloudwatch")
    end = anchor.replace(second=0, microsecond=0)
    plans = []
    if "latency" in scenarios:
        plans.append(
            (tl.LATENCY_SERVICE, "storefront-checkout", tl.at(anchor, tl.LATENCY_DEPLOY_AGO), 3, 180)
        )
    if "node" in scenarios:
        plans.append(("node", tl.NODE_TARGET_GROUP, tl.at(anchor, tl.NODE_IMPAIRED_AGO), tl.NODE_COUNT, 60))
    for story, name, change, hosts, minutes in plans:
        dims = _group_dimensions(elb, name)
        if dims is None:
            continue
        if (
            story != "node"
        ):  # the checkout pods' addresses, as the AWS Load Balancer Controller registers them
            arn = elb.describe_target_groups(Names=[name])["TargetGroups"][0]["TargetGroupArn"]
            elb.register_targets(
                TargetGroupArn=arn,
                Targets=[{"Id": f"10.40.{1 + i % 2}.{21 + i}", "Port": 8080} for i in range(hosts)],
            )
        rng = random.Random(f"targets/{name}")
        data: list[dict[str, Any]] = []
        for minute in (end - MINUTE * i for i in range(minutes, 0, -1)):
            after = minute >= change
            unhealthy = 1 if story == "node" and minute >= change + 2 * MINUTE else 0  # 2 failed checks
            samples = []
            for _ in range(60):
                value = rng.lognormvariate(math.log(0.12), 0.35)
                if story != "node" and after and rng.random() < 0.08:
                    value = rng.uniform(2.5, 3.2)
                samples.append(round(value, 3))
            errors = (
                rng.randint(25, 70)
                if story != "node" and after
                else rng.randint(8, 15)
                if story == "node" and after and not unhealthy
                else rng.choice([0, 0, 1])
            )
            data += [
                {
                    "MetricName": "TargetResponseTime",
                    "Dimensions": dims,
                    "Timestamp": minute,
                    "Values": samples,
                    "Unit": "Seconds",
                },
                {
                    "MetricName": "HTTPCode_Target_5XX_Count",
                    "Dimensions": dims,
                    "Timestamp": minute,
                    "Value": errors,
                    "Unit": "Count",
                },
                {
                    "MetricName": "RequestCount",
                    "Dimensions": dims,
                    "Timestamp": minute,
                    "Value": rng.randint(330, 370),
                    "Unit": "Count",
                },
                {
                    "MetricName": "HealthyHostCount",
                    "Dimensions": dims,
                    "Timestamp": minute,
                    "Value": hosts - unhealthy,
                    "Unit": "Count",
                },
                {
                    "MetricName": "UnHealthyHostCount",
                    "Dimensions": dims,
                    "Timestamp": minute,
                    "Value": unhealthy,
                    "Unit": "Count",
                },
            ]
        for i in range(0, len(data), 500):
            cw.put_metric_data(Namespace="AWS/ApplicationELB", MetricData=data[i : i + 500])
