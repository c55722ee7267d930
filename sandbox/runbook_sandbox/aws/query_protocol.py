"""The AWS query protocol (form-encoded requests, XML responses) for the CloudWatch, RDS, ELBv2 and EC2
gap fills (EC2 speaks its own variant: `locationName` tags, `<item>` lists, no Result wrapper).

botocore 1.44 talks JSON to CloudWatch, but older SDKs, the AWS CLI's bundled botocore and other
languages' SDKs still use the query protocol; the percentile gap fills answer them in kind. Requests
are un-flattened (`MetricDataQueries.member.1.MetricStat.Period=60` -> nested lists and dicts) and
responses are serialised from botocore's own output shape, so member names, list wrappers
(`<member>`), map entries (`<entry><key/><value/></entry>`) and ISO 8601 timestamps are what the
service model says.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any
from xml.sax.saxutils import escape

__all__ = [
    "CLOUDFORMATION_VERSION",
    "CLOUDWATCH_VERSION",
    "EC2_VERSION",
    "ELBV2_VERSION",
    "RDS_VERSION",
    "SERVICES",
    "ec2_list",
    "error_xml",
    "parse_request",
    "response_xml",
    "unflatten",
]

CLOUDWATCH_VERSION = "2010-08-01"
RDS_VERSION = "2014-10-31"
EC2_VERSION = "2016-11-15"
ELBV2_VERSION = "2015-12-01"
CLOUDFORMATION_VERSION = "2010-05-15"
SERVICES = {  # API version -> botocore service
    CLOUDWATCH_VERSION: "cloudwatch",
    RDS_VERSION: "rds",
    EC2_VERSION: "ec2",
    ELBV2_VERSION: "elbv2",
    CLOUDFORMATION_VERSION: "cloudformation",
}
_NAMESPACES = {
    "cloudwatch": "http://monitoring.amazonaws.com/doc/2010-08-01/",
    "rds": "http://rds.amazonaws.com/doc/2014-10-31/",
    "ec2": "http://ec2.amazonaws.com/doc/2016-11-15/",
    "elbv2": "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/",
    "cloudformation": "http://cloudformation.amazonaws.com/doc/2010-05-15/",
}


def unflatten(form: dict[str, str]) -> dict[str, Any]:
    """`A.member.1.B=x` -> {"A": [{"B": "x"}]}; `S.member.1=x` -> {"S": ["x"]}."""
    root: dict[str, Any] = {}
    for key, value in form.items():
        parts = key.split(".")
        node: dict[str, Any] = root
        i = 0
        while True:
            name = parts[i]
            if i + 2 < len(parts) and parts[i + 1] == "member":
                index = int(parts[i + 2]) - 1
                items = node.setdefault(name, [])
                while len(items) <= index:
                    items.append({})
                if i + 3 == len(parts):  # a list of scalars
                    items[index] = value
                    break
                node, i = items[index], i + 3
            elif i == len(parts) - 1:
                node[name] = value
                break
            else:
                node, i = node.setdefault(name, {}), i + 1
    return root


def _numbers(request: dict[str, Any]) -> dict[str, Any]:
    """Form values are strings; the handlers expect the JSON protocol's numbers where it has them."""
    for query in request.get("MetricDataQueries") or []:
        stat = query.get("MetricStat") or {}
        if "Period" in stat:
            stat["Period"] = int(stat["Period"])
        if "ReturnData" in query:
            query["ReturnData"] = query["ReturnData"] == "true"
    for key in ("Period", "MaxRecords"):
        if key in request:
            request[key] = int(request[key])
    return request


def parse_request(form: dict[str, str]) -> dict[str, Any]:
    data = unflatten({k: v for k, v in form.items() if k not in ("Action", "Version")})
    return _numbers(data)


@functools.cache
def _model(service: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


def _timestamp(value: Any) -> str:
    moment = dt.datetime.fromtimestamp(value, tz=dt.UTC) if isinstance(value, int | float) else value
    return str(moment.strftime("%Y-%m-%dT%H:%M:%SZ"))


def _xml(value: Any, shape: Any) -> str:
    kind = shape.type_name
    if kind == "structure":
        return "".join(
            f"<{name}>{_xml(value[name], member)}</{name}>"
            for name, member in shape.members.items()
            if name in value and value[name] is not None
        )
    if kind == "list":
        return "".join(f"<member>{_xml(item, shape.member)}</member>" for item in value)
    if kind == "map":
        return "".join(
            f"<entry><key>{escape(str(k))}</key><value>{_xml(v, shape.value)}</value></entry>"
            for k, v in value.items()
        )
    if kind == "timestamp":
        return _timestamp(value)
    if kind == "boolean":
        return "true" if value else "false"
    if kind in ("double", "float"):
        return repr(float(value))
    return escape(str(value))


def _ec2_xml(value: Any, shape: Any) -> str:
    """EC2's own flavour: members under their `locationName` (`instanceStatusSet`), lists of `<item>`."""
    kind = shape.type_name
    if kind == "structure":
        parts = []
        for name, member in shape.members.items():
            if name in value and value[name] is not None:
                tag = member.serialization.get("name", name[:1].lower() + name[1:])
                parts.append(f"<{tag}>{_ec2_xml(value[name], member)}</{tag}>")
        return "".join(parts)
    if kind == "list":
        tag = shape.member.serialization.get("name", "item")
        return "".join(f"<{tag}>{_ec2_xml(item, shape.member)}</{tag}>" for item in value)
    if kind == "timestamp":
        moment = dt.datetime.fromtimestamp(value, tz=dt.UTC) if isinstance(value, int | float) else value
        return str(moment.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    return _xml(value, shape)


def ec2_list(value: Any) -> list[Any]:
    """EC2 flattens lists without `member` (`InstanceId.1`, `Filter.1.Value.2`): {"1": x} -> [x]."""
    if isinstance(value, dict):
        return [value[k] for k in sorted(value, key=int)]
    return [] if value is None else [value]


def response_xml(service: str, operation: str, result: dict[str, Any], request_id: str) -> bytes:
    shape = _model(service).operation_model(operation).output_shape
    if service == "ec2":
        return (
            f'<{operation}Response xmlns="{_NAMESPACES[service]}"><requestId>{request_id}</requestId>'
            f"{_ec2_xml(result, shape)}</{operation}Response>"
        ).encode()
    body = _xml(result, shape)
    return (
        f'<{operation}Response xmlns="{_NAMESPACES[service]}"><{operation}Result>{body}</{operation}Result>'
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{operation}Response>"
    ).encode()


def error_xml(service: str, code: str, message: str, request_id: str) -> bytes:
    if service == "ec2":
        return (
            f"<Response><Errors><Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
            f"</Error></Errors><RequestID>{request_id}</RequestID></Response>"
        ).encode()
    return (
        f'<ErrorResponse xmlns="{_NAMESPACES[service]}"><Error><Type>Sender</Type><Code>{escape(code)}</Code>'
        f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()
