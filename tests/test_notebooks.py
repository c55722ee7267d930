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
    for section in ("When to use", "What it may change", "How to undo", "Permissions needed"):
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


# --- thin notebooks: every code cell is `rk.` steps and display --------------------------------------

FORBIDDEN_NODES = (
    ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try, ast.FunctionDef,
    ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp,
    ast.GeneratorExp, ast.IfExp, ast.NamedExpr, ast.Import, ast.ImportFrom, ast.Global, ast.Delete,
    ast.AugAssign, ast.Match, ast.Raise, ast.Assert,
)
RAW_CLIENTS = SDKS | {"clients", "settings", "runbook_sandbox"}


def _rooted_at_rk(node: ast.expr) -> bool:
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name) and node.id == "rk"


def _step(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and _rooted_at_rk(node.func)


def thin_problems(code: str) -> list[str]:
    """What makes a runbook code cell more than `rk.` step calls and display (empty: it is thin)."""
    tree = ast.parse(code)
    problems = []
    for stmt in tree.body:
        displayed = isinstance(stmt, ast.Expr) and (
            _step(stmt.value) or isinstance(stmt.value, ast.Name | ast.Attribute)
        )
        assigned = (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
            and _step(stmt.value)
        )
        if not (displayed or assigned):
            problems.append(f"line {stmt.lineno}: not an rk step, an assignment of one, or a name to display")
    for node in ast.walk(tree):
        if isinstance(node, FORBIDDEN_NODES):
            problems.append(f"line {node.lineno}: {type(node).__name__} belongs in an rk step")
        elif isinstance(node, ast.Call) and not _step(node):
            problems.append(f"line {node.lineno}: a call not rooted at rk: {ast.unparse(node.func)}")
        elif isinstance(node, ast.Attribute) and node.attr in RAW_CLIENTS:
            problems.append(f"line {node.lineno}: raw client or settings access: {ast.unparse(node)}")
        elif isinstance(node, ast.Name) and node.id in RAW_CLIENTS:
            problems.append(f"line {node.lineno}: SDK name {node.id}")
    return problems


@pytest.mark.parametrize(
    "code",
    [
        'pod = pods.pod.iloc[0] if len(pods) else ""',
        'deployment_changed = result.applied and action in ("rollback", "scale")',
        "for pod in pods.pod:\n    rk.k8s.pod_events(namespace=namespace, pod=pod)",
        "core = rk.clients.core_v1()",
        "rk.k8s.pod_status(namespace=namespace, core=clients.core_v1())",
        "import boto3",
        "x = [rk.k8s.pod_status(namespace=n) for n in names]",
        "try:\n    rk.apply(plan, dry_run=dry_run)\nexcept Exception:\n    pass",
        "rk.apply(plan, dry_run=dry_run or not raise_limit if x else y)",
    ],
)
def test_the_thinness_check_catches_logic_and_raw_clients(code):
    assert thin_problems(code)


def test_the_thinness_check_accepts_steps_assignments_and_display():
    code = (
        "pods = rk.k8s.pod_status(namespace=namespace, deployment=deployment)\npods\n"
        "rk.k8s.plot_restarts(pods, title=f'Restarts: {namespace}')\nresult.outcome"
    )
    assert thin_problems(code) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_code_cell_is_rk_steps_and_display(path):
    nb = json.loads(path.read_text())
    code_cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    steps = [c for c in code_cells if "parameters" not in c["metadata"].get("tags", [])]
    assert source(steps[0]).strip() == "import runbook_kit as rk"
    for cell in steps[1:]:
        assert thin_problems(source(cell)) == [], source(cell)


# --- no default names a sandbox resource; targets are required ----------------------------------------


def _sandbox_names() -> set[str]:
    from runbook_sandbox import scenarios, timeline

    names = {v for k, v in vars(timeline).items() if k.isupper() and isinstance(v, str) and len(v) > 2}
    for values in scenarios.RUNBOOK_PARAMETERS.values():
        names |= {v for v in values.values() if isinstance(v, str) and v}
    return names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_default_names_a_sandbox_resource(path):
    nb = json.loads(path.read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    text = source(cell)
    for name in _sandbox_names():
        assert f'"{name}"' not in text and f"'{name}'" not in text, f"a default names the sandbox's {name!r}"
    for p in params.declared(nb).values():
        if isinstance(p.default_value, str) and p.default_value:
            assert p.default_value not in _sandbox_names(), p.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_sandbox_names_every_required_target(path):
    from runbook_sandbox.scenarios import RUNBOOK_PARAMETERS

    required = {p.name for p in params.declared(json.loads(path.read_text())).values() if p.required}
    given = set(RUNBOOK_PARAMETERS.get(path.stem, {}))
    assert required <= given, "tests, nbval and the demo could not run it"


def test_targets_are_required_where_nothing_can_be_discovered():
    required = {
        p.stem: {q.name for q in params.declared(json.loads(p.read_text())).values() if q.required}
        for p in NOTEBOOKS
    }
    assert required["pod_crashloop"] == {"namespace"}
    assert required["k8s_mitigation"] == {"namespace"}
    assert required["api_latency_spike"] == {"load_balancer", "log_group", "namespace", "deployment"}
    assert required["db_connection_exhaustion"] == required["db_mitigation"] == set()  # the DSN names it


def test_a_missing_required_parameter_exits_2_before_a_kernel_starts(tmp_path):
    import subprocess
    import sys

    store = tmp_path / "store"
    done = subprocess.run(
        [sys.executable, "-m", "runbook_kit.cli", "run", "api_latency_spike", "-p", "namespace", "shop",
         "--store", str(store)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "missing required parameter 'load_balancer'" in done.stderr and "log_group" in done.stderr
    assert not store.exists(), "nothing ran, nothing was written"


def test_show_marks_required_parameters():
    from click.testing import CliRunner

    from runbook_kit.cli import cli

    result = CliRunner().invoke(cli, ["show", "pod_crashloop"])
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.output.splitlines() if ln.split()[:1] == ["namespace"])
    assert line.split()[1:3] == ["str", "required"]
    revision = next(ln for ln in result.output.splitlines() if ln.split()[:1] == ["revision"])
    assert revision.split()[1:4] == ["int", "default", "None"]


# --- per-runbook permissions: derived from the steps a runbook calls (runbook_kit/permissions.py) and
# checked against its "Permissions needed" markdown, both directions, in tests/doctor/test_permissions.py.


def test_nbval_runs_get_the_sandbox_names_appended_to_the_parameters_cell():
    from types import SimpleNamespace

    from runbook_sandbox import testing
    from runbook_sandbox.scenarios import RUNBOOK_PARAMETERS

    nb = json.loads((catalog.search_path()[-1] / "pod_crashloop.ipynb").read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    cell["source"] = source(cell)
    other = {"metadata": {}, "source": "import runbook_kit as rk"}
    path = Path("notebooks/pod_crashloop.ipynb")
    for c in (cell, other):
        testing._inject_sandbox_parameters(SimpleNamespace(cell=c, path=path))
    values: dict = {}
    exec(cell["source"], values)
    wanted = dict(RUNBOOK_PARAMETERS["pod_crashloop"])
    assert {k: values[k] for k in wanted} == wanted
    assert values["dry_run"] is True and other["source"] == "import runbook_kit as rk"
