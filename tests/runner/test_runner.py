"""The runner leaves a trustworthy record whatever happens to the run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runbook_kit import ParameterError
from runbook_kit.runner import run_notebook

PARAMS = (
    "code",
    "name = 'world'  # who to greet\ncount = 1  # how many\ndry_run = True  # no writes\n",
    ["parameters"],
)


def cells_of(path: str) -> list[dict]:
    return json.loads(Path(path).read_text())["cells"]


def meta_of(path: str) -> dict:
    return json.loads(Path(path).read_text())["metadata"]["runbook_kit"]


def test_success_writes_notebook_html_and_incident(write_notebook, store):
    nb = write_notebook(
        "hello",
        ("markdown", "# Hello\nSays hello."),
        PARAMS,
        ("markdown", "## Greet"),
        ("code", "import runbook_kit as rk\nrk.finding('greeted ' + name, severity='low')"),
    )
    result = run_notebook(nb, parameters={"name": "ops"}, incident="INC-1", store=str(store))
    assert result.status == "succeeded" and result.exit_code == 0
    assert [e.title for e in result.findings] == ["greeted ops"]
    path = Path(result.notebook_path)
    assert path.parent == store / "INC-1" and path.name.endswith("-hello.ipynb")
    html = Path(result.html_path).read_text()
    assert "greeted ops" in html and 'src="http' not in html  # self-contained: no CDN scripts
    cells = cells_of(result.notebook_path)
    assert "runbook-summary" in cells[0]["metadata"]["tags"]
    assert "succeeded" in cells[0]["source"] and "greeted ops" in cells[0]["source"]
    injected = [c for c in cells if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "name = 'ops'" in injected[0]["source"]
    assert all(c["metadata"]["papermill"]["status"] == "completed" for c in cells if c["cell_type"] == "code")
    incident = json.loads((store / "INC-1" / "incident.json").read_text())
    assert incident["runs"][0]["status"] == "succeeded"
    assert incident["runs"][0]["findings"][0]["title"] == "greeted ops"


def test_string_values_round_trip_exactly(write_notebook, store):
    nasty = 'it\'s "quoted" \\ back\\slash\nnew line \t tab \u00e9 \'\'\' """'
    nb = write_notebook("echo", PARAMS, ("code", "import runbook_kit as rk\nrk.event('echo', value=name)"))
    result = run_notebook(nb, parameters={"name": nasty}, incident="INC-2", store=str(store))
    assert result.status == "succeeded"
    assert result.entries[0].details["value"] == nasty


def test_undeclared_name_is_refused_before_anything_runs(write_notebook, store):
    nb = write_notebook("p", PARAMS, ("code", "print('ran')"))
    with pytest.raises(ParameterError, match="unknown parameter"):
        run_notebook(nb, parameters={"x = 1\nimport os": "1"}, incident="INC-3", store=str(store))
    assert not store.exists()


@pytest.mark.parametrize("incident", ["../etc", "a/b", "..", "x\ny", "abc\n", "", "a" * 200, "\x00"])
def test_traversal_and_odd_incident_ids_are_refused(write_notebook, store, incident):
    nb = write_notebook("p", PARAMS)
    with pytest.raises(ParameterError, match="incident id"):
        run_notebook(nb, incident=incident, store=str(store))


def test_cell_error_marks_failed_and_names_the_cell(write_notebook, store):
    nb = write_notebook(
        "boom",
        PARAMS,
        ("markdown", "## 1. Read the deployment"),
        ("code", "import runbook_kit as rk\nraise rk.NotFound('k8s', 'read deployment', 'no api')"),
        ("code", "print('never runs')"),
    )
    result = run_notebook(nb, incident="INC-4", store=str(store))
    assert result.status == "failed" and result.exit_code == 1
    assert "Read the deployment" in result.failure and "NotFound" in result.failure
    cells = cells_of(result.notebook_path)
    assert "FAILED" in cells[0]["source"] and "Read the deployment" in cells[0]["source"]
    banner = [i for i, c in enumerate(cells) if "runbook-error" in c["metadata"].get("tags", [])]
    assert banner and cells[banner[0] + 1]["metadata"]["papermill"]["status"] == "failed"
    assert cells[-1]["metadata"]["papermill"]["status"] == "pending"
    # a RunbookError shows as one line, not a traceback wall
    error = next(o for o in cells[banner[0] + 1]["outputs"] if o["output_type"] == "error")
    assert len(error["traceback"]) == 1


def test_dead_kernel_marks_failed(write_notebook, store):
    nb = write_notebook(
        "die",
        PARAMS,
        ("markdown", "## Crash"),
        ("code", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"),
        ("code", "print('never')"),
    )
    result = run_notebook(nb, incident="INC-5", store=str(store))
    assert result.status == "failed" and "kernel died" in result.failure and "Crash" in result.failure
    assert meta_of(result.notebook_path)["status"] == "failed"
    statuses = [
        c["metadata"]["papermill"]["status"]
        for c in cells_of(result.notebook_path)
        if c["cell_type"] == "code"
    ]
    # parameters, injected parameters (the run's identity), the crash, the cell never reached
    assert statuses == ["completed", "completed", "failed", "pending"]


def test_cell_timeout_and_run_timeout_mark_failed(write_notebook, store):
    nb = write_notebook("slow", PARAMS, ("code", "import time\ntime.sleep(30)"))
    cell = run_notebook(nb, incident="INC-6", store=str(store), cell_timeout=2)
    assert cell.status == "failed" and "cell exceeded its 2 s timeout" in cell.failure
    whole = run_notebook(nb, incident="INC-6", store=str(store), timeout=3, cell_timeout=None)
    assert whole.status == "failed" and "run exceeded its 3 s timeout" in whole.failure
    runs = json.loads((store / "INC-6" / "incident.json").read_text())["runs"]
    assert [r["status"] for r in runs] == ["failed", "failed"]


def test_sigterm_to_the_runner_leaves_an_aborted_record(write_notebook, store, tmp_path):
    nb = write_notebook("slow", PARAMS, ("markdown", "## Wait"), ("code", "import time\ntime.sleep(60)"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "runbook_kit.cli", "run", nb, "--incident", "INC-7", "--store", str(store)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        record = None
        while time.monotonic() < deadline:  # wait until the slow cell is running
            found = list((store / "INC-7").glob("*.ipynb")) if (store / "INC-7").exists() else []
            if (
                found
                and meta_of(str(found[0])).get("current_cell") is not None
                and "sleep" in cells_of(str(found[0]))[meta_of(str(found[0]))["current_cell"] + 1]["source"]
            ):
                record = found[0]
                break
            time.sleep(0.2)
        assert record is not None, "the run never reached the slow cell"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    assert out.strip() == str(record)
    meta = meta_of(str(record))
    assert meta["status"] == "aborted" and "SIGTERM" in meta["failure"] and "Wait" in meta["failure"]
    assert "ABORTED" in cells_of(str(record))[0]["source"]


def test_kernel_is_gone_after_each_run(write_notebook, store):
    psutil = pytest.importorskip("psutil")
    nb = write_notebook("pid", PARAMS, ("code", "import os\nprint(os.getpid())"))
    result = run_notebook(nb, incident="INC-8", store=str(store))
    pid = int(cells_of(result.notebook_path)[-1]["outputs"][0]["text"].strip())
    assert pid != os.getpid()
    gone = not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert gone


def test_unwritable_store_falls_back_to_a_local_record(write_notebook, tmp_path):
    fallback = tmp_path / "unsent"
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store folder should be")
    nb = write_notebook("p", PARAMS, ("code", "import runbook_kit as rk\nrk.finding('kept')"))
    result = run_notebook(nb, incident="INC-F", store=str(blocker / "store"), fallback_store=str(fallback))
    assert result.status == "succeeded" and result.exit_code == 4 and result.recorded_elsewhere
    assert Path(result.notebook_path).parent == fallback / "INC-F"
    assert (
        json.loads((fallback / "INC-F" / "incident.json").read_text())["runs"][0]["findings"][0]["title"]
        == "kept"
    )


def test_concurrent_runs_each_get_their_own_kernel_and_record(write_notebook, store):
    from concurrent.futures import ThreadPoolExecutor

    nb = write_notebook(
        "conc", PARAMS, ("code", "import os, runbook_kit as rk\nrk.finding(f'{name} {os.getpid()}')")
    )
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(
            pool.map(
                lambda i: run_notebook(
                    nb, parameters={"name": f"run{i}"}, incident="INC-C", store=str(store)
                ),
                range(12),
            )
        )
    assert [r.status for r in results] == ["succeeded"] * 12
    titles = [r.findings[0].title for r in results]
    assert [t.split()[0] for t in titles] == [f"run{i}" for i in range(12)]
    assert len({t.split()[1] for t in titles}) == 12  # twelve kernels
    assert len({r.notebook_path for r in results}) == 12
    runs = json.loads((store / "INC-C" / "incident.json").read_text())["runs"]
    assert len(runs) == 12  # concurrent updates of incident.json lost nothing
