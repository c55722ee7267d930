"""Every shipped runbook honours the notebook contract (docs/design.md).

The committed .ipynb is the one source of a runbook: it is what JupyterLab opens and saves, so it is
committed exactly as Jupyter writes it (nbformat 4.5, stable cell ids, no outputs, no execution
counts), and a save from Jupyter of an unchanged runbook changes no byte.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import papermill
import pytest

from runbook_kit import catalog, params

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(catalog.search_path()[-1].glob("*.ipynb"))
SDKS = {"boto3", "botocore", "kubernetes", "psycopg", "psycopg2"}


def source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_there_are_runbooks():
    assert len(NOTEBOOKS) >= 4 and {b.name for b in catalog.runbooks()} >= {p.stem for p in NOTEBOOKS}


def test_the_folder_people_open_holds_the_shipped_runbooks_and_nothing_else():
    opened = ROOT / "notebooks"
    assert opened.resolve() == NOTEBOOKS[0].parent.resolve()
    assert sorted(p.name for p in opened.iterdir() if p.name != ".ipynb_checkpoints") == [
        p.name for p in NOTEBOOKS
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_exactly_as_jupyter_writes_it(path):
    text = path.read_text(encoding="utf-8")
    nb = nbformat.reads(text, as_version=4)
    nbformat.validate(nb)
    assert (nb.nbformat, nb.nbformat_minor) == (4, 5)
    assert text == nbformat.writes(nb) + "\n", "not in Jupyter's own layout: open and save it in JupyterLab"
    ids = [c.id for c in nb.cells]
    assert len(set(ids)) == len(ids) and all(ids)
    assert set(nb.metadata) <= {"kernelspec", "language_info"}
    for cell in nb.cells:
        assert set(cell.metadata) <= {"tags"}, cell.metadata


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_save_from_jupyter_changes_no_byte(path, tmp_path):
    from jupyter_server.services.contents.filemanager import FileContentsManager

    copy = tmp_path / path.name
    copy.write_bytes(path.read_bytes())
    manager = FileContentsManager(root_dir=str(tmp_path))
    model = manager.get(path.name, content=True)
    manager.save({"type": "notebook", "format": "json", "content": model["content"]}, path.name)
    assert copy.read_bytes() == path.read_bytes()


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
