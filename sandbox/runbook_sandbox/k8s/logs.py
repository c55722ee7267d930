"""Container logs generated from the app model: start-up, steady traffic, and the road to an OOM kill.

Logs are computed on request from the container's timeline (never stored), deterministically per
pod and run, so `--previous` of a crash-looping `api` container always shows the heap climbing to
the limit, GC warnings and the last line before the kill, while the current container shows a
fresh start-up. The checkout app logs ERROR lines once the slow build is rolled out. The query
parameters behave like the kubelet's: container, previous, tailLines, timestamps, sinceSeconds,
limitBytes.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from runbook_sandbox.k8s.apps import App, Run

Line = tuple[dt.datetime, str]
STEADY_PERIOD = dt.timedelta(seconds=15)
STEADY_WINDOW = dt.timedelta(hours=1)
CHECKOUT_GOOD_TAG = "v3.8.1"  # the tag before the latency regression (seeds.py rolls out v3.9.0)


def _ts(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def _at(start: dt.datetime, seconds: float) -> dt.datetime:
    return start + dt.timedelta(seconds=seconds)


def _startup(app: App, run: Run, *, image: str, limit_mib: float | None) -> list[Line]:
    tag = image.rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else "latest"
    limit = f"{limit_mib:.0f}" if limit_mib else "none"
    return [
        (_at(run.started, 0.01), f"INFO  starting {app.name} version={tag} pid=1"),
        (_at(run.started, 0.02), f"INFO  runtime memory limit_mib={limit}"),
    ]


def _oom_run(app: App, run: Run, *, limit_mib: float, image: str) -> list[Line]:
    """A run that grows its heap to the limit and is killed."""
    lines = _startup(app, run, image=image, limit_mib=limit_mib)
    lines.append((_at(run.started, 0.05), "INFO  loading price cache from s3://payments-config/prices.json"))
    steps = 8
    duration = app.oom_after
    peak = float(app.peak_mib or limit_mib)
    for i in range(1, steps + 1):
        heap = min(limit_mib - 5, 40 + (peak - 40) * i / steps)
        at = _at(run.started, 0.1 + (duration - 0.3) * i / steps)
        entries = int(heap * 1800)
        lines.append(
            (
                at,
                f"INFO  cache warm-up heap_used_mib={heap:.0f} limit_mib={limit_mib:.0f} "
                f"cache_entries={entries}",
            )
        )
        if heap > limit_mib * 0.85:
            lines.append(
                (
                    at,
                    f"WARN  gc pause {120 + 40 * i}ms heap_used_mib={heap:.0f} "
                    f"limit_mib={limit_mib:.0f} ({heap / limit_mib:.0%})",
                )
            )
    last = limit_mib - 2
    lines.append(
        (
            _at(run.started, duration - 0.05),
            f"WARN  gc overhead limit approaching: heap_used_mib={last:.0f} limit_mib={limit_mib:.0f} "
            f"allocating price table segment 14/16",
        )
    )
    return lines


def _steady(
    app: App,
    run: Run,
    *,
    pod: str,
    image: str,
    limit_mib: float | None,
    until: dt.datetime,
    slow_since: dt.datetime | None,
) -> list[Line]:
    lines = _startup(app, run, image=image, limit_mib=limit_mib)
    ready = _at(run.started, app.ready_after)
    if ready > until:
        return lines
    lines.append((ready, "INFO  ready: listening on :8080"))
    rng = random.Random(f"{pod}/{run.index}")
    first = max(ready, until - STEADY_WINDOW)
    at = first + STEADY_PERIOD
    while at <= until:
        lines.append((at, _traffic_line(app, rng, slow=slow_since is not None and at >= slow_since)))
        at += STEADY_PERIOD
    return lines


def _traffic_line(app: App, rng: random.Random, *, slow: bool) -> str:
    if app.style == "checkout":
        if slow and rng.random() < 0.35:
            return (
                f"ERROR POST /checkout 504 upstream inventory-svc timed out after 2000ms "
                f"trace_id={rng.getrandbits(64):016x}"
            )
        latency = rng.randint(900, 2400) if slow else rng.randint(40, 140)
        return f"INFO  POST /checkout 200 {latency}ms"
    if app.style == "payments-api":
        return f"INFO  POST /v1/charges 200 {rng.randint(8, 40)}ms"
    if app.style == "worker":
        return (
            f"INFO  processed batch size={rng.randint(20, 80)} queue=settlements lag_ms={rng.randint(5, 90)}"
        )
    if app.style == "coredns":
        client = f"10.0.1.{rng.randint(2, 250)}:{rng.randint(30000, 60000)}"
        return f'[INFO] {client} - "A IN api.payments.svc." NOERROR'
    return f'10.0.1.{rng.randint(2, 250)} - - "GET / HTTP/1.1" 200 {rng.randint(300, 900)}'


def lines_for_run(
    *, app: App, run: Run, pod: str, image: str, limit_mib: float | None, at: dt.datetime, crashed: bool
) -> list[Line]:
    if crashed and limit_mib:
        lines = _oom_run(app, run, limit_mib=limit_mib, image=image)
    else:
        slow_since = None
        if app.style == "checkout" and not image.endswith(CHECKOUT_GOOD_TAG):
            slow_since = run.started
        lines = _steady(
            app,
            run,
            pod=pod,
            image=image,
            limit_mib=limit_mib,
            until=run.finished or at,
            slow_since=slow_since,
        )
    return [line for line in lines if line[0] <= at]


def render(lines: list[Line], query: dict[str, str], *, at: dt.datetime) -> str:
    """Apply sinceSeconds/sinceTime, tailLines, timestamps and limitBytes like the kubelet."""
    if "sinceSeconds" in query:
        since = at - dt.timedelta(seconds=int(query["sinceSeconds"]))
        lines = [line for line in lines if line[0] >= since]
    elif "sinceTime" in query:
        since = dt.datetime.fromisoformat(query["sinceTime"].replace("Z", "+00:00"))
        lines = [line for line in lines if line[0] >= since]
    if "tailLines" in query:
        tail = int(query["tailLines"])
        lines = lines[-tail:] if tail > 0 else []
    with_ts = query.get("timestamps") in ("true", "1")
    text = "".join(f"{_ts(moment)} {msg}\n" if with_ts else f"{msg}\n" for moment, msg in lines)
    if "limitBytes" in query:
        text = text.encode()[: int(query["limitBytes"])].decode(errors="ignore")
    return text


def parse_bool(query: dict[str, Any], name: str) -> bool:
    return str(query.get(name, "")).lower() in ("true", "1")
