"""pyproject.toml and environment.yml name the same dependencies; the facade stays small and cheap."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
# conda-forge names that differ from PyPI's
CONDA_TO_PYPI = {"python-kubernetes": "kubernetes"}


def _name(requirement: str) -> str:
    name = re.split(r"[\[<>=!~ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")
    return CONDA_TO_PYPI.get(name, name)


def test_environment_yml_matches_pyproject():
    wanted = set()
    for pyproject in (ROOT / "pyproject.toml", ROOT / "sandbox" / "pyproject.toml"):
        project = tomllib.loads(pyproject.read_text())["project"]
        wanted |= {_name(r) for r in project["dependencies"] if not r.startswith("runbook_kit")}
        for extra in project.get("optional-dependencies", {}).values():
            wanted |= {_name(r) for r in extra if not r.startswith("runbook_kit")}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    have = set()
    for dep in env:
        if isinstance(dep, dict):
            have |= {_name(r) for r in dep["pip"]}
        elif _name(dep) not in {"python", "pip"}:
            have.add(_name(dep))
    assert have == wanted


def test_facade_all_is_exactly_what_it_exports():
    import types

    import runbook_kit as rk

    for name in rk.__all__:  # every advertised name resolves (backends load lazily)
        assert getattr(rk, name) is not None, name
    exported = {
        n for n, v in vars(rk).items() if not n.startswith("_") and not isinstance(v, types.ModuleType)
    }
    assert exported <= set(rk.__all__), exported - set(rk.__all__)
    lazy = {n for n in rk.__all__ if isinstance(getattr(rk, n), types.ModuleType)}
    assert lazy == {"aws", "k8s", "pg", "investigate", "verification", "triage"}
    assert "clients" not in rk.__all__ and "settings" not in rk.__all__  # raw SDK clients bypass the guard


def test_import_is_cheap_and_lazy():
    code = (
        "import sys, runbook_kit; heavy = {'boto3', 'kubernetes', 'pandas', 'matplotlib', 'psycopg', "
        "'nbformat', 'nbclient', 'papermill'}; print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_import_does_not_load_the_runner():
    code = (
        "import sys, runbook_kit.cli; print('nbclient' in sys.modules, 'runbook_sandbox' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# Steps a facade exports although no shipped runbook calls them yet: each one a step an author would
# reasonably call. Adding a name to a facade means adding it here (or using it in a runbook).
AUTHOR_STEPS_BEYOND_THE_RUNBOOKS = {
    "k8s": {"plan_rollback", "plan_scale", "plan_restart", "plan_set_memory", "plan_delete_pod",
            "plan_cordon", "plan_uncordon", "plan_drain", "replicaset_status"},
    "pg": {"assess_connections", "plan_cancel_long_queries", "plan_terminate_long_queries"},
    "aws": {"find_spike", "insights_query", "top_errors", "instance_from_dsn", "metric_frame", "plot_metrics",
            "rds_metrics",
            # security findings, EC2 instances: steps of their own (issue 13)
            "assess_targets", "security_findings", "guardduty_findings", "securityhub_findings",
            "stack_events",
            "instance_health", "instance_metrics", "plan_reboot_instance", "plan_replace_instance"},
    "investigate": {"assess_database", "find_cause", "assess_node",
                    # the two plans api_latency_spike chooses between (plan_latency_mitigation)
                    "plan_rollback_of_cause", "plan_scale_out"},
}


def _steps_the_runbooks_call() -> dict[str, set[str]]:
    import ast
    import json

    from runbook_kit import catalog

    used: dict[str, set[str]] = {name: set() for name in AUTHOR_STEPS_BEYOND_THE_RUNBOOKS}
    for path in catalog.search_path()[-1].glob("*.ipynb"):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            for node in ast.walk(ast.parse("".join(cell["source"]))):
                if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                        and isinstance(node.value.value, ast.Name) and node.value.value.id == "rk"):
                    used.setdefault(node.value.attr, set()).add(node.attr)
    return used


def test_facades_export_the_steps_runbooks_call_and_no_building_blocks():
    import importlib

    used = _steps_the_runbooks_call()
    for backend, extra in AUTHOR_STEPS_BEYOND_THE_RUNBOOKS.items():
        exported = set(importlib.import_module(f"runbook_kit.{backend}").__all__)
        assert used[backend] <= exported, f"rk.{backend} lacks {used[backend] - exported}"
        unexpected, both = exported - used[backend] - extra, used[backend] & extra
        assert not unexpected, f"rk.{backend} exports what no author calls: {unexpected}"
        assert exported == used[backend] | extra, f"rk.{backend} lacks {extra - exported}"
        assert not both, f"rk.{backend}: runbooks call {both}; drop them from the extras"
