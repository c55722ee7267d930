from __future__ import annotations

import pytest

from runbook_kit import ParameterError
from runbook_kit.params import coerce, declared, inject, validate, validate_incident_id

SOURCE = """namespace = "payments"  # the namespace to inspect
replicas = 3  # target replica count
ratio = 1.25  # memory raise factor
dry_run = True  # plan only
labels = ["a"]  # extra labels
limits: dict = {}  # per-container limits
note = "a # not a comment"  # the real comment
"""


def nb(source: str = SOURCE) -> dict:
    return {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "# T"},
            {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": source},
        ]
    }


def test_declared_reads_names_types_defaults_and_help():
    params = declared(nb())
    assert list(params) == ["namespace", "replicas", "ratio", "dry_run", "labels", "limits", "note"]
    assert [p.type for p in params.values()] == ["str", "int", "float", "bool", "list", "dict", "str"]
    assert (
        params["namespace"].default == '"payments"' and params["namespace"].help == "the namespace to inspect"
    )
    assert params["note"].help == "the real comment" and params["note"].default_value == "a # not a comment"


def test_no_parameters_cell_declares_nothing():
    assert declared({"cells": []}) == {}


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("replicas", "5", 5),
        ("replicas", " -2 ", -2),
        ("ratio", "2", 2.0),
        ("ratio", 3, 3.0),
        ("dry_run", "false", False),
        ("dry_run", "YES", True),
        ("dry_run", False, False),
        ("labels", '["x", "y"]', ["x", "y"]),
        ("limits", '{"api": "512Mi"}', {"api": "512Mi"}),
        ("namespace", 'it\'s "q"\n\\', 'it\'s "q"\n\\'),
    ],
)
def test_coerce_accepts_values_of_the_declared_type(name, raw, expected):
    assert coerce(declared(nb())[name], raw) == expected


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("replicas", "1.5"),
        ("replicas", "three"),
        ("replicas", True),
        ("ratio", "nan"),
        ("ratio", "fast"),
        ("dry_run", "maybe"),
        ("dry_run", 1),
        ("labels", "{}"),
        ("limits", "not json"),
        ("namespace", None),
    ],
)
def test_coerce_rejects_with_one_line(name, raw):
    with pytest.raises(ParameterError) as err:
        coerce(declared(nb())[name], raw)
    assert name in str(err.value) and "\n" not in str(err.value)


def test_validate_refuses_undeclared_names_including_code():
    with pytest.raises(ParameterError, match="unknown parameter"):
        validate(declared(nb()), {"x = 1\nimport os": "1"})


def test_inject_places_repr_after_the_parameters_cell():
    notebook = nb()
    at = inject(notebook, {"namespace": 'it\'s\n"x"', "replicas": 2})
    assert at == 2 and notebook["cells"][2]["metadata"]["tags"] == ["injected-parameters"]
    scope: dict = {}
    exec(notebook["cells"][2]["source"], scope)
    assert scope["namespace"] == 'it\'s\n"x"' and scope["replicas"] == 2


@pytest.mark.parametrize("good", ["INC-1234", "2026-11-29.db", "a_b"])
def test_incident_ids(good):
    assert validate_incident_id(good) == good


# --- every accepted value is recordable; the rest is refused up front with one line -------------

def _deep(n: int) -> list:
    value: list = [1]
    for _ in range(n):
        value = [value]
    return value


def _accepted(given: dict) -> dict:
    from runbook_kit.params import ensure_recordable

    values = validate(declared(nb()), given)
    ensure_recordable(values)
    return values


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"ratio": "nan"}, "expects float"),
        ({"ratio": "-inf"}, "expects float"),
        ({"ratio": float("nan")}, "NaN and infinity"),
        ({"ratio": float("inf")}, "NaN and infinity"),
        ({"ratio": 10**400}, "too large for a float"),
        ({"ratio": "1e999"}, "expects float"),
        ({"replicas": "9" * 5000}, "more than 1000 digits"),
        ({"labels": "[NaN]"}, "give JSON"),
        ({"labels": "[1, Infinity]"}, "give JSON"),
        ({"labels": "[" * 3000 + "]" * 3000}, "give JSON"),
        ({"labels": [float("nan")]}, "NaN or infinity (at [0])"),
        ({"labels": [__import__("datetime").date(2024, 1, 1)]}, "holds a date (2024-01-01)"),
        ({"labels": [{1, 2}]}, "holds a set"),
        ({"labels": [b"\x00"]}, "holds a bytes"),
        ({"labels": [10**2000]}, "more than 1000 digits"),
        ({"limits": {1: "a"}}, "key that is not a (valid) string"),
        ({"limits": {"\udcff": "a"}}, "key that is not a (valid) string"),
        ({"namespace": "caf\udce9"}, "not valid Unicode"),
        ({"labels": ["ok", "\ud800"]}, "not valid Unicode (at [1])"),
        ({"limits": {"a": {"b": _deep(40)}}}, "nested more than 32 deep"),
        ({"labels": _deep(3000)}, "nested more than 32 deep"),
    ],
)
def test_values_a_record_cannot_hold_are_refused(given, message):
    with pytest.raises(ParameterError, match=__import__("re").escape(message)) as info:
        _accepted(given)
    assert "\n" not in str(info.value) and len(str(info.value)) < 300


@pytest.mark.parametrize(
    "given",
    [{"ratio": 1e308}, {"ratio": "-0.0"}, {"replicas": "9" * 1000}, {"labels": '["2024-01-01", 1.5, null]'},
     {"limits": {"api": {"memory": "512Mi", "cpu": 0.5}}},
     {"namespace": __import__("datetime").date(2024, 1, 2)}],
)
def test_accepted_values_round_trip_through_json_and_a_python_literal(given):
    import ast
    import json

    values = _accepted(given)
    assert json.loads(json.dumps(values, allow_nan=False)) == values
    book = nb()
    inject(book, values)
    injected = book["cells"][2]["source"]
    namespace: dict = {}
    exec(compile(ast.parse(injected), "<injected>", "exec"), namespace)
    assert {k: namespace[k] for k in values} == values


def _file(tmp_path, content: bytes) -> str:
    path = tmp_path / "params.yaml"
    path.write_bytes(content)
    return str(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"a: &x [1, 2]\nb: *x\n", "aliases"),
        (b'a: &a ["x","x"]\nb: &b [*a,*a]\nc: &c [*b,*b]\n', "aliases"),
        (b"name: caf\xe9\n", "not UTF-8"),
        (b"- a\n- b\n", "must hold a mapping"),
        (b"a: [\n", "cannot read parameter file"),
        (b"a: !!python/object:os.system ls\n", "cannot read parameter file"),
        (b"a: " + b"[" * 3000 + b"]" * 3000 + b"\n", "cannot read parameter file"),
    ],
)
def test_bad_parameter_files_are_one_line(tmp_path, content, message):
    from runbook_kit.params import load_parameter_file

    with pytest.raises(ParameterError, match=message) as info:
        load_parameter_file(_file(tmp_path, content))
    assert "\n" not in str(info.value)


def test_a_parameter_file_with_dates_loads_and_dates_in_lists_are_refused(tmp_path):
    from runbook_kit.params import load_parameter_file

    data = load_parameter_file(_file(tmp_path, b"namespace: 2024-01-01\nlabels: [2024-01-01]\n"))
    assert validate(declared(nb()), {"namespace": data["namespace"]}) == {"namespace": "2024-01-01"}
    with pytest.raises(ParameterError, match="quote it"):
        _accepted({"labels": data["labels"]})
    assert load_parameter_file(_file(tmp_path, b"")) == {}
    with pytest.raises(ParameterError, match="No such file"):
        load_parameter_file(str(tmp_path / "missing.yaml"))
