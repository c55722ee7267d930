"""Seed security findings: GuardDuty (on the gap fill's book) and Security Hub (through its API).

Background noise an account always has, none of it the incident's cause: a port probe on an
internet-facing instance, root credentials used for a console login, a security group open to the
world and an unencrypted database. A runbook must list them, most severe first, and not blame them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from runbook_sandbox.aws.cloudtrail import ACCOUNT_ID
from runbook_sandbox.aws.guardduty import FindingBook

__all__ = ["seed_security"]


def _iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _guardduty(detector: str, anchor: dt.datetime, instance_id: str) -> list[dict[str, Any]]:
    region, arn = "us-east-1", f"arn:aws:guardduty:us-east-1:{ACCOUNT_ID}:detector/{detector}/finding/"
    probe, root = "4ec8f1e2a9b3c7d6e5f4a3b2c1d0e9f8", "7a1b2c3d4e5f60718293a4b5c6d7e8f9"
    return [
        {
            "Id": probe,
            "Arn": arn + probe,
            "AccountId": ACCOUNT_ID,
            "Region": region,
            "Partition": "aws",
            "SchemaVersion": "2.0",
            "Type": "Recon:EC2/PortProbeUnprotectedPort",
            "Severity": 2.0,
            "Confidence": 5.0,
            "Title": f"Unprotected port on EC2 instance {instance_id} is being probed.",
            "Description": f"EC2 instance {instance_id} has an unprotected port 22 which is being probed by "
            "a "
            "known malicious host.",
            "CreatedAt": _iso(anchor - dt.timedelta(days=2)),
            "UpdatedAt": _iso(anchor - dt.timedelta(minutes=35)),
            "Resource": {
                "ResourceType": "Instance",
                "InstanceDetails": {"InstanceId": instance_id, "InstanceType": "m5.xlarge"},
            },
            "Service": {
                "ServiceName": "guardduty",
                "DetectorId": detector,
                "Archived": False,
                "Count": 41,
                "EventFirstSeen": _iso(anchor - dt.timedelta(days=2)),
                "EventLastSeen": _iso(anchor - dt.timedelta(minutes=35)),
            },
        },
        {
            "Id": root,
            "Arn": arn + root,
            "AccountId": ACCOUNT_ID,
            "Region": region,
            "Partition": "aws",
            "SchemaVersion": "2.0",
            "Type": "Policy:IAMUser/RootCredentialUsage",
            "Severity": 5.0,
            "Confidence": 5.0,
            "Title": "API ListBuckets was invoked using root credentials.",
            "Description": "API ListBuckets was invoked using root credentials from a known IP address.",
            "CreatedAt": _iso(anchor - dt.timedelta(hours=3, minutes=10)),
            "UpdatedAt": _iso(anchor - dt.timedelta(hours=3, minutes=10)),
            "Resource": {
                "ResourceType": "AccessKey",
                "AccessKeyDetails": {"UserName": "Root", "UserType": "Root"},
            },
            "Service": {
                "ServiceName": "guardduty",
                "DetectorId": detector,
                "Archived": False,
                "Count": 1,
                "EventFirstSeen": _iso(anchor - dt.timedelta(hours=3, minutes=10)),
                "EventLastSeen": _iso(anchor - dt.timedelta(hours=3, minutes=10)),
            },
        },
    ]


def _security_hub(anchor: dt.datetime) -> list[dict[str, Any]]:
    product = "arn:aws:securityhub:us-east-1::product/aws/securityhub"
    base = {
        "SchemaVersion": "2018-10-08",
        "ProductArn": product,
        "AwsAccountId": ACCOUNT_ID,
        "GeneratorId": "aws-foundational-security-best-practices/v/1.0.0",
        "Types": ["Software and Configuration Checks/Industry and Regulatory Standards"],
        "RecordState": "ACTIVE",
        "Workflow": {"Status": "NEW"},
    }
    return [
        {
            **base,
            "Id": f"arn:aws:securityhub:us-east-1:{ACCOUNT_ID}:finding/ec2-19-sg-open",
            "Title": "EC2.19 Security groups should not allow unrestricted access to ports with high risk",
            "Description": "Security group sg-0storefront0 allows 0.0.0.0/0 on port 3389.",
            "Severity": {"Label": "HIGH", "Normalized": 70},
            "FirstObservedAt": _iso(anchor - dt.timedelta(days=6)),
            "LastObservedAt": _iso(anchor - dt.timedelta(hours=1)),
            "CreatedAt": _iso(anchor - dt.timedelta(days=6)),
            "UpdatedAt": _iso(anchor - dt.timedelta(hours=1)),
            "Resources": [
                {
                    "Type": "AwsEc2SecurityGroup",
                    "Id": f"arn:aws:ec2:us-east-1:{ACCOUNT_ID}:security-group/sg-0storefront0",
                    "Region": "us-east-1",
                }
            ],
        },
        {
            **base,
            "Id": f"arn:aws:securityhub:us-east-1:{ACCOUNT_ID}:finding/rds-3-unencrypted",
            "Title": "RDS.3 RDS DB instances should have encryption at-rest enabled",
            "Description": "The DB instance is not encrypted at rest.",
            "Severity": {"Label": "MEDIUM", "Normalized": 40},
            "FirstObservedAt": _iso(anchor - dt.timedelta(days=20)),
            "LastObservedAt": _iso(anchor - dt.timedelta(hours=2)),
            "CreatedAt": _iso(anchor - dt.timedelta(days=20)),
            "UpdatedAt": _iso(anchor - dt.timedelta(hours=2)),
            "Resources": [
                {
                    "Type": "AwsRdsDbInstance",
                    "Id": f"arn:aws:rds:us-east-1:{ACCOUNT_ID}:db:orders-db",
                    "Region": "us-east-1",
                }
            ],
        },
    ]


def seed_security(client: Any, anchor: dt.datetime, book: FindingBook, *, instance_id: str) -> None:
    detector = client("guardduty").create_detector(Enable=True)["DetectorId"]
    for finding in _guardduty(detector, anchor, instance_id):
        book.add(finding)
    hub = client("securityhub")
    hub.enable_security_hub(EnableDefaultStandards=False)
    hub.batch_import_findings(Findings=_security_hub(anchor))
