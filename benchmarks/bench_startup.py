"""`import runbook_kit` cost, and `runbook run` vs the plain `papermill` CLI on the same small notebook.

    .venv/bin/python benchmarks/bench_startup.py [--runs 7]

Each figure is the median wall time of a fresh process, end to end (interpreter start, imports,
kernel start, execution, writing the output). `runbook run` also writes the HTML export, updates
incident.json and redacts; papermill writes only the .ipynb.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
NOTEBOOK = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "cells": [
        {"cell_type": "markdown", "id": "a", "metadata": {}, "source": "# Bench\nA tiny runbook."},
        {
            "cell_type": "code",
            "id": "b",
            "metadata": {"tags": ["parameters"]},
            "execution_count": None,
            "outputs": [],
            "source": "name = 'world'  # who\ndry_run = True\n",
        },
        {
            "cell_type": "code",
            "id": "c",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": "print('hello', name)",
        },
    ],
}


def timed(cmd: list[str], runs: int, env: dict[str, str]) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    work = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    try:
        nb = work / "bench.ipynb"
        nb.write_text(json.dumps(NOTEBOOK))
        env = {**os.environ}
        rows = {
            "python -c pass": timed([sys.executable, "-c", "pass"], runs, env),
            "import runbook_kit": timed([sys.executable, "-c", "import runbook_kit"], runs, env),
            "import papermill": timed([sys.executable, "-c", "import papermill"], runs, env),
            "runbook run": timed(
                [
                    str(BIN / "runbook"),
                    "run",
                    str(nb),
                    "-p",
                    "name",
                    "ops",
                    "--store",
                    str(work / "store"),
                    "--incident",
                    "bench",
                ],
                runs,
                env,
            ),
            "papermill": timed(
                [
                    str(BIN / "papermill"),
                    str(nb),
                    str(work / "out.ipynb"),
                    "-p",
                    "name",
                    "ops",
                    "--kernel",
                    "python3",
                ],
                runs,
                env,
            ),
            # the same papermill CLI with the kit's engine (runbook_kit.engine): the runner's record
            "papermill --engine runbook": timed(
                [str(BIN / "papermill"), "--engine", "runbook", str(nb), str(work / "out-rk.ipynb"),
                 "-p", "name", "ops"],
                runs,
                {**env, "RUNBOOK_STORE": str(work / "store"), "RUNBOOK_INCIDENT": "bench"},
            ),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"runs per row: {runs}\n")
    print(f"{'command':<28}{'median s':>10}{'min s':>9}{'max s':>9}")
    for name, values in rows.items():
        print(f"{name:<28}{med[name]:>10.3f}{min(values):>9.3f}{max(values):>9.3f}")
    net = med["import runbook_kit"] - med["python -c pass"]
    print(f"\nimport runbook_kit (net of interpreter start): {net:.3f} s")
    print(f"runbook run / papermill: {med['runbook run'] / med['papermill']:.2f}")
    engine = med["papermill --engine runbook"]
    print(f"papermill --engine runbook / papermill: {engine / med['papermill']:.2f}")


if __name__ == "__main__":
    main()
