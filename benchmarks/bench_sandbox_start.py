"""Benchmark: sandbox start-to-ready, whole and per part, against starting the parts one by one.

Claim under test (issue 3): the sandbox is ready ≤ 10 s after `runbook sandbox up`. "Ready" means
`manager.up` returned: every server answers, every scenario is seeded and the PostgreSQL sessions
are confirmed in place on the server. The alternative is the obvious sequential start: each part on
its own, one after the other (the sum of the per-part medians); the ratio shows what starting the
parts in parallel buys on this machine.

Each run uses a fresh state directory and ends with `manager.down`, so nothing is left running.

    .venv/bin/python benchmarks/bench_sandbox_start.py [--runs 5] [--scenario all]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from runbook_sandbox import manager


def measure(scenario: str, parts: tuple[str, ...], runs: int, root: Path) -> list[float]:
    times = []
    for i in range(runs):
        state_dir = root / f"{'-'.join(parts)}-{i}"
        start = time.perf_counter()
        try:
            manager.up(scenario, state_dir=state_dir, parts=parts, timeout=60)
            times.append(time.perf_counter() - start)
        finally:
            manager.down(state_dir=state_dir)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scenario", default="all")
    args = parser.parse_args()
    parts = manager.available_parts()
    if "k8s" not in parts:
        print("note: the Kubernetes part is not installed; measuring AWS and PostgreSQL only")
    rows: list[tuple[str, list[float]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as tmp:
        root = Path(tmp)
        for part in parts:
            rows.append((part, measure(args.scenario, (part,), args.runs, root)))
        rows.append(("whole (parallel)", measure(args.scenario, parts, args.runs, root)))
    print(f"\nsandbox start-to-ready, scenario {args.scenario!r}, {args.runs} runs (seconds)\n")
    print(f"{'part':<20}{'median':>8}{'min':>8}{'max':>8}")
    for name, times in rows:
        print(f"{name:<20}{statistics.median(times):>8.2f}{min(times):>8.2f}{max(times):>8.2f}")
    sequential = sum(statistics.median(t) for _, t in rows[:-1])
    whole = statistics.median(rows[-1][1])
    print(f"{'sequential (sum)':<20}{sequential:>8.2f}")
    print(f"\nparallel vs sequential: {sequential / whole:.2f}x faster; budget 10 s: "
          f"{'met' if whole <= 10 else 'NOT met'} ({whole:.2f} s)")


if __name__ == "__main__":
    main()
