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
import math
import re
from collections.abc import Mapping
from typing import Any

from runbook_kit.errors import ParameterError

__all__ = [
    "Parameter",
    "coerce",
    "declared",
    "ensure_recordable",
    "inject",
    "load_parameter_file",
    "parameters_cell_index",
    "validate",
    "validate_incident_id",
]

_TYPES = ("str", "int", "float", "bool", "list", "dict")
_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}
_MAX_INT_DIGITS = 1000
_MAX_DEPTH = 32
_MAX_RECORDED = 1_000_000  # characters of all parameter values, as JSON
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
            if len(value.strip().lstrip("+-")) > _MAX_INT_DIGITS:
                raise bad(f" (more than {_MAX_INT_DIGITS} digits)")
            return int(value)
        raise bad()
    if kind == "float":
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                result = float(value)
            except OverflowError:
                raise bad(" (too large for a float)") from None
            if math.isfinite(result):
                return result
            raise bad(" (NaN and infinity are not accepted)")
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
                value = json.loads(value, parse_constant=_refuse_constant)
            except (ValueError, RecursionError):
                raise bad(" (give JSON: finite numbers, nested at most 32 deep)") from None
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


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not accepted")


def _unrecordable(value: Any, where: str = "", depth: int = 0) -> str | None:
    """Why `value` cannot go into the record as JSON and back into the kernel as a literal; None if it can."""
    at = f" (at {where[:60]})" if where else ""
    if depth > _MAX_DEPTH:
        return f"is nested more than {_MAX_DEPTH} deep"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: a non-UTF-8 argument, or a YAML "\ud800"
            return f"holds text that is not valid Unicode{at}"
        return None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return f"holds an int of more than {_MAX_INT_DIGITS} digits{at}" if len(
            str(abs(value))) > _MAX_INT_DIGITS else None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"holds NaN or infinity{at}"
    if isinstance(value, list):
        for i, item in enumerate(value):
            if why := _unrecordable(item, f"{where}[{i}]", depth + 1):
                return why
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str) or _unrecordable(k, where, depth + 1):
                return f"has a key that is not a (valid) string: {k!r:.40}{at}"
            if why := _unrecordable(v, f"{where}[{k!r:.40}]", depth + 1):
                return why
        return None
    if isinstance(value, dt.date):
        return f"holds a {type(value).__name__} ({value}){at}; quote it to pass a string"
    return (f"holds a {type(value).__name__}{at}, which a record cannot hold "
            "(use strings, numbers, lists, mappings)")


def ensure_recordable(values: Mapping[str, Any]) -> None:
    """Every accepted value must survive the record (JSON) and injection (a Python literal): refuse
    the rest before anything runs (dates, sets, bytes, NaN/infinity, huge ints, deep nesting)."""
    for name, value in values.items():
        try:
            why = _unrecordable(value)
        except (RecursionError, ValueError):
            why = f"is nested more than {_MAX_DEPTH} deep"
        if why:
            raise ParameterError(f"parameter {name!r} {why}")
    if len(json.dumps(dict(values), allow_nan=False)) > _MAX_RECORDED:
        raise ParameterError(f"the parameters are larger than {_MAX_RECORDED:,} characters as JSON")


def load_parameter_file(path: str) -> dict[str, Any]:
    """A YAML (or JSON) mapping of parameters. YAML aliases are refused (no "billion laughs"), the file
    must be UTF-8, and only plain values are built (safe loader). ParameterError with one line otherwise."""
    import yaml

    class _NoAliases(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.composer.ComposerError(
                    None, None, "aliases (*name) are not accepted in a parameter file", event.start_mark)
            return super().compose_node(parent, index)

    try:
        with open(path, "rb") as fh:
            raw = fh.read(_MAX_RECORDED + 1)
        if len(raw) > _MAX_RECORDED:
            raise ParameterError(f"parameter file {path} is larger than {_MAX_RECORDED:,} bytes")
        data = yaml.load(raw.decode("utf-8"), Loader=_NoAliases) or {}  # noqa: S506 - a SafeLoader
    except UnicodeDecodeError as exc:
        raise ParameterError(f"parameter file {path} is not UTF-8 text (byte {exc.start})") from None
    except yaml.YAMLError as exc:
        why = " ".join(str(exc).split())
        raise ParameterError(f"cannot read parameter file {path}: {why}"[:300]) from None
    except (OSError, ValueError, RecursionError) as exc:
        why = str(exc.strerror) if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}"
        raise ParameterError(f"cannot read parameter file {path}: {why}"[:300]) from None
    if not isinstance(data, dict):
        raise ParameterError(f"parameter file {path} must hold a mapping of name: value")
    return data


def validate_incident_id(incident: str) -> str:
    """Incident ids become folder names: letters, digits, '.', '_', '-'; no '/', '..' or control chars."""
    if not isinstance(incident, str) or not _INCIDENT_ID.fullmatch(incident) or ".." in incident:
        raise ParameterError(
            f"incident id {incident!r} is not allowed: use letters, digits, '.', '_' and '-' "
            "(at most 128, no '/' or '..')"
        )
    return incident


def inject(
    nb: dict[str, Any], values: Mapping[str, Any], *, run: Mapping[str, str] | None = None
) -> int | None:
    """Insert an `injected-parameters` cell after the parameters cell (papermill's layout).

    `run` ({"runbook", "incident"}): the headless run's identity, told to the kernel by the same cell
    (`runbook_kit.record.begin_run`), so that nothing run-specific travels in a kernel's environment.
    Returns the index of the injected cell (None when there is nothing to inject).
    """
    if not values and not run:
        return None
    index = parameters_cell_index(nb)
    lines = ["# Parameters"] + [f"{name} = {value!r}" for name, value in values.items()]
    if run:
        lines += ["# This run (set by the runner)", "import runbook_kit.record",
                  "runbook_kit.record.begin_run("
                  + ", ".join(f"{k}={str(run[k])!r}" for k in ("runbook", "incident")) + ")"]
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
