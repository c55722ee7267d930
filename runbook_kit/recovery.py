"""The reader's half of crash safety: records left behind by runners that are gone, or in the fallback.

A runner writes its record as it goes (runbook_kit.recorder), but a runner killed with SIGKILL, or a
machine that lost power, cannot write "aborted". So every `runbook` command that reads an incident
(`runbook run --incident`, `runbook status`, and any reader of incident.json: call `read_incident`)
first finalizes each run still "running" whose runner process is gone: its notebook gets status
aborted, a banner before the cell that was running, the summary rebuilt from the entries it holds
(actions applied before the kill included), its HTML export, and incident.json the same status.
A runner is "gone" when, on the same host, its PID does not exist or belongs to a process started at
another time (PID reuse); a run from another host is left as it is (nothing here can tell).

`reconcile_fallback` copies into the store the records a run had to leave in the fallback store while
the store could not be written.

`reconcile_index` adds to incident.json the runs whose record is in the store but whose entry is
missing or still "running" while the record has finished: a run whose index updates all lost the
compare-and-swap (many Jobs of one incident writing at once, store.S3Store) wrote its record anyway.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import socket
import sys
from collections.abc import Mapping
from typing import Any

from runbook_kit import record
from runbook_kit.recorder import (
    banner_cell,
    make_exporter,
    md_escape,
    run_entry,
    start_ticks,
    summary_cell,
    with_run,
)
from runbook_kit.store import Store

__all__ = ["finalize_stale_runs", "finalized", "read_incident", "reconcile_fallback", "reconcile_index"]


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _source(cell: Mapping[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _runner_gone(runner: Mapping[str, Any] | None) -> bool | None:
    """True when that runner process no longer exists, None when it cannot be told from here."""
    if not runner or runner.get("host") != socket.gethostname() or not isinstance(runner.get("pid"), int):
        return None
    pid = runner["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    start = start_ticks(pid)
    return runner.get("start") is not None and start is not None and start != runner["start"]


def finalize_stale_runs(store: Store, incident: str, *, html: bool = True) -> list[dict[str, Any]]:
    """Mark as aborted every run of `incident` still "running" whose runner is gone; returns those runs.

    The notebook gets status aborted, its running cell marked failed with a banner, the summary
    rebuilt from the entries it holds (actions applied before the kill included), and incident.json
    the same status. Runs on another host, or whose runner is alive, are left as they are.
    """
    raw = store.read(f"{incident}/incident.json")
    if not raw:
        return []
    stale = [r for r in json.loads(raw).get("runs", [])
             if r.get("status") == "running" and r.get("record_id") and _runner_gone(r.get("runner"))]
    done = []
    for run in stale:
        runner = run.get("runner") or {}
        why = f"aborted: the runner is gone (pid {runner.get('pid')} on {runner.get('host')})"
        body = store.read(f"{run['record_id']}.ipynb")
        nb = json.loads(body) if body else None
        if nb is not None:
            meta = nb["metadata"]["runbook_kit"]
            if meta.get("status") == "running":
                nb = _finalized(nb, why)
                store.write(f"{run['record_id']}.ipynb", json.dumps(nb, indent=1).encode())
                if html:
                    try:
                        import nbformat

                        body_html = make_exporter().from_notebook_node(nbformat.from_dict(nb))[0]
                        run["html"] = store.write(f"{run['record_id']}.html", body_html.encode())
                    except Exception as exc:  # the .ipynb is the record
                        print(f"runbook: HTML export of {run['record_id']} failed ({type(exc).__name__})",
                              file=sys.stderr)
            new = {**run, **run_entry(nb["metadata"]["runbook_kit"], notebook=run.get("notebook", ""),
                                      html=run.get("html"))}
        else:
            new = {**run, "status": "aborted", "failure": why}
        store.update_json(f"{incident}/incident.json",
                          functools.partial(with_run, incident=incident, run=new))
        done.append(new)
    return done


def _finalized(nb: dict[str, Any], why: str, *, status: str = "aborted",
               ename: str = "RunAborted") -> dict[str, Any]:
    """A stored "running" record, finalized as aborted (it is already redacted). runbook_kit.jobs also
    finalizes an "aborted" one as failed with the Job's cause: the cell named is the one that was
    running, or else the one the runner marked."""
    meta = nb["metadata"]["runbook_kit"]
    cells = [c for c in nb["cells"] if not {"runbook-summary", "runbook-error"} & set(
        c.get("metadata", {}).get("tags") or [])]
    current = meta.get("current_cell")
    current = meta.get("failed_cell") if current is None else current
    entries = record.read_entries({"cells": cells})
    failure_md = md_escape(why)
    if isinstance(current, int) and 0 <= current < len(cells):
        cell = cells[current]
        cell.setdefault("metadata", {}).setdefault("papermill", {}).update(status="failed", exception=True)
        cell.setdefault("outputs", []).append(
            {"output_type": "error", "ename": ename, "evalue": why, "traceback": [f"{ename}: {why}"]})
        first = next((ln for ln in _source(cell).splitlines() if ln.strip()), "").strip()[:80]
        meta["failure"] = f"cell {current}: `{first}` — {why}"
        failure_md = f"cell {current}: <code>{md_escape(first)}</code> — {md_escape(why)}"
        meta["failed_cell"] = current
        cells.insert(current, banner_cell(status, failure_md))
        entries = record.read_entries({"cells": cells})
    else:
        meta["failure"] = why
    meta.update(status=status, current_cell=None, updated=_utc_now(),
                entries=[e.to_json() for e in entries])
    nb.setdefault("metadata", {}).setdefault("papermill", {})["exception"] = True
    nb["cells"] = [summary_cell(entries, status=status, runbook=str(meta.get("runbook")),
                                 incident=str(meta.get("incident")), failure=failure_md,
                                 started=str(meta.get("started")), values=meta.get("parameters") or {}),
                   *cells]
    for i, cell in enumerate(nb["cells"]):
        cell.setdefault("id", f"rk-{i:04d}-{cell['cell_type'][:4]}")
    return nb


finalized = _finalized  # runbook_kit.jobs: a Job's record finalized from the Job's status


def reconcile_fallback(primary: Store, fallback: Store, incident: str) -> list[dict[str, Any]]:
    """Copy into `primary` the finished records of `incident` that had to go to `fallback`; returns them.

    A run whose store could not be written left its record in the fallback, and the primary's copy
    (if any) "running". Once the primary can be written again, the record is copied there and its
    incident.json run entry replaced, with `recovered_from` naming the fallback copy.
    """
    if primary.location == fallback.location:
        return []
    raw = fallback.read(f"{incident}/incident.json")
    if not raw:
        return []
    pending = [r for r in json.loads(raw).get("runs", [])
               if r.get("primary_store") == primary.location and r.get("record_id")
               and not r.get("copied_to_primary") and r.get("status") != "running"]
    done = []
    for run in pending:
        moved = {k: v for k, v in run.items() if k not in ("primary_store", "primary_error")}
        moved["recovered_from"] = fallback.url(f"{run['record_id']}.ipynb")
        moved["recovered_because"] = run.get("primary_error")
        for ext, field in ((".ipynb", "notebook"), (".html", "html")):
            body = fallback.read(f"{run['record_id']}{ext}")
            moved[field] = primary.write(f"{run['record_id']}{ext}", body) if body else None
        primary.update_json(f"{incident}/incident.json",
                            functools.partial(with_run, incident=incident, run=moved))
        marked = {**run, "copied_to_primary": moved["notebook"]}
        fallback.update_json(f"{incident}/incident.json",
                             functools.partial(with_run, incident=incident, run=marked))
        done.append(moved)
    return done


def reconcile_index(store: Store, incident: str) -> list[dict[str, Any]]:
    """Add to incident.json each run whose record is in the store and whose entry is missing, or says
    "running" while the record has ended; returns the entries added or replaced.

    One listing of the incident's records; only those records are read."""
    raw = store.read(f"{incident}/incident.json")
    known = {r.get("record_id"): r for r in (json.loads(raw).get("runs", []) if raw else [])}
    done = []
    for record_id in store.records(incident):
        entry = known.get(record_id)
        if entry is not None and entry.get("status") != "running":
            continue
        body = store.read(f"{record_id}.ipynb")
        meta = (json.loads(body).get("metadata") or {}).get("runbook_kit") if body else None
        if not meta or meta.get("record_id") != record_id or meta.get("status") == "running":
            continue  # not a record of this kit, or a run still going: its own updates index it
        html = store.url(f"{record_id}.html") if store.read(f"{record_id}.html") is not None else None
        new = {**(entry or {}), **run_entry(meta, notebook=store.url(f"{record_id}.ipynb"), html=html),
               "indexed_by_reader": _utc_now()}

        def add(data: dict[str, Any], new: dict[str, Any] = new) -> dict[str, Any]:
            current = next((r for r in data.get("runs", []) if r.get("record_id") == new["record_id"]), None)
            if current is not None and current.get("status") != "running":
                return data  # the run's own final update landed meanwhile
            return with_run(data, incident, new)

        store.update_json(f"{incident}/incident.json", add)
        done.append(new)
    return done


def read_incident(store: Store, incident: str) -> dict[str, Any] | None:
    """incident.json of `incident` after adding the runs its index missed and finalizing its stale
    runs (None when there is no such incident)."""
    reconcile_index(store, incident)
    finalize_stale_runs(store, incident)
    raw = store.read(f"{incident}/incident.json")
    return json.loads(raw) if raw else None
