"""Write a runbook notebook from a list of (kind, text) cells; shared by the generators beside it.

Why generators: notebooks are committed without outputs and must follow the contract that
tests/test_notebooks.py enforces (documented first cell, a `parameters` cell, one `rk.` call per
step). Writing them from Python keeps the JSON valid and the diffs of the generators readable.
Kinds: "md" (markdown), "params" (the tagged parameters cell), "code".
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOKS = Path(__file__).resolve().parent.parent


def _cells(spec: list[tuple[str, str]]) -> list[nbformat.NotebookNode]:
    cells = []
    for kind, text in spec:
        text = text.strip("\n")
        if kind == "md":
            cells.append(new_markdown_cell(text))
        elif kind == "params":
            cells.append(new_code_cell(text, metadata={"tags": ["parameters"]}))
        else:
            cells.append(new_code_cell(text))
    return cells


def write(name: str, spec: list[tuple[str, str]]) -> Path:
    """Validate and write notebooks/<name>.ipynb; returns its path."""
    nb = new_notebook(cells=_cells(spec), metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    for i, cell in enumerate(nb.cells):
        cell.id = f"{name[:12]}-{i:02d}"
    nbformat.validate(nb)
    path = NOTEBOOKS / f"{name}.ipynb"
    # sources stay one string per cell (nbformat.writes would split them into lists of lines)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
