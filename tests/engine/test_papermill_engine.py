"""`papermill --engine runbook`: the real papermill CLI, the runner's record guarantees.

papermill's default engine writes OUT at every cell start and end and every `--autosave-cell-every`
seconds, with the kernel's outputs unredacted; the `runbook` engine (runbook_kit.engine) runs the
kit's runner instead, so OUT is written once, redacted, with the summary and the failure banner, and
the run lands in the incident's index like `runbook run`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from runbook_kit import catalog
from runbook_sandbox.scenarios import runbook_parameters

SECRET = "s3cr3t-papermill-token-7a6b5c"


def _papermill(src: str, out: Path, *params: str, env: dict[str, str],
              cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "papermill", "--engine", "runbook", src, str(out), "--log-output",
            "--autosave-cell-every", "1"]
    for pair in params:
        name, _, value = pair.partition("=")
        args += ["-p", name, value]
    return subprocess.run(args, env={**os.environ, **env}, capture_output=True, text=True, timeout=600,
                          cwd=cwd or out.parent)


def _notebook(path: Path, *cells: tuple[str, str, list[str]]) -> str:
    nb = {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [
            {"cell_type": kind, "id": f"c{i}", "metadata": {"tags": tags}, "source": source,
             **({"outputs": [], "execution_count": None} if kind == "code" else {})}
            for i, (kind, source, tags) in enumerate(cells)
        ],
    }
    path.write_text(json.dumps(nb))
    return str(path)


def _cells(path: Path) -> tuple[dict, list[dict]]:
    """OUT as papermill wrote it (nbformat writes sources as lists of lines): metadata, cells."""
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        cell["source"] = "".join(cell["source"])
    return nb, nb["cells"]


def _index(store: Path, incident: str) -> list[dict]:
    return json.loads((store / incident / "incident.json").read_text())["runs"]


def test_a_runbook_through_papermill_is_recorded_like_runbook_run(sandbox, tmp_path):
    store, out = tmp_path / "store", tmp_path / "out.ipynb"
    values = runbook_parameters("pod_crashloop")
    done = _papermill(str(catalog.find("pod_crashloop").path), out,
                      *(f"{k}={v}" for k, v in values.items()),
                      env={**sandbox.env, "RUNBOOK_INCIDENT": "INC-PM1", "RUNBOOK_STORE": str(store)})
    assert done.returncode == 0, done.stderr[-3000:]
    nb, cells = _cells(out)
    meta = nb["metadata"]["runbook_kit"]
    assert (meta["runbook"], meta["incident"], meta["status"]) == ("pod_crashloop", "INC-PM1", "succeeded")
    assert cells[0]["source"].startswith("# Incident record: `pod_crashloop`")
    assert any(e["kind"] == "finding" and "OOMKilled" in e["title"] for e in meta["entries"])
    assert nb["metadata"]["papermill"]["output_path"] == str(out)
    # the same record is in the store, and the run in the incident's index
    (run,) = _index(store, "INC-PM1")
    assert run["status"] == "succeeded" and run["runbook"] == "pod_crashloop"
    stored = json.loads(Path(run["notebook"]).read_text())
    assert stored["metadata"]["runbook_kit"]["record_id"] == meta["record_id"]
    # papermill's parameters went through the kit's validation and injection, once
    injected = [c for c in cells if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1 and f"namespace = {values['namespace']!r}" in injected[0]["source"]


def test_a_failing_cell_is_marked_named_and_exits_non_zero_and_no_save_holds_a_secret(tmp_path):
    store, out = tmp_path / "store", tmp_path / "out.ipynb"
    src = _notebook(
        tmp_path / "leaky.ipynb",
        ("markdown", "# Leaky\n\nPrints a token, then fails.", []),
        ("code", "fail = False  # fail the last cell\ndry_run = True\n", ["parameters"]),
        ("markdown", "## Print the token", []),
        ("code", "import os, time\nprint(os.environ['PAYMENTS_API_TOKEN'], flush=True)\ntime.sleep(3)\n", []),
        ("markdown", "## Check the service", []),
        ("code", "if fail:\n    raise RuntimeError('down, token ' + os.environ['PAYMENTS_API_TOKEN'])\n", []),
    )
    seen: list[str] = []  # every version of OUT that appeared while papermill ran (its autosaves)
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            if out.exists():
                text = out.read_text(errors="replace")
                if not seen or seen[-1] != text:
                    seen.append(text)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        done = _papermill(src, out, "fail=True", env={
            "PAYMENTS_API_TOKEN": SECRET, "RUNBOOK_INCIDENT": "INC-PM2", "RUNBOOK_STORE": str(store)})
    finally:
        stop.set()
        watcher.join()
    seen.append(out.read_text())

    assert done.returncode != 0
    assert "Check the service" in done.stderr and "RuntimeError" in done.stderr
    for text in (*seen, done.stdout, done.stderr, *(p.read_text() for p in store.rglob("*") if p.is_file())):
        assert SECRET not in text
    nb, cells = _cells(out)
    meta = nb["metadata"]["runbook_kit"]
    assert meta["status"] == "failed" and 'under "Check the service"' in meta["failure"]
    # the summary on top says so (papermill puts its own "An Exception was encountered" above it)
    summary = next(c["source"] for c in cells[:2] if c["source"].startswith("# Incident record"))
    assert "FAILED" in summary and "Check the service" in summary
    banner = next(i for i, c in enumerate(cells) if "⚠ FAILED" in c["source"])
    failing = next(i for i, c in enumerate(cells) if "raise RuntimeError" in c["source"])
    assert banner < failing and "REDACTED" in json.dumps(cells[failing]["outputs"])
    assert "REDACTED" in json.dumps(next(c for c in cells if "time.sleep" in c["source"])["outputs"])
    (run,) = _index(store, "INC-PM2")
    assert run["status"] == "failed" and "Check the service" in run["failure"]


def test_a_parameter_the_runbook_does_not_declare_is_refused_before_a_kernel_starts(tmp_path):
    src = _notebook(tmp_path / "small.ipynb", ("code", "dry_run = True\n", ["parameters"]),
                    ("code", "open('ran', 'w').write('yes')\n", []))
    done = _papermill(src, tmp_path / "out.ipynb", "namespac=payments",
                      env={"RUNBOOK_STORE": str(tmp_path / "store")})
    assert done.returncode != 0 and "namespac" in done.stderr
    assert not (tmp_path / "ran").exists() and not (tmp_path / "store").exists()


def test_papermills_python_api_takes_the_incident_and_store_as_engine_keywords(tmp_path, monkeypatch):
    """What Airflow's PapermillOperator calls: papermill.execute_notebook(..., engine_name="runbook");
    keywords papermill does not know go to the engine."""
    import papermill

    monkeypatch.delenv("RUNBOOK_INCIDENT", raising=False)
    src = _notebook(tmp_path / "api.ipynb", ("code", "who = 'nobody'  # who ran\ndry_run = True\n",
                                             ["parameters"]), ("code", "print('ran by', who)\n", []))
    store = tmp_path / "records"
    nb = papermill.execute_notebook(src, str(tmp_path / "out.ipynb"), parameters={"who": "airflow"},
                                    engine_name="runbook", incident="INC-API", store=str(store),
                                    progress_bar=False)
    assert nb.metadata.runbook_kit.incident == "INC-API"
    assert nb.metadata.runbook_kit.parameters == {"who": "airflow"}
    (run,) = _index(store, "INC-API")
    assert run["status"] == "succeeded" and Path(run["notebook"]).parent == store / "INC-API"
    assert "ran by airflow" in (tmp_path / "out.ipynb").read_text()


def test_an_unwritable_store_keeps_the_record_in_the_fallback_and_says_so(tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the store should be")
    src = _notebook(tmp_path / "small.ipynb", ("code", "dry_run = True\n", ["parameters"]),
                    ("code", "print('checked')\n", []))
    done = _papermill(src, tmp_path / "out.ipynb", env={
        "RUNBOOK_STORE": str(blocked / "records"), "RUNBOOK_FALLBACK_STORE": str(tmp_path / "fallback"),
        "RUNBOOK_INCIDENT": "INC-FB"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "the record is in the fallback store" in done.stderr
    (run,) = _index(tmp_path / "fallback", "INC-FB")
    assert run["status"] == "succeeded" and run["primary_store"] == str(blocked / "records")


def test_a_notebook_from_stdin_is_run_from_papermills_copy_under_a_plain_name(tmp_path):
    src = _notebook(tmp_path / "piped.ipynb", ("code", "n = 1  # how many\ndry_run = True\n", ["parameters"]),
                    ("code", "print('n is', n)\n", []))
    done = subprocess.run([sys.executable, "-m", "papermill", "--engine", "runbook", "-", "out.ipynb",
                           "-p", "n", "3"], input=Path(src).read_text(), cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "RUNBOOK_STORE": str(tmp_path / "store"),
                                          "RUNBOOK_INCIDENT": "INC-IN"}, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    nb, cells = _cells(tmp_path / "out.ipynb")
    assert nb["metadata"]["runbook_kit"]["runbook"] == "notebook"
    assert "n is 3" in json.dumps(cells) and nb["metadata"]["papermill"]["input_path"] == "-"
    injected = [c for c in cells if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1  # papermill's own injected cell was dropped, the kit injected once
    (run,) = _index(tmp_path / "store", "INC-IN")
    assert run["status"] == "succeeded"
