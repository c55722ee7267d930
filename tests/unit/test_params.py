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
