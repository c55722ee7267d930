"""Run every benchmark in this folder, one after the other (they start what they need themselves).

    .venv/bin/python benchmarks/run.py            # all
    .venv/bin/python benchmarks/run.py startup    # those whose file name contains "startup"
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    scripts = sorted(p for p in HERE.glob("bench_*.py") if not argv or any(a in p.name for a in argv))
    worst = 0
    for script in scripts:
        print(f"\n=== {script.name}", flush=True)
        worst = max(worst, subprocess.run([sys.executable, str(script)]).returncode)
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
