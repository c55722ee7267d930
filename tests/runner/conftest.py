"""Small notebooks written by the tests, for the runner's failure modes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def notebook(*cells: tuple[str, str] | tuple[str, str, list[str]]) -> dict:
    out = []
    for i, spec in enumerate(cells):
        kind, source = spec[0], spec[1]
        # sources as lists of lines, as nbformat writes them to disk
        cell = {
            "cell_type": kind,
            "id": f"c{i}",
            "metadata": {"tags": spec[2]} if len(spec) > 2 else {},
            "source": source.splitlines(keepends=True),
        }
        if kind == "code":
            cell.update(outputs=[], execution_count=None)
        out.append(cell)
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "cells": out,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    }


@pytest.fixture
def write_notebook(tmp_path: Path):
    def write(name: str, *cells) -> str:
        path = tmp_path / f"{name}.ipynb"
        path.write_text(json.dumps(notebook(*cells)))
        return str(path)

    return write


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"
