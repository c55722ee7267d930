"""Warm kernels (issue 12, item 5): each standby serves exactly one run, which is a `runbook run` in
all but its start; a standby that dies is replaced; a run whose standby is killed is marked as a cold
run's would be, and is not re-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from serve_harness import ROOT, Server, am_alert, am_payload, wait_for

from runbook_kit.runner import run_notebook
from runbook_kit.serve.config import ConfigError, load

# A runbook that says what its kernel knows: its process, its parent (the runner or the standby),
# how many runs this kernel has served, the RUNBOOK_* variables of its environment, and this run.
IDENT = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "cells": [
        {"cell_type": "markdown", "id": "m0", "metadata": {}, "source": "# Ident\n"},
        {
            "cell_type": "code",
            "id": "p0",
            "metadata": {"tags": ["parameters"]},
            "execution_count": None,
            "outputs": [],
            "source": 'target = ""  # what\ndry_run = True  # change nothing\n',
        },
        {
            "cell_type": "code",
            "id": "c0",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": (
                "import builtins, os\n"
                "import runbook_kit as rk\n"
                "builtins.rk_test_runs = getattr(builtins, 'rk_test_runs', 0) + 1\n"
                "rk.finding(f'ident {target}', runs_in_kernel=builtins.rk_test_runs, runner=os.getppid(),\n"
                "           env=sorted(k for k in os.environ if k.startswith('RUNBOOK_') and\n"
                "                      k not in ('RUNBOOK_PATH', 'RUNBOOK_ISOLATED_TMP')),\n"
                "           run=dict(rk.record.this_run()),\n"
                "           names=sorted(k for k in globals() if 'warm' in k.lower()))\n"
            ),
        },
    ],
}
ROUTE = {
    "name": "ident",
    "match": {"alertname": "Ident"},
    "runbook": "ident",
    "parameters": {"target": "{labels.target}"},
    "incident": "INC-{labels.target}",
}


def _server(serve: Any, **config: Any) -> Server:
    server = serve(routes=[ROUTE], start=False, **config)
    (server.dir / "runbooks" / "ident.ipynb").write_text(json.dumps(IDENT))
    return server.start()


def _ready(server: Server, n: int) -> list[dict[str, Any]]:
    return wait_for(
        lambda: (lines := server.log_lines("warm standby ready")) and len(lines) >= n and lines,
        timeout=120,
        what=f"{n} warm standby(s) ready",
    )


def _ident(server: Server, target: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Post an Ident alert; (its run row, the record, the finding's details)."""
    before = len(server.runs())
    assert (
        server.post("alertmanager", am_payload(am_alert({"alertname": "Ident", "target": target})))[0] == 202
    )
    run = server.finished_runs(before + 1)[-1]
    assert run["state"] == "succeeded", run
    nb = json.loads(Path(run["record"]).read_text())
    [finding] = [e for e in nb["metadata"]["runbook_kit"]["entries"] if e["kind"] == "finding"]
    return run, nb, finding["details"]


def _how(server: Server, run_id: int) -> str:
    [line] = [x for x in server.log_lines("run started") if x["run"] == run_id]
    return str(line["how"])


def _shape(nb: dict[str, Any]) -> list[Any]:
    """A record's structure: each cell's type, tags, source, output types and run status."""
    return [
        (
            c["cell_type"],
            c["metadata"].get("tags"),
            c["source"] if c["cell_type"] == "code" else c["source"][:20],
            [o["output_type"] for o in c.get("outputs", [])],
            c["metadata"].get("papermill", {}).get("status"),
        )
        for c in nb["cells"][1:]  # the summary names its start time
    ]


def _own(names: list[str]) -> list[str]:
    """The RUNBOOK_* variables a kernel got beyond those of the test's own environment (CI sets
    RUNBOOK_SANDBOX_DIR, say), which every process inherits; a run's identity is never among those."""
    ambient = {k for k in os.environ if k.startswith("RUNBOOK_")} - {"RUNBOOK_INCIDENT", "RUNBOOK_NAME"}
    return [n for n in names if n not in ambient]


def test_warm_runs_are_runbook_runs_one_kernel_each_and_equal_cold_ones(serve):
    warm = _server(serve, warm_kernels=1, env={"RUNBOOK_INCIDENT": "stale", "RUNBOOK_NAME": "stale"})
    records, runners = [], set()
    for i, target in enumerate(("a", "b", "c")):
        _ready(warm, i + 1)  # the pool is refilled after each run
        run, nb, details = _ident(warm, target)
        assert _how(warm, run["id"]) == "warm"
        # one run per kernel and per standby: a fresh standby (the kernel's parent) every time
        assert details["runs_in_kernel"] == 1
        assert details["runner"] == run["pid"] and run["pid"] not in runners
        runners.add(run["pid"])
        # the run's identity came through the parameters cell; nothing of it (or stale) in the env
        assert details["run"] == {"runbook": "ident", "incident": f"INC-{target}"}
        assert _own(details["env"]) == ["RUNBOOK_HEADLESS", "RUNBOOK_SERVE_STANDBY"]
        assert details["names"] == []  # the warm-up left nothing in the kernel's namespace
        records.append(nb)
    warm.stop()

    cold = _server(serve, warm_kernels=0)
    run, cold_nb, details = _ident(cold, "c")
    assert _how(cold, run["id"]) == "cold" and not cold.log_lines("warm standby ready")
    assert details["runs_in_kernel"] == 1 and details["run"] == {"runbook": "ident", "incident": "INC-c"}
    assert _own(details["env"]) == ["RUNBOOK_HEADLESS", "RUNBOOK_SERVE_RUN_ID"]
    # the same record: cells, tags, sources (the injected parameters cell included), statuses, entries
    warm_nb = records[-1]
    assert _shape(warm_nb) == _shape(cold_nb)
    assert set(warm_nb["metadata"]["runbook_kit"]) == set(cold_nb["metadata"]["runbook_kit"])
    for key in ("status", "parameters", "runbook", "incident", "failure"):
        assert warm_nb["metadata"]["runbook_kit"][key] == cold_nb["metadata"]["runbook_kit"][key]
    strip = ("runner", "runs_in_kernel", "env")
    assert [
        {**e, "details": {k: v for k, v in e["details"].items() if k not in strip}, "ts": None}
        for e in warm_nb["metadata"]["runbook_kit"]["entries"]
    ] == [
        {**e, "details": {k: v for k, v in e["details"].items() if k not in strip}, "ts": None}
        for e in cold_nb["metadata"]["runbook_kit"]["entries"]
    ]
    # both exported to HTML, and listed in their incident
    for server in (warm, cold):
        for run in server.runs():
            assert Path(run["record"]).with_suffix(".html").exists()
            incident = json.loads((Path(run["record"]).parent / "incident.json").read_text())
            assert [r["status"] for r in incident["runs"]] == ["succeeded"]


def test_a_standby_killed_while_it_waits_is_replaced_and_the_next_run_is_warm(serve):
    server = _server(serve, warm_kernels=1)
    [first] = _ready(server, 1)
    os.kill(first["pid"], signal.SIGKILL)
    died = wait_for(
        lambda: server.log_lines("warm standby died; starting another"),
        timeout=30,
        what="the death to be logged",
    )
    assert died[0]["pid"] == first["pid"] and "died while it waited" in died[0]["why"]
    second = _ready(server, 2)[-1]
    assert second["pid"] != first["pid"]
    run, _, details = _ident(server, "after")
    assert _how(server, run["id"]) == "warm" and details["runner"] == second["pid"]
    assert server.proc is not None and server.proc.poll() is None  # the receiver lives on


@pytest.mark.parametrize("warm", [1, 0], ids=["warm", "cold"])
def test_a_run_whose_process_is_killed_is_aborted_as_a_cold_one_and_not_re_run(serve, warm):
    server = serve(concurrency=1, warm_kernels=warm)
    if warm:
        _ready(server, 1)
    alert = am_alert({"alertname": "Probe", "target": "kill"}, annotations={"seconds": "60"})
    assert server.post("alertmanager", am_payload(alert))[0] == 202
    folder = server.store / "INC-kill"
    wait_for(
        lambda: (
            list(folder.glob("*-probe.ipynb"))
            and json.loads(next(folder.glob("*-probe.ipynb")).read_text())["metadata"]["runbook_kit"].get(
                "current_cell"
            )
        ),
        timeout=60,
        what="the sleeping cell",
    )
    [running] = server.runs()
    assert _how(server, running["id"]) == ("warm" if warm else "cold")
    os.kill(running["pid"], signal.SIGKILL)
    [run] = server.finished_runs(1)
    assert run["state"] == "aborted" and run["exit_code"] == -signal.SIGKILL, run
    assert "exit code -9" in run["reason"]
    meta = json.loads(next(folder.glob("*-probe.ipynb")).read_text())["metadata"]["runbook_kit"]
    assert meta["status"] == "running" and meta["runner_pid"] == running["pid"]  # finalized when next read
    if warm:
        _ready(server, 2)  # replaced after the run
    assert len(server.runs()) == 1  # never re-run


def test_warm_kernels_is_checked_at_load(tmp_path):
    (tmp_path / "token").write_text("t")
    for value, ok in ((0, True), (3, True), (-1, False), (99, False), ("two", False)):
        (tmp_path / "serve.yaml").write_text(
            json.dumps(
                {
                    "queue": str(tmp_path / "q.db"),
                    "warm_kernels": value,
                    "routes": [],
                    "sources": {"alertmanager": {"bearer_token": {"file": str(tmp_path / "token")}}},
                }
            )
        )
        if ok:
            assert load(tmp_path / "serve.yaml").warm_kernels == value
        else:
            with pytest.raises(ConfigError, match=r"warm_kernels|a number is wrong"):
                load(tmp_path / "serve.yaml")


def test_a_stale_run_identity_in_the_runners_environment_never_reaches_the_kernel(tmp_path):
    book = tmp_path / "ident.ipynb"
    book.write_text(json.dumps(IDENT))
    result = run_notebook(
        str(book),
        parameters={"target": "x"},
        incident="INC-9",
        store=str(tmp_path / "s"),
        env={"RUNBOOK_INCIDENT": "INC-old", "RUNBOOK_NAME": "other"},
    )
    [finding] = result.findings
    assert finding.details["run"] == {"runbook": "ident", "incident": "INC-9"}
    assert _own(finding.details["env"]) == ["RUNBOOK_HEADLESS"]


def _standby(tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "runbook_kit.standby"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    assert proc.stdout is not None and proc.stdout.readline().startswith(b"ready")
    return proc


def test_a_standby_refuses_a_job_it_cannot_read_and_leaves_quietly_when_its_input_ends(tmp_path):
    bad, idle = _standby(tmp_path), _standby(tmp_path)
    out, err = bad.communicate(b"not json\n", timeout=60)
    assert bad.returncode == 2 and out == b""
    assert err.decode().strip().startswith("runbook: the standby could not read its job")
    assert not (tmp_path / "incidents").exists()  # nothing ran
    out, err = idle.communicate(b"", timeout=60)  # the pool closed its input: it stops, kernel too
    assert idle.returncode == 0 and out == b"" and err == b""
