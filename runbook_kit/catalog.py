"""Which runbooks exist: those shipped in the package (`runbook_kit/runbooks/`, found with
importlib.resources, so an installed wheel has them) and any folder on `$RUNBOOK_PATH`.

A runbook's name is its file name without `.ipynb`; its title and one-line purpose are the first
heading and the first paragraph of its first markdown cell. Notebooks are read as plain JSON (no
nbformat import), so `runbook list` and `runbook show` answer instantly.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

from runbook_kit.errors import UnknownRunbook

__all__ = ["Runbook", "find", "load", "runbooks", "search_path"]

# A package installed from a wheel or in editable mode is a folder on disk, so this is a real path.
_SHIPPED = Path(str(resources.files("runbook_kit") / "runbooks"))


@dataclasses.dataclass(frozen=True)
class Runbook:
    name: str
    path: Path
    title: str
    purpose: str


def search_path() -> list[Path]:
    extra = [Path(p).expanduser() for p in os.environ.get("RUNBOOK_PATH", "").split(os.pathsep) if p]
    return [*extra, _SHIPPED]


def load(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        nb = json.load(fh)
    if not isinstance(nb, dict) or "cells" not in nb:
        raise UnknownRunbook(f"{path} is not a Jupyter notebook")
    for cell in nb["cells"]:  # on disk, sources may be lists of lines; in memory, strings (as nbformat does)
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
    return nb


def _describe(path: Path) -> Runbook:
    title, purpose = path.stem, ""
    try:
        cells = load(path)["cells"]
    except (OSError, ValueError, UnknownRunbook):
        return Runbook(path.stem, path, title, "(unreadable notebook)")
    for cell in cells:
        if cell.get("cell_type") != "markdown":
            continue
        src = cell.get("source", "")
        lines = ("".join(src) if isinstance(src, list) else src).splitlines()
        headings = [ln.lstrip("#").strip() for ln in lines if ln.startswith("#")]
        paragraph = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
        title = headings[0] if headings else title
        purpose = paragraph[0] if paragraph else ""
        break
    return Runbook(path.stem, path, title, purpose)


def runbooks() -> list[Runbook]:
    """Every runbook on the search path (first one wins for a name), sorted by name."""
    seen: dict[str, Path] = {}
    for folder in search_path():
        for path in sorted(folder.glob("*.ipynb")) if folder.is_dir() else []:
            if not path.name.startswith(("_", ".")):
                seen.setdefault(path.stem, path)
    return [_describe(p) for _, p in sorted(seen.items())]


def find(name: str) -> Runbook:
    """A runbook by name, or by path to an .ipynb file."""
    candidate = Path(name).expanduser()
    if name.endswith(".ipynb") and candidate.is_file():
        return _describe(candidate)
    for folder in search_path():
        path = folder / f"{name}.ipynb"
        if path.is_file() and "/" not in name and not name.startswith("."):
            return _describe(path)
    known = [r.name for r in runbooks()]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known runbooks: {', '.join(known) or 'none'}"
    raise UnknownRunbook(f"no runbook named {name!r}{hint} (see `runbook list`)")
