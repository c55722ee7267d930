"""The parameters cell is a contract: names, types and defaults a runbook accepts, nothing else.

papermill escapes values but injects *names* verbatim, so `-p 'x = 1\nimport os' 1` would execute
code in the kernel. Here a name is accepted only if the notebook's `parameters` cell declares it,
and a value is coerced to the declared type (from its annotation, else its default's literal type)
or rejected with one line. Values are injected with `repr()`, so strings with quotes, backslashes
and newlines round-trip exactly.

The parameters cell is parsed with `ast` (no kernel, no papermill import): `name = default  # help`
or `name: type = default  # help`. `None` means "not set": `replicas: int = None  # ...` declares an
optional int. A target a runbook cannot guess (no production default may name a resource) is
*required*: default `None` and a help comment that starts with "required", e.g.
`namespace: str = None  # required: namespace of the workload`. `validate` refuses a run that does not
give every required parameter, before a kernel starts.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Any

from runbook_kit.errors import ParameterError

__all__ = [
    "Parameter",
    "coerce",
    "declared",
    "inject",
    "parameters_cell_index",
    "validate",
    "validate_incident_id",
]

_TYPES = ("str", "int", "float", "bool", "list", "dict")
_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}
_INCIDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclasses.dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # str | int | float | bool | list | dict | any
    default: str  # the default as written in the notebook
    help: str = ""

    @property
    def required(self) -> bool:
        """Declared `name: type = None  # required: ...`: the run must give it."""
        return self.default.strip() == "None" and self.help.lower().startswith("required")

    @property
    def default_value(self) -> Any:
        try:
            return ast.literal_eval(self.default)
        except (ValueError, SyntaxError):
            return None


def _source(cell: Mapping[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def parameters_cell_index(nb: Mapping[str, Any]) -> int | None:
    for i, cell in enumerate(nb.get("cells", [])):
        if "parameters" in (cell.get("metadata", {}).get("tags") or []):
            return i
    return None


def _type_of(annotation: ast.expr | None, default: Any) -> str:
    if annotation is not None:
        text = ast.unparse(annotation).replace("typing.", "")
        base = re.split(r"[\[| ]", text, maxsplit=1)[0]
        if base in _TYPES:
            return base
    for name in ("bool", "int", "float", "str", "list", "dict"):  # bool before int: bool is an int
        if type(default).__name__ == name:
            return name
    return "any"


def declared(nb: Mapping[str, Any]) -> dict[str, Parameter]:
    """The parameters a notebook declares, in order. A notebook without a parameters cell has none."""
    index = parameters_cell_index(nb)
    if index is None:
        return {}
    source = _source(nb["cells"][index])
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ParameterError(f"the parameters cell does not parse: {exc.msg} (line {exc.lineno})") from exc
    lines = source.splitlines()
    found: dict[str, Parameter] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, annotation, value = node.targets[0].id, None, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            name, annotation, value = node.target.id, node.annotation, node.value
        else:
            continue
        default_src = ast.get_source_segment(source, value) or ""
        try:
            default = ast.literal_eval(value)
        except ValueError:
            default = None
        tail = lines[node.end_lineno - 1][value.end_col_offset or 0:] if node.end_lineno else ""
        comment = tail.split("#", 1)[1].strip() if "#" in tail else ""
        found[name] = Parameter(name, _type_of(annotation, default), default_src, comment)
    return found


def coerce(param: Parameter, value: Any) -> Any:
    """A value of the declared type, from a CLI string or a typed value (YAML/JSON), or ParameterError."""
    kind, name = param.type, param.name

    def bad(why: str = "") -> ParameterError:
        shown = value if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        return ParameterError(f"parameter {name!r} expects {kind}, got {shown!r}{why}")

    if kind in ("str", "any") and isinstance(value, str):
        return value
    if kind == "str":
        if isinstance(value, dt.date | int | float) and not isinstance(value, bool):
            return str(value)
        raise bad()
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise bad(" (use true or false)")
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
            return int(value)
        raise bad()
    if kind == "float":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                result = float(value)
            except ValueError:
                raise bad() from None
            if result == result and result not in (float("inf"), float("-inf")):
                return result
        raise bad()
    if kind in ("list", "dict"):
        target = list if kind == "list" else dict
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise bad(" (give JSON)") from None
        if isinstance(value, target):
            return value
        raise bad()
    return value


def validate(declared_params: Mapping[str, Parameter], given: Mapping[str, Any]) -> dict[str, Any]:
    """Check every given name is declared, every required one given, and coerce the values.

    Returns the values to inject.
    """
    unknown = [n for n in given if n not in declared_params]
    if unknown:
        names = ", ".join(declared_params) or "none"
        raise ParameterError(f"unknown parameter {unknown[0]!r}; this runbook declares: {names}")
    missing = [p for p in declared_params.values() if p.required and given.get(p.name) in (None, "")]
    if missing:
        first = missing[0]
        what = first.help.split(":", 1)[1].strip() if ":" in first.help else first.help
        more = f" (also missing: {', '.join(p.name for p in missing[1:])})" if missing[1:] else ""
        raise ParameterError(f"missing required parameter {first.name!r} ({what}): give it with "
                             f"-p {first.name} VALUE{more}")
    return {name: coerce(declared_params[name], value) for name, value in given.items()}


def validate_incident_id(incident: str) -> str:
    """Incident ids become folder names: letters, digits, '.', '_', '-'; no '/', '..' or control chars."""
    if not isinstance(incident, str) or not _INCIDENT_ID.fullmatch(incident) or ".." in incident:
        raise ParameterError(
            f"incident id {incident!r} is not allowed: use letters, digits, '.', '_' and '-' "
            "(at most 128, no '/' or '..')"
        )
    return incident


def inject(nb: dict[str, Any], values: Mapping[str, Any]) -> int | None:
    """Insert an `injected-parameters` cell after the parameters cell (papermill's layout).

    Returns the index of the injected cell (None when there is nothing to inject).
    """
    if not values:
        return None
    index = parameters_cell_index(nb)
    lines = ["# Parameters"] + [f"{name} = {value!r}" for name, value in values.items()]
    cell: dict[str, Any] = {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {"tags": ["injected-parameters"]},
        "outputs": [],
        "source": "\n".join(lines) + "\n",
    }
    at = (index + 1) if index is not None else 0
    nb["cells"].insert(at, cell)
    return at
