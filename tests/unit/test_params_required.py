"""Required parameters: `name: type = None  # required: ...` must be given; None means "not set"."""

from __future__ import annotations

import pytest

from runbook_kit import ParameterError
from runbook_kit.params import declared, validate

SOURCE = """namespace: str = None  # required: namespace of the workload
deployment: str = None  # required: the deployment
replicas: int = None  # scale: the new replica count
selector = ""  # label selector; empty: every pod
dry_run = True  # plan only
"""


def nb() -> dict:
    return {"cells": [{"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": SOURCE}]}


def test_required_is_a_none_default_with_a_required_help():
    params = declared(nb())
    assert [p.name for p in params.values() if p.required] == ["namespace", "deployment"]
    assert params["replicas"].type == "int" and params["replicas"].default_value is None
    assert not params["replicas"].required and not params["selector"].required


def test_a_missing_required_parameter_is_named_in_one_line():
    with pytest.raises(ParameterError) as err:
        validate(declared(nb()), {"deployment": "api"})
    message = str(err.value)
    assert "\n" not in message
    assert "missing required parameter 'namespace' (namespace of the workload)" in message
    assert "-p namespace VALUE" in message


def test_every_missing_one_is_listed_and_an_empty_value_is_missing():
    with pytest.raises(ParameterError) as err:
        validate(declared(nb()), {"namespace": ""})
    assert "missing required parameter 'namespace'" in str(err.value)
    assert "also missing: deployment" in str(err.value)


def test_given_required_parameters_and_an_optional_int_are_coerced():
    values = validate(declared(nb()), {"namespace": "shop", "deployment": "api", "replicas": "3"})
    assert values == {"namespace": "shop", "deployment": "api", "replicas": 3}
