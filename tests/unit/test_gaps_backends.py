"""Backend reads against a real AWS-shaped server that denies them: the real boto3 client, a gap out.

The server on 127.0.0.1 answers every call the way AWS answers a principal without the permission
(HTTP 400, `AccessDeniedException`, JSON protocol), so botocore parses a genuine ClientError.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import boto3
import pytest

from runbook_kit import record
from runbook_kit.aws import cloudtrail, codedeploy
from runbook_kit.investigate import change_events


class _Denying(http.server.BaseHTTPRequestHandler):
    calls: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = self.headers.get("X-Amz-Target", "")
        self.calls.append(target)
        action = target.rsplit(".", 1)[-1]
        body = json.dumps({"__type": "AccessDeniedException",
                           "message": f"User: arn:aws:iam::123456789012:user/oncall is not authorized to "
                                      f"perform: {action}"}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("x-amzn-RequestId", "0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def denying() -> Iterator[str]:
    _Denying.calls = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Denying)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def client(service: str, url: str) -> Any:
    return boto3.client(service, endpoint_url=url, region_name="us-east-1", aws_access_key_id="AKIAEXAMPLE",
                        aws_secret_access_key="secret-example")


def test_cloudtrail_without_permission_is_a_named_gap_and_an_empty_frame(denying):
    frame = cloudtrail.lookup_events(minutes=60, read_only=False, cloudtrail=client("cloudtrail", denying))
    assert frame.empty and list(frame.columns) == cloudtrail.COLUMNS
    assert _Denying.calls and _Denying.calls[0].endswith("LookupEvents")
    gap = record.entries_this_session()[-1]
    assert gap.kind == "gap" and gap.title == "CloudTrail events"
    why = gap.details["why"]
    assert "permission denied" in why and "not authorized to perform: LookupEvents" in why
    assert gap.details["fix"] == "grant: cloudtrail:LookupEvents"
    assert record.missing(frame) == [f"CloudTrail events: {gap.details['why']}"]
    # later steps take the empty frame as "no trail" and go on
    assert change_events(trail=frame).empty


def test_codedeploy_without_permission_is_a_gap_naming_the_application(denying):
    frame = codedeploy.deployments(application="storefront-checkout",
                                   codedeploy=client("codedeploy", denying))
    assert frame.empty and list(frame.columns) == codedeploy.COLUMNS
    gap = record.entries_this_session()[-1]
    assert gap.title == "CodeDeploy deployments of storefront-checkout"
    assert "codedeploy:ListDeploymentGroups" in gap.details["fix"]
