"""After a crash or a kill: the runs that were in flight are marked interrupted in their records.

The queue says which runs were running (Queue.recover); each one's record is found in the store by the
runner's pid (`metadata.runbook_kit.runner_pid`) among the incident's records of that runbook. The
record keeps everything it had; it gains a banner at the top and `metadata.runbook_kit.interrupted`,
and a record the runner could not end (still `running`: the runner was killed too) becomes `aborted`
with the failure named; `incident.json` is updated to match. A child that somehow outlived the
receiver is sent SIGTERM first, so that nothing runs twice. Nothing is re-run.

Records in an S3 store are not rewritten here (the queue and the timeline still say interrupted).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

from runbook_kit.store import LocalStore, Store

__all__ = ["INTERRUPTED", "finalize"]

log = logging.getLogger("runbook.serve")
INTERRUPTED = (
    "interrupted: runbook serve stopped (crash, kill or restart) during this run; "
    "it is not re-run automatically"
)


def _stop_orphan(pid: int | None, run_id: int, owner: str | None = None) -> None:
    """SIGTERM a child of the dead receiver that still runs this run (checked by its environment: a
    cold child names its run, a warm standby the receiver that started it)."""
    if not pid:
        return
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return
    marks = {f"RUNBOOK_SERVE_RUN_ID={run_id}".encode()}
    if owner:
        marks.add(f"RUNBOOK_SERVE_STANDBY={owner}".encode())
    if not marks & set(environ):
        return  # the pid was reused by something else
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(100):  # the runner writes its final record on SIGTERM
        if not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.1)


def _find_record(store: LocalStore, row: dict[str, Any]) -> Path | None:
    folder = Path(store.location) / row["incident"]
    for path in sorted(folder.glob(f"*-{row['runbook']}.ipynb"), reverse=True):
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))["metadata"].get("runbook_kit", {})
        except (OSError, ValueError, KeyError):
            continue
        if meta.get("runner_pid") == row["pid"]:
            return path
    return None


def _mark(path: Path, store: LocalStore, incident: str) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    meta = nb["metadata"].setdefault("runbook_kit", {})
    if meta.get("interrupted"):
        return
    was = meta.get("status")
    if was == "running":
        meta["status"] = "aborted"
        meta["failure"] = INTERRUPTED + (
            f" (it was {meta['current_cell']!r})" if meta.get("current_cell") else ""
        )
    meta["interrupted"] = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "status_before": was,
        "why": INTERRUPTED,
    }
    banner = {
        "cell_type": "markdown",
        "id": "rk-interrupted",
        "metadata": {"tags": ["runbook-interrupted"]},
        "source": f'<span style="color:red; font-size:1.2em">**⛔ INTERRUPTED**: {INTERRUPTED}.</span>',
    }
    nb["cells"].insert(0, banner)
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")

    def change(data: dict[str, Any]) -> dict[str, Any]:
        for run in data.get("runs", []):
            if run.get("notebook") and Path(run["notebook"]).resolve() == path.resolve():
                run["status"] = meta["status"]
                run["failure"] = meta.get("failure") or INTERRUPTED
                run["interrupted"] = True
        return data

    store.update_json(f"{incident}/incident.json", change)


def finalize(rows: list[dict[str, Any]], store: Store) -> list[str]:
    """Mark the records of interrupted runs; returns the paths marked."""
    marked = []
    for row in rows:
        _stop_orphan(row.get("pid"), row["id"], row.get("owner"))
        if not isinstance(store, LocalStore):
            continue
        path = _find_record(store, row)
        if path is None:
            log.warning(
                "no record found for an interrupted run",
                extra={"fields": {"run": row["id"], "incident": row["incident"]}},
            )
            continue
        _mark(path, store, row["incident"])
        marked.append(str(path))
    return marked
