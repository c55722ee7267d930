"""Every shipped runbook honours the notebook contract (docs/design.md)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import papermill
import pytest

from runbook_kit import catalog, params

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
SDKS = {"boto3", "botocore", "kubernetes", "psycopg", "psycopg2"}


def source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_there_are_runbooks():
    assert len(NOTEBOOKS) >= 4 and {b.name for b in catalog.runbooks()} >= {p.stem for p in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_is_a_contract(path):
    nb = json.loads(path.read_text())
    tagged = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1
    declared = params.declared(nb)
    assert declared["dry_run"].type == "bool" and declared["dry_run"].default_value is True
    assert all(p.help for p in declared.values()), "every parameter has a help comment"
    inspected = papermill.inspect_notebook(str(path))
    assert list(inspected) == list(declared)
    for name, info in inspected.items():
        assert info["inferred_type_name"] in (declared[name].type, "None"), name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_thin_documented_and_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    first = source(nb["cells"][0])
    assert nb["cells"][0]["cell_type"] == "markdown" and first.startswith("# ")
    for section in ("When to use", "What it may change", "How to undo", "Permissions"):
        assert section in first, f"first cell lacks '{section}'"
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        assert cell.get("outputs") == [] and cell.get("execution_count") is None
        tree = ast.parse(source(cell))
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
        }
        assert not imported & SDKS, f"SDK import in a notebook: {imported & SDKS}"
