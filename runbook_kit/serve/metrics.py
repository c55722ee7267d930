"""`/metrics` in the Prometheus text format (0.0.4), without a client library.

Counters live in the process (received, rejected by reason, deduplicated, store failures, run
durations); runs by state and the queue depth are read from the queue at scrape time, so they survive
a restart.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

__all__ = ["BUCKETS", "Metrics"]

BUCKETS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


def _labels(**labels: Any) -> str:
    if not labels:
        return ""
    body = ",".join(
        f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in sorted(labels.items())
    )
    return "{" + body + "}"


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.received: Counter[str] = Counter()  # by source: alerts stored
        self.rejected: Counter[tuple[str, int]] = Counter()  # by (source, status)
        self.deduplicated: Counter[str] = Counter()
        self.store_failures = 0
        self.duration_buckets: Counter[tuple[str, float]] = Counter()
        self.duration_sum: dict[str, float] = {}
        self.duration_count: Counter[str] = Counter()

    def stored(self, source: str, *, stored: int, duplicates: int) -> None:
        with self._lock:
            self.received[source] += stored
            self.deduplicated[source] += duplicates

    def reject(self, source: str, status: int) -> None:
        with self._lock:
            self.rejected[(source, status)] += 1

    def store_failed(self) -> None:
        with self._lock:
            self.store_failures += 1

    def run_finished(self, runbook: str, seconds: float) -> None:
        with self._lock:
            for bound in BUCKETS:
                if seconds <= bound:
                    self.duration_buckets[(runbook, bound)] += 1
            self.duration_sum[runbook] = self.duration_sum.get(runbook, 0.0) + seconds
            self.duration_count[runbook] += 1

    def render(self, *, runs_by_state: dict[str, int], queue_depth: int) -> str:
        out: list[str] = []

        def family(name: str, kind: str, help_: str) -> None:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")

        with self._lock:
            family("runbook_serve_alerts_received_total", "counter", "Alerts stored, by source.")
            for source, n in sorted(self.received.items()):
                out.append(f"runbook_serve_alerts_received_total{_labels(source=source)} {n}")
            family("runbook_serve_requests_rejected_total", "counter", "Requests refused with a 4xx.")
            for (source, status), n in sorted(self.rejected.items()):
                out.append(f"runbook_serve_requests_rejected_total{_labels(source=source, code=status)} {n}")
            family(
                "runbook_serve_alerts_deduplicated_total",
                "counter",
                "Notifications already stored (retries, HA pairs).",
            )
            for source, n in sorted(self.deduplicated.items()):
                out.append(f"runbook_serve_alerts_deduplicated_total{_labels(source=source)} {n}")
            family("runbook_serve_store_failures_total", "counter", "Deliveries answered 503: not stored.")
            out.append(f"runbook_serve_store_failures_total {self.store_failures}")
            family("runbook_serve_run_duration_seconds", "histogram", "Duration of finished runs.")
            for runbook in sorted(self.duration_count):
                for bound in BUCKETS:
                    n = self.duration_buckets[(runbook, bound)]
                    out.append(
                        f"runbook_serve_run_duration_seconds_bucket{_labels(runbook=runbook, le=bound)} {n}"
                    )
                inf = _labels(runbook=runbook, le="+Inf")
                out.append(f"runbook_serve_run_duration_seconds_bucket{inf} {self.duration_count[runbook]}")
                out.append(
                    f"runbook_serve_run_duration_seconds_sum{_labels(runbook=runbook)} "
                    f"{self.duration_sum[runbook]:.3f}"
                )
                out.append(
                    f"runbook_serve_run_duration_seconds_count{_labels(runbook=runbook)} "
                    f"{self.duration_count[runbook]}"
                )
        family("runbook_serve_runs", "gauge", "Runs by state (from the queue).")
        for state, n in sorted(runs_by_state.items()):
            out.append(f"runbook_serve_runs{_labels(state=state)} {n}")
        family("runbook_serve_queue_depth", "gauge", "Runs waiting for a worker.")
        out.append(f"runbook_serve_queue_depth {queue_depth}")
        return "\n".join(out) + "\n"
