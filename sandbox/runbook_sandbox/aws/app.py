"""The sandbox's AWS endpoint: moto's WSGI app behind a middleware that fills its gaps.

One process, one port: boto3 talks to `AWS_ENDPOINT_URL` and never knows which answers come from
moto and which from the gap fills. The middleware looks at the JSON-protocol target
(`X-Amz-Target`), answers what moto lacks or gets wrong (CloudTrail LookupEvents, CloudWatch
percentiles, Logs Insights, RDS parameter metadata, EC2 instance status, target health, GuardDuty
findings, CloudFormation history) from moto's own in-process backends and the planted state, and
passes everything else through.
Responses use the service's JSON protocol (the one botocore 1.44 picks for cloudwatch, logs and
cloudtrail): epoch-second timestamps, `__type` + `message` errors.

Write calls that succeed are recorded in the CloudTrail store, so a runbook can find its own change
in the trail. Requests carrying the `x-sandbox-seed` header (the seeding client) are not recorded.
Every other request is logged (service, action, DryRun flag, status; no parameters) and served at
`GET /_sandbox/requests`, the witness that a dry run changed nothing, as the Kubernetes part's log is.

S3 conditional writes are atomic, as on real S3: moto honours `If-Match` and `If-None-Match: *` on
PutObject (412 PreconditionFailed), but checks the condition and stores the object as two steps with
no lock between them, and the server runs a thread per request; so every S3 write of one object
(PUT, POST, DELETE) runs under that object's lock here. The kit's compare-and-swap of incident.json
relies on it (tests/store/test_s3_concurrency.py: 20 writer processes, no run lost).
"""

from __future__ import annotations

import collections
import datetime as dt
import io
import json
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from runbook_sandbox.aws import (
    fleet,
    guardduty,
    logs_queries,
    metrics,
    query_protocol,
    rds_parameters,
    seed_changes,
)
from runbook_sandbox.aws.cloudtrail import ACCOUNT_ID, ApiError, Trail, TrailEvent

__all__ = ["SEED_HEADER", "GapFillApp", "build_app"]

SEED_HEADER = "x-sandbox-seed"
_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d+/([^/]+)/([^/]+)/")
_READ_ONLY = re.compile(
    r"^(Describe|List|Get|Lookup|BatchGet|Filter|Search|Test|Validate|Start[A-Z]\w*Query|"
    r"StopQuery|Select|Head|Put(MetricData|LogEvents)$)"
)
_RESOURCE_KEYS = {  # request parameter -> CloudTrail ResourceType
    "DBInstanceIdentifier": "AWS::RDS::DBInstance",
    "DBParameterGroupName": "AWS::RDS::DBParameterGroup",
    "applicationName": "AWS::CodeDeploy::Application",
    "deploymentGroupName": "AWS::CodeDeploy::DeploymentGroup",
    "LoadBalancerArn": "AWS::ElasticLoadBalancingV2::LoadBalancer",
    "TargetGroupArn": "AWS::ElasticLoadBalancingV2::TargetGroup",
    "logGroupName": "AWS::Logs::LogGroup",
    "AlarmName": "AWS::CloudWatch::Alarm",
    "AutoScalingGroupName": "AWS::AutoScaling::AutoScalingGroup",
    "InstanceId": "AWS::EC2::Instance",
    "InstanceId.1": "AWS::EC2::Instance",
}
_SERVICE_HOSTS = {
    "monitoring": "monitoring.amazonaws.com",
    "elasticloadbalancing": "elasticloadbalancing.amazonaws.com",
}

Handler = Callable[["GapFillApp", dict[str, Any], str, str], dict[str, Any] | None]


def _backend(module: str, name: str, region: str) -> Any:
    import importlib

    backends = getattr(importlib.import_module(f"moto.{module}.models"), name)
    return backends[ACCOUNT_ID][region]


def _lookup_events(app: GapFillApp, request: dict[str, Any], region: str, _: str) -> dict[str, Any]:
    return app.trail.lookup(request)


def _metric_data(app: GapFillApp, request: dict[str, Any], region: str, _: str) -> dict[str, Any] | None:
    return metrics.get_metric_data(_backend("cloudwatch", "cloudwatch_backends", region), request)


def _metric_statistics(
    app: GapFillApp, request: dict[str, Any], region: str, _: str
) -> dict[str, Any] | None:
    return metrics.get_metric_statistics(_backend("cloudwatch", "cloudwatch_backends", region), request)


def _start_query(app: GapFillApp, request: dict[str, Any], region: str, _: str) -> dict[str, Any]:
    return app.queries.start_query(_backend("logs", "logs_backends", region), request)


HANDLERS: dict[str, Handler] = {
    "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents": _lookup_events,
    "GraniteServiceVersion20100801.GetMetricData": _metric_data,
    "GraniteServiceVersion20100801.GetMetricStatistics": _metric_statistics,
    "Logs_20140328.StartQuery": _start_query,
    "Logs_20140328.GetQueryResults": lambda app, request, *_: app.queries.get_query_results(request),
    "Logs_20140328.StopQuery": lambda app, request, *_: app.queries.stop_query(request),
    "Logs_20140328.DescribeQueries": lambda app, request, *_: app.queries.describe_queries(request),
}


def _db_parameters(app: GapFillApp, request: dict[str, Any], region: str, _: str) -> dict[str, Any]:
    return rds_parameters.describe_db_parameters(_backend("rds", "rds_backends", region), request)


def _instance_status(app: GapFillApp, request: dict[str, Any], region: str, _: str) -> dict[str, Any]:
    ec2, _elbv2 = fleet.backends(region)
    health: fleet.FleetHealth = app.fleet
    return fleet.describe_instance_status(ec2, health, request)


def _target_health(app: GapFillApp, request: dict[str, Any], region: str, _: str) -> dict[str, Any]:
    ec2, elbv2 = fleet.backends(region)
    health: fleet.FleetHealth = app.fleet
    return fleet.describe_target_health(elbv2, ec2, health, request)


def _list_stacks(app: GapFillApp, request: dict[str, Any], region: str, _: str) -> dict[str, Any]:
    book: seed_changes.StackBook = app.stacks
    return seed_changes.list_stacks(book, region, request)


def _stack_events(app: GapFillApp, request: dict[str, Any], region: str, _: str) -> dict[str, Any] | None:
    book: seed_changes.StackBook = app.stacks
    return seed_changes.describe_stack_events(book, region, request)


QUERY_HANDLERS: dict[tuple[str, str], Handler] = {  # (API version, Action) for query-protocol services
    (query_protocol.CLOUDWATCH_VERSION, "GetMetricData"): _metric_data,
    (query_protocol.CLOUDWATCH_VERSION, "GetMetricStatistics"): _metric_statistics,
    (query_protocol.RDS_VERSION, "DescribeDBParameters"): _db_parameters,
    (query_protocol.EC2_VERSION, "DescribeInstanceStatus"): _instance_status,
    (query_protocol.ELBV2_VERSION, "DescribeTargetHealth"): _target_health,
    (query_protocol.CLOUDFORMATION_VERSION, "ListStacks"): _list_stacks,
    (query_protocol.CLOUDFORMATION_VERSION, "DescribeStackEvents"): _stack_events,
}


class GapFillApp:
    """WSGI middleware: gap fills first, moto for the rest, CloudTrail recording of writes."""

    def __init__(self, moto_app: Callable[..., Iterable[bytes]], *, trail: Trail | None = None) -> None:
        self.moto_app = moto_app
        self.trail = trail or Trail()
        self.queries = logs_queries.QueryBook()
        self.fleet: fleet.FleetHealth = fleet.FleetHealth()  # planted instance impairments (moto has none)
        self.guardduty = guardduty.FindingBook()  # planted GuardDuty findings (moto lists none)
        # planted CloudFormation history (moto cannot backdate)
        self.stacks: seed_changes.StackBook = seed_changes.StackBook()
        # every request but the sandbox's own (seeding, node sync): the witness of dry runs
        self.requests: collections.deque[dict[str, Any]] = collections.deque(maxlen=20_000)
        self._object_locks: collections.defaultdict[str, threading.Lock] = collections.defaultdict(
            threading.Lock)
        self._locks_lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Serve, and log every request that is not the seeding client's (`GET /_sandbox/requests`)."""
        if environ.get("PATH_INFO") == "/_sandbox/requests" and environ.get("REQUEST_METHOD") == "GET":
            return self._json_log(start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        if environ.get("HTTP_" + SEED_HEADER.upper().replace("-", "_")):
            return self._serve(environ, body, start_response)
        seen: list[str] = []

        def logging_start_response(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            seen.append(status)
            return start_response(status, headers, *args)

        result = self._serve(environ, body, logging_start_response)
        self.requests.append(_log_entry(environ, body, seen[0] if seen else ""))
        return result

    def _json_log(self, start_response: Callable[..., Any]) -> list[bytes]:
        data = json.dumps(list(self.requests)).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    def _serve(
        self, environ: dict[str, Any], body: bytes, start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        access_key, region, service = scope.groups() if scope else ("", "us-east-1", "")
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        handler = HANDLERS.get(target)
        if service == "guardduty" and environ.get("REQUEST_METHOD") == "POST":
            answered = self._guardduty(environ.get("PATH_INFO", ""), body, region, start_response)
            if answered is not None:
                return answered
        if handler is not None:
            try:
                request = json.loads(body or b"{}")
                answer = handler(self, request, region, access_key)
            except ApiError as exc:
                return self._json(
                    start_response, target, {"__type": exc.code, "message": exc.message}, status=exc.status
                )
            except (KeyError, TypeError, ValueError) as exc:
                return self._json(
                    start_response,
                    target,
                    {"__type": "ValidationException", "message": f"invalid request: {exc}"},
                    status=400,
                )
            if answer is not None:
                return self._json(start_response, target, answer)
        elif body and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            answered = self._query_protocol(body, region, start_response)
            if answered is not None:
                return answered
        status_holder: list[str] = []

        def recording_start_response(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            status_holder.append(status)
            return start_response(status, headers, *args)

        with self._object_lock(environ, service):
            result = self.moto_app(environ, recording_start_response)
        if (
            status_holder
            and status_holder[0].startswith("2")
            and not environ.get("HTTP_" + SEED_HEADER.upper().replace("-", "_"))
        ):
            self._record(environ, body, target, service, region, access_key)
        return result

    def _object_lock(self, environ: dict[str, Any], service: str) -> Any:
        """The lock of the S3 object a write addresses (check and store of a conditional put in one
        step, as real S3 does); a no-op context for every other request."""
        import contextlib

        path = environ.get("PATH_INFO", "")
        if service != "s3" or environ.get("REQUEST_METHOD") not in ("PUT", "POST", "DELETE") \
                or path.strip("/").count("/") < 1:
            return contextlib.nullcontext()
        with self._locks_lock:
            return self._object_locks[path]

    def _query_protocol(
        self, body: bytes, region: str, start_response: Callable[..., Any]
    ) -> list[bytes] | None:
        """Gap fills for query-protocol clients (None: not ours, moto answers)."""
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items()}
        action, version = form.get("Action", ""), form.get("Version", "")
        handler = QUERY_HANDLERS.get((version, action))
        if handler is None:
            return None
        service = query_protocol.SERVICES[version]
        request_id = "00000000-0000-4000-8000-000000000000"
        try:
            answer = handler(self, query_protocol.parse_request(form), region, "")
        except ApiError as exc:
            data, status = query_protocol.error_xml(service, exc.code, exc.message, request_id), exc.status
        except (KeyError, TypeError, ValueError) as exc:
            message = f"invalid request: {exc}"
            data, status = query_protocol.error_xml(service, "ValidationError", message, request_id), 400
        else:
            if answer is None:
                return None
            data, status = query_protocol.response_xml(service, action, answer, request_id), 200
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "")
        start_response(
            f"{status} {reason}",
            [
                ("Content-Type", "text/xml"),
                ("Content-Length", str(len(data))),
                ("x-amzn-RequestId", request_id),
            ],
        )
        return [data]

    def _guardduty(
        self, path: str, body: bytes, region: str, start_response: Callable[..., Any]
    ) -> list[bytes] | None:
        """GuardDuty's REST-JSON findings calls (None: another path, moto answers)."""
        try:
            detectors = list(_backend("guardduty", "guardduty_backends", region).detectors)
            answer = guardduty.answer(self.guardduty, detectors, path, json.loads(body or b"{}"))
        except ApiError as exc:
            payload, status = {"__type": exc.code, "message": exc.message}, exc.status
        except (KeyError, TypeError, ValueError) as exc:
            payload, status = {"__type": "BadRequestException", "message": f"invalid request: {exc}"}, 400
        else:
            if answer is None:
                return None
            payload, status = answer, 200
        data = json.dumps(payload).encode()
        reason = {200: "OK", 400: "Bad Request"}.get(status, "")
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        if status != 200:
            headers.append(("x-amzn-ErrorType", str(payload["__type"])))
        start_response(f"{status} {reason}", headers)
        return [data]

    @staticmethod
    def _json(
        start_response: Callable[..., Any], target: str, payload: dict[str, Any], status: int = 200
    ) -> list[bytes]:
        data = json.dumps(payload).encode()
        version = "1.0" if target.startswith("Granite") else "1.1"
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}.get(
            status, ""
        )
        start_response(
            f"{status} {reason}",
            [
                ("Content-Type", f"application/x-amz-json-{version}"),
                ("Content-Length", str(len(data))),
                ("x-amzn-RequestId", "00000000-0000-4000-8000-000000000000"),
            ],
        )
        return [data]

    def _record(
        self, environ: dict[str, Any], body: bytes, target: str, service: str, region: str, access_key: str
    ) -> None:
        """Record a successful write call as a CloudTrail management event (best effort)."""
        params: dict[str, Any] = {}
        if target:
            action = target.rsplit(".", 1)[-1]
            try:
                params = json.loads(body or b"{}")
            except ValueError:
                params = {}
        else:
            form = urllib.parse.parse_qs(body.decode("utf-8", "replace")) if body else {}
            action = (form.get("Action") or [""])[0]
            params = {k: v[0] for k, v in form.items() if k not in ("Action", "Version")}
        if not action or not service or _READ_ONLY.match(action):
            return
        resources = tuple(
            (kind, str(params[key]))
            for key, kind in _RESOURCE_KEYS.items()
            if isinstance(params.get(key), str | int)
        )
        safe = {k: v for k, v in params.items() if "password" not in k.lower() and "secret" not in k.lower()}
        self.trail.add(
            TrailEvent(
                event_name=action,
                event_source=_SERVICE_HOSTS.get(service, f"{service}.amazonaws.com"),
                event_time=dt.datetime.now(dt.UTC).replace(microsecond=0),
                username=_user_for(access_key),
                access_key_id=access_key or "AKIASANDBOXEXAMPLE01",
                read_only=False,
                resources=resources,
                request_parameters=safe,
                region=region,
                user_agent=environ.get("HTTP_USER_AGENT", "")[:200],
                source_ip=environ.get("REMOTE_ADDR", "127.0.0.1"),
            )
        )


def _log_entry(environ: dict[str, Any], body: bytes, status: str) -> dict[str, Any]:
    """One request as the log keeps it: service, action, dry-run flag, status (no parameters, no secrets)."""
    scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    form: dict[str, list[str]] = {}
    if not target and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    action = target.rsplit(".", 1)[-1] if target else (form.get("Action") or [""])[0]
    return {
        "ts": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "service": scope.group(3) if scope else "",
        "method": environ.get("REQUEST_METHOD", ""),
        "path": environ.get("PATH_INFO", ""),
        "action": action,
        "dry_run": (form.get("DryRun") or [""])[0].lower() == "true",
        "status": int(status.split()[0]) if status else 0,
    }


def _user_for(access_key: str) -> str:
    """The sandbox's dummy credentials belong to the on-call engineer running the runbook."""
    return "oncall-engineer" if access_key in ("", "testing") else access_key.lower()


def build_app(trail: Trail | None = None) -> GapFillApp:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return GapFillApp(DomainDispatcherApplication(create_backend_app), trail=trail)
