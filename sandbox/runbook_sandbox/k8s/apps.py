"""The sandbox's application model: what a container of a given image does over time.

A real cluster's behaviour comes from its workloads; the sandbox's comes from this table, keyed by
image repository. The payments `api` needs CRASHLOOP_APP_PEAK_MIB of memory: under a lower limit it
is OOMKilled a few seconds after each start and the kubelet restarts it with exponential back-off
(10 s doubling to 5 min). Everything the runbooks read (restart counts, last state, back-off
messages, events, previous-container logs, memory usage) is derived from one timeline computed from
the container's first start, so the fields always agree with each other and with the clock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from runbook_sandbox import timeline

BACKOFF_START = 10.0
BACKOFF_CAP = 300.0
READY_AFTER = 1.0  # seconds from start to Ready, for containers without a readiness delay


@dataclass(frozen=True)
class App:
    name: str
    steady_mib: int
    cpu_millis: int
    peak_mib: int | None = None  # memory the app reaches while warming up; OOM when over the limit
    oom_after: float = 2.5  # seconds from start to the OOM kill when the peak exceeds the limit
    ready_after: float = READY_AFTER
    style: str = "web"


APPS = {
    "payments/api": App(
        "payments-api",
        steady_mib=timeline.CRASHLOOP_APP_PEAK_MIB - 40,
        cpu_millis=180,
        peak_mib=timeline.CRASHLOOP_APP_PEAK_MIB,
        ready_after=3.0,
        style="payments-api",
    ),
    "payments/worker": App("payments-worker", steady_mib=190, cpu_millis=90, style="worker"),
    "storefront/checkout": App("checkout", steady_mib=350, cpu_millis=250, style="checkout"),
    "storefront/frontend": App("frontend", steady_mib=120, cpu_millis=60, style="web"),
    "coredns/coredns": App("coredns", steady_mib=18, cpu_millis=4, style="coredns"),
}
DEFAULT = App("app", steady_mib=24, cpu_millis=2, style="web")


def app_for(image: str) -> App:
    repository = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    for suffix, app in APPS.items():
        if repository.endswith(suffix):
            return app
    return DEFAULT


def mib(quantity: str | None) -> float | None:
    """A memory quantity (`256Mi`, `1Gi`, `268435456`, `500M`) in MiB."""
    if not quantity:
        return None
    units = {
        "Ki": 1 / 1024,
        "Mi": 1,
        "Gi": 1024,
        "Ti": 1024**2,
        "k": 1000 / 1024**2,
        "M": 1e6 / 1024**2,
        "G": 1e9 / 1024**2,
        "m": 1e-3 / 1024**2,
    }
    for unit, factor in units.items():
        if quantity.endswith(unit):
            return float(quantity[: -len(unit)]) * factor
    return float(quantity) / 1024**2


def millicores(quantity: str | None) -> float | None:
    if not quantity:
        return None
    if quantity.endswith("m"):
        return float(quantity[:-1])
    if quantity.endswith("n"):
        return float(quantity[:-1]) / 1e6
    return float(quantity) * 1000


def go_duration(seconds: float) -> str:
    """Go's time.Duration String for whole seconds: 10s, 1m20s, 5m0s."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes}m{secs}s"


@dataclass(frozen=True)
class Run:
    index: int
    started: dt.datetime
    finished: dt.datetime | None  # None: still running
    backoff: float  # seconds waited after this run before the next start


@dataclass(frozen=True)
class ContainerTimeline:
    runs: tuple[Run, ...]  # the most recent starts (at most KEEP_RUNS), oldest first
    crashing: bool
    waiting_since: dt.datetime | None  # in CrashLoopBackOff since, or None when running
    first_start: dt.datetime
    starts: int = 1  # every start since the first, including those no longer in `runs`
    backoff_events: int = 0  # BackOff events the kubelet would have emitted (one per ~10 s sync)
    first_backoff: dt.datetime | None = None
    last_backoff: dt.datetime | None = None

    @property
    def current(self) -> Run:
        return self.runs[-1]

    @property
    def restart_count(self) -> int:
        return self.starts - (0 if self.current.finished is not None else 1)

    @property
    def previous(self) -> Run | None:
        finished = [r for r in self.runs if r.finished is not None]
        return finished[-1] if finished else None


KEEP_RUNS = 8
SYNC_PERIOD = 10.0  # the kubelet re-syncs a pod in back-off about every 10 s, emitting BackOff each time


def container_timeline(
    *, app: App, limit_mib: float | None, first_start: dt.datetime, at: dt.datetime
) -> ContainerTimeline:
    """Every run of a container from its first start until `at`.

    Once the back-off is capped every cycle is the same, so whole cycles are skipped arithmetically:
    a crash loop months old costs the same as one minutes old.
    """
    oom = app.peak_mib is not None and limit_mib is not None and limit_mib < app.peak_mib
    if not oom:
        return ContainerTimeline((Run(0, first_start, None, 0.0),), False, None, first_start)
    runs: list[Run] = []
    run_time = dt.timedelta(seconds=app.oom_after)
    start, index, events, first_backoff, last_backoff = first_start, 0, 0, None, None
    while True:
        end = start + run_time
        backoff = min(BACKOFF_START * 2 ** min(index, 10), BACKOFF_CAP)
        if at < end:
            runs.append(Run(index, start, None, backoff))
            waiting = None
            break
        runs.append(Run(index, start, end, backoff))
        next_start = end + dt.timedelta(seconds=backoff)
        syncs = 1 + int((min(at, next_start) - end).total_seconds() // SYNC_PERIOD)
        events += syncs
        first_backoff = first_backoff or end
        last_backoff = end + dt.timedelta(seconds=SYNC_PERIOD * (syncs - 1))
        if at < next_start:
            waiting = end
            break
        start, index = next_start, index + 1
        if backoff >= BACKOFF_CAP:
            cycle = run_time + dt.timedelta(seconds=BACKOFF_CAP)
            skip = int((at - start) / cycle) - KEEP_RUNS
            if skip > 0:
                start += cycle * skip
                index += skip
                events += skip * (1 + int(BACKOFF_CAP // SYNC_PERIOD))
    return ContainerTimeline(
        tuple(runs[-KEEP_RUNS:]),
        True,
        waiting,
        first_start,
        starts=index + 1,
        backoff_events=events,
        first_backoff=first_backoff,
        last_backoff=last_backoff,
    )


def memory_mib(*, app: App, limit_mib: float | None, tl: ContainerTimeline, at: dt.datetime) -> float:
    """Working-set memory for metrics: near the limit while crash-looping, steady otherwise."""
    if tl.crashing and limit_mib:
        return limit_mib * 0.96
    steady = float(app.steady_mib)
    if limit_mib:
        steady = min(steady, limit_mib * 0.9)
    return steady
