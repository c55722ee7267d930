"""Check a parsed boto3 response against botocore's output shape: required members present, types right.

botocore's parsers are lenient (a missing member is simply absent), so a gap fill that forgot a field
or sent a number as a string would pass unnoticed until a runbook indexed it. This walks the shape.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "double": (float, int),
    "float": (float, int),
    "boolean": (bool,),
    "timestamp": (dt.datetime,),
    "blob": (bytes,),
}


def problems(value: Any, shape: Any, path: str = "$") -> list[str]:
    out: list[str] = []
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: expected a structure, got {type(value).__name__}"]
        for name in getattr(shape, "required_members", []):
            if name not in value:
                out.append(f"{path}.{name}: required member missing")
        for name, member in shape.members.items():
            if name in value:
                out += problems(value[name], member, f"{path}.{name}")
        unknown = set(value) - set(shape.members) - {"ResponseMetadata"}
        out += [f"{path}.{name}: not in the service model" for name in sorted(unknown)]
    elif kind == "list":
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {type(value).__name__}"]
        for i, item in enumerate(value):
            out += problems(item, shape.member, f"{path}[{i}]")
    elif kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: expected a map, got {type(value).__name__}"]
        for key, item in value.items():
            out += problems(item, shape.value, f"{path}[{key!r}]")
    else:
        expected = _TYPES.get(kind, (object,))
        if not isinstance(value, expected) or (kind in ("integer", "long") and isinstance(value, bool)):
            out.append(f"{path}: expected {kind}, got {type(value).__name__} {value!r}")
    return out


def assert_shape(client: Any, operation: str, response: dict[str, Any]) -> None:
    assert_model_shape(client.meta.service_model, operation, response)


def assert_model_shape(service_model: Any, operation: str, response: dict[str, Any]) -> None:
    found = problems(response, service_model.operation_model(operation).output_shape)
    assert not found, "\n".join(found)
