"""Benchmark: the postmortem of an incident with 200 runs (issue 11: under 1 s).

Builds, in a temporary store, an incident with 200 executed records (a small .ipynb each, holding its
findings and an action as the runner writes them, every run with its own distinct high finding so the
root-cause linker opens every record — the worst case) and incident.json as the runner leaves it.
Measures `write_postmortem` (timeline merge, root cause with cell links, markdown, HTML, both writes)
against the naive alternative measured in the same run: reading every record notebook back with
`record.read_entries` to gather findings and actions, which is what drafting from the notebooks
instead of incident.json would cost before any text is written.

    .venv/bin/python benchmarks/bench_postmortem.py [--runs 7] [--records 200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import tempfile
import time
from pathlib import Path

from runbook_kit import incident as inc
from runbook_kit.postmortem import write_postmortem
from runbook_kit.record import MIME, read_entries
from runbook_kit.store import open_store

T0 = dt.datetime(2026, 11, 29, 22, 0, tzinfo=dt.UTC)


def build(root: Path, records: int) -> str:
    store = open_store(str(root))
    inc.open_incident(title="payments/api crashlooping", severity="P1", incident_id="INC-B",
                      services=["payments/api"], store=store, now=T0)
    runs = []
    for i in range(records):
        started = T0 + dt.timedelta(minutes=5 * i)  # spans most of a day: dates in the timeline
        finding = {"kind": "finding", "title": f"pod api-{i:03d} OOMKilled under 256Mi", "severity": "high",
                   "details": {"restarts": i}, "ts": inc.utc(started + dt.timedelta(seconds=20))}
        low = {"kind": "finding", "title": "events listed", "severity": "info", "details": {},
               "ts": inc.utc(started + dt.timedelta(seconds=10))}
        action = {"kind": "action", "title": "rollout undo: deployment/api", "severity": "info",
                  "outcome": "applied" if i % 50 == 0 else "dry-run",
                  "command": "kubectl rollout undo deployment/api -n payments", "details": {},
                  "ts": inc.utc(started + dt.timedelta(seconds=30))}
        base = f"INC-B/{started:%Y%m%dT%H%M%S.%fZ}-pod_crashloop"
        cells = [{"cell_type": "code", "id": f"c{n}", "metadata": {}, "source": "rk.step()",
                  "execution_count": n, "outputs": [{"output_type": "display_data", "metadata": {},
                                                     "data": {MIME: e, "text/plain": e["title"]}}]}
                 for n, e in enumerate((low, finding, action))]
        nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}
        path = store.write(f"{base}.ipynb", json.dumps(nb).encode())
        runs.append({"runbook": "pod_crashloop", "started": inc.utc(started),
                     "updated": inc.utc(started + dt.timedelta(seconds=40)), "status": "succeeded",
                     "notebook": path, "html": path.replace(".ipynb", ".html"), "parameters": {},
                     "findings": [low, finding], "actions": [action]})
    store.update_json("INC-B/incident.json", lambda d: {**d, "runs": runs})
    inc.resolve("INC-B", summary="rolled back", store=store, now=T0 + dt.timedelta(hours=17))
    return str(root)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--records", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = build(Path(tmp), args.records)
        ours, naive = [], []
        for _ in range(args.runs):
            t = time.perf_counter()
            write_postmortem("INC-B", store=store)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            entries = [read_entries(json.loads(p.read_text())) for p in Path(tmp, "INC-B").glob("*.ipynb")]
            naive.append(time.perf_counter() - t)
        assert sum(len(e) for e in entries) == 3 * args.records
        size = len(Path(tmp, "INC-B", "postmortem.md").read_text().splitlines())
    a, b = statistics.median(ours), statistics.median(naive)
    print(f"records: {args.records}, runs: {args.runs}, postmortem.md lines: {size}")
    print("| step | median s |\n|---|---|")
    print(f"| `write_postmortem` (md + html, cell links) | **{a:.3f}** |")
    print(f"| reading every record back (`read_entries` × {args.records}), no text written | {b:.3f} |")
    print(f"ratio write_postmortem / read-back: {a / b:.2f}; goal < 1 s: {'met' if a < 1 else 'NOT met'}")


if __name__ == "__main__":
    main()
