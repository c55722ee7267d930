"""A cell printing 50 MB under `--timeout 60`: wall time and record sizes, capped vs uncapped output.

    .venv/bin/python benchmarks/bench_output_flood.py [--mb 50] [--runs 1]

"capped" is `runbook run` as shipped (1 MB per cell, 10 MB per record, head and tail kept);
"uncapped" is the same runner with the caps lifted (what the runner did before the caps), run in the
same process series on the same notebook. Each figure is a fresh `runbook run` process, end to end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

UNCAPPED = """
import sys
sys.modules.setdefault("rfc3987_syntax", None)
from runbook_kit.runner import run_notebook
r = run_notebook(sys.argv[1], store=sys.argv[2], incident="BENCH", timeout=600,
                 cell_output_cap=10**12, record_output_cap=10**12)
print(r.notebook_path)
"""


def notebook(mb: int) -> dict:
    lines = mb * 10_000  # 100-character lines
    code = f"import sys\nline = 'y' * 99 + '\\n'\nfor i in range({lines}):\n    sys.stdout.write(line)\n"
    return {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [
            {"cell_type": "code", "id": "p", "metadata": {"tags": ["parameters"]}, "execution_count": None,
             "outputs": [], "source": "dry_run = True\n"},
            {"cell_type": "markdown", "id": "m", "metadata": {}, "source": "## Flood"},
            {"cell_type": "code", "id": "c", "metadata": {}, "execution_count": None, "outputs": [],
             "source": code},
        ],
    }


def one(cmd: list[str]) -> tuple[float, int, int, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    wall = time.perf_counter() - start
    path = Path(done.stdout.strip().splitlines()[-1])
    html = path.with_suffix(".html")
    status = json.loads(path.read_text())["metadata"]["runbook_kit"]["status"]
    return wall, path.stat().st_size, html.stat().st_size if html.exists() else 0, status


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        nb = Path(tmp) / "flood.ipynb"
        nb.write_text(json.dumps(notebook(args.mb)))
        store = str(Path(tmp) / "store")
        env_cmd = [sys.executable, "-m", "runbook_kit.cli", "run", str(nb), "--store", store,
                   "--incident", "BENCH", "--timeout", "60"]
        rows = {}
        for name, cmd in (("capped (runbook run --timeout 60)", env_cmd),
                          ("uncapped (caps lifted)", [sys.executable, "-c", UNCAPPED, str(nb), store])):
            results = [one(cmd) for _ in range(args.runs)]
            rows[name] = results
            wall = statistics.median(r[0] for r in results)
            print(f"{name:<36} {wall:7.1f} s  ipynb {results[-1][1] / 1e6:6.1f} MB  "
                  f"html {results[-1][2] / 1e6:6.1f} MB  {results[-1][3]}", flush=True)
        walls = [statistics.median(r[0] for r in results) for results in rows.values()]
        print(f"capped / uncapped wall time = {walls[0] / walls[1]:.2f} ({args.mb} MB printed, "
              f"{args.runs} run(s) each, cpu count {os.cpu_count()})")


if __name__ == "__main__":
    main()
