"""kill -9 of the receiver during a run, then a restart: interrupted, nothing run twice, nothing lost."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from serve_harness import am_alert, am_payload, wait_for


def _probe(target: str, seconds: float):
    return am_alert({"alertname": "Probe", "target": target}, annotations={"seconds": str(seconds)})


def test_kill_9_during_a_run_then_restart(serve):
    server = serve(concurrency=1)
    assert server.post("alertmanager", am_payload(_probe("long", 60)))[0] == 202
    running = wait_for(
        lambda: [r for r in server.runs() if r["state"] == "running"], timeout=30, what="the run to start"
    )[0]
    folder = server.store / "INC-long"
    wait_for(lambda: list(folder.glob("*-probe.ipynb")), timeout=60, what="the run's first record")
    wait_for(
        lambda: (
            json.loads(next(folder.glob("*-probe.ipynb")).read_text())["metadata"]["runbook_kit"].get(
                "current_cell"
            )
            is not None
        ),
        timeout=60,
        what="the sleeping cell",
    )
    assert server.post("alertmanager", am_payload(_probe("waiting", 0)))[0] == 202  # queued behind it

    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait()
    server.start()

    runs = server.finished_runs(2, timeout=120)
    by_target = {json.loads(r["parameters"])["target"]: r for r in runs}
    assert len(server.runs()) == 2  # the interrupted run was not re-run
    interrupted = by_target["long"]
    assert interrupted["id"] == running["id"] and interrupted["state"] == "interrupted"
    assert by_target["waiting"]["state"] == "succeeded"  # the stored alert was not lost

    [record] = folder.glob("*-probe.ipynb")
    nb = json.loads(record.read_text())
    meta = nb["metadata"]["runbook_kit"]
    assert meta["status"] == "aborted"
    assert meta["interrupted"]["why"].startswith("interrupted: runbook serve stopped")
    assert "runbook-interrupted" in nb["cells"][0]["metadata"]["tags"]
    incident = json.loads((folder / "incident.json").read_text())
    [entry] = incident["runs"]
    assert entry["status"] == "aborted" and entry["interrupted"] is True
    assert [e["kind"] for e in server.events(incident="INC-long")] == ["firing", "run-interrupted"]
    pid = interrupted["pid"]
    try:  # the run's process is gone (or the PID now belongs to another process)
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        environ = b""
    assert b"RUNBOOK_SERVE_RUN_ID" not in environ


def test_sigterm_stops_gracefully_and_the_run_is_aborted_not_lost(serve):
    server = serve()
    assert server.post("alertmanager", am_payload(_probe("term", 60)))[0] == 202
    folder = server.store / "INC-term"
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
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    # uvicorn re-raises the signal after its graceful shutdown: the status says "ended by SIGTERM"
    assert server.proc.wait(timeout=60) in (0, -signal.SIGTERM)
    [run] = server.runs()
    assert run["state"] == "aborted" and run["exit_code"] == 143, run
    meta = json.loads(Path(run["record"]).read_text())["metadata"]["runbook_kit"]
    assert meta["status"] == "aborted" and "SIGTERM" in meta["failure"]


def test_one_run_at_a_time_per_target(serve):
    server = serve(concurrency=2)
    for extra in ("a", "b"):  # two alerts (two episodes) asking for the same runbook and parameters
        alert = am_alert(
            {"alertname": "Probe", "target": "same", "replica": extra}, annotations={"seconds": "2"}
        )
        assert server.post("alertmanager", am_payload(alert))[1]["queued"] == 1
    first, second = sorted(server.finished_runs(2), key=lambda r: r["started"])
    assert first["state"] == second["state"] == "succeeded"
    assert second["started"] >= first["finished"]
