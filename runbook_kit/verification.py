"""Is it resolved? Checks that each answer pass / fail / could-not-check, and one verdict.

Every `check_*` is a read: it returns a DataFrame of checks (`check`, `target`, `ok`, `detail`) and
records nothing but gaps; `ok` is True, False, or None when the check could not be done (no
permission, the API unreachable because of *our* access, no data): the read records a gap
(`record.gap`, so the run completes with gaps) and marks the frame (`record.missing`) — never a silent
pass. A check whose target the user did not give is not run (no row, no gap).
`record_verdict(...)` writes the one finding the postmortem reads:

* `verdict: resolved` (info) — every check that ran passed and none was a gap;
* `verdict: NOT resolved` (high) — at least one failed, named with its detail;
* `verdict: not verified` (medium) — nothing failed but something could not be checked.

Health endpoints are plain HTTP GETs (status and latency); synthetic checks add an expected status
and body text. Deployments are read through the kit's Kubernetes client; alarms through CloudWatch.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from runbook_kit import record
from runbook_kit.errors import NotFound, ParameterError, backend_call

__all__ = [
    "check_alarms",
    "check_alb",
    "check_deployment",
    "check_error_logs",
    "check_health",
    "check_synthetic",
    "kubectl_top",
    "record_verdict",
]

COLUMNS = ["check", "target", "ok", "detail"]


def _frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=COLUMNS).astype({"ok": "object"})


def _unchecked(check: str, target: str, gap: Mapping[str, str]) -> pd.DataFrame:
    """One could-not-check row, the frame marked missing with the (already recorded) gap."""
    detail = f"could not check: {gap['why']}"
    frame = _frame([{"check": check, "target": target, "ok": None, "detail": detail}])
    frame.attrs["gap"] = dict(gap)
    return frame


def _get(url: str, timeout: float) -> tuple[int | None, float, str, str]:
    """(status, latency ms, first 2 kB of the body, error) — HTTP errors are answers, not failures."""
    if not url.startswith(("http://", "https://")):
        raise ParameterError(f"health URL must be http(s): {url!r}")
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (scheme checked)
            body = resp.read(2048).decode(errors="replace")
            return resp.status, (time.perf_counter() - start) * 1000, body, ""
    except urllib.error.HTTPError as exc:
        return exc.code, (time.perf_counter() - start) * 1000, exc.read(2048).decode(errors="replace"), ""
    except (urllib.error.URLError, OSError) as exc:
        return None, (time.perf_counter() - start) * 1000, "", str(getattr(exc, "reason", exc))


def check_health(*, urls: Sequence[str], max_latency_ms: float = 500, timeout: float = 5) -> pd.DataFrame:
    """Each health endpoint answers 2xx within `max_latency_ms`. An unreachable endpoint fails."""
    rows = []
    for url in urls:
        status, ms, _, error = _get(url, timeout)
        ok = status is not None and 200 <= status < 300 and ms <= max_latency_ms
        slow = "" if ms <= max_latency_ms else f" (> {max_latency_ms:g})"
        detail = f"unreachable: {error}" if status is None else f"HTTP {status} in {ms:.0f} ms{slow}"
        rows.append({"check": "health endpoint", "target": url, "ok": ok, "detail": detail})
    return _frame(rows)


def check_synthetic(*, checks: Sequence[Mapping[str, Any]], timeout: float = 5) -> pd.DataFrame:
    """Synthetic checks: `{"url": ..., "status": 200, "contains": "ok"}` (status and contains optional)."""
    rows = []
    for spec in checks:
        url = str(spec.get("url", ""))
        want, text = int(spec.get("status", 200)), spec.get("contains")
        status, ms, body, error = _get(url, timeout)
        problems = (
            [f"unreachable: {error}"]
            if status is None
            else ([f"HTTP {status}, expected {want}"] if status != want else [])
            + ([f"body lacks {text!r}"] if text and text not in body else [])
        )
        rows.append(
            {
                "check": "synthetic",
                "target": url,
                "ok": not problems,
                "detail": "; ".join(problems) or f"HTTP {status} in {ms:.0f} ms",
            }
        )
    return _frame(rows)


def _deployment_state(
    namespace: str, deployment: str, context: str, apps: Any, core: Any
) -> tuple[bool, str, list[str]]:
    with backend_call("k8s", f"read deployment {namespace}/{deployment}"):
        dep = json.loads(apps.read_namespaced_deployment(deployment, namespace, _preload_content=False).data)
    spec, st = dep.get("spec") or {}, dep.get("status") or {}
    want = int(spec.get("replicas", 1))
    counts = {k: int(st.get(k) or 0) for k in ("updatedReplicas", "readyReplicas", "availableReplicas")}
    complete = (
        st.get("observedGeneration", 0) >= dep["metadata"].get("generation", 0)
        and all(v >= want for v in counts.values())
        and int(st.get("replicas") or 0) == want
    )
    labels = (spec.get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in labels.items())
    with backend_call("k8s", f"list pods {namespace}"):
        pods = json.loads(
            core.list_namespaced_pod(namespace, label_selector=selector, _preload_content=False).data
        ).get("items", [])
    crashing = [
        p["metadata"]["name"]
        for p in pods
        for c in (p.get("status") or {}).get("containerStatuses") or []
        if not c.get("ready") or ((c.get("state") or {}).get("waiting") or {}).get("reason")
    ]
    detail = (
        f"{counts['readyReplicas']}/{want} ready, {counts['updatedReplicas']} updated, "
        f"{counts['availableReplicas']} available"
    )
    return complete and not crashing, detail, sorted(set(crashing))


def check_deployment(
    *,
    namespace: str,
    deployment: str,
    wait_s: float = 60,
    context: str = "",
    apps: Any | None = None,
    core: Any | None = None,
) -> pd.DataFrame:
    """The deployment is fully available and no pod of it is crash-looping or unready (waits up to
    `wait_s` for it to converge, so a verification right after a rollback is fair). No deployment
    given: no check."""
    from runbook_kit import clients

    if not deployment:
        return _frame([])
    with record.degrade(f"deployment {namespace}/{deployment}",
                        fix="RBAC: get deployments and list pods in the namespace") as step:
        apps = apps or clients.apps_v1(context=context or None)
        core = core or clients.core_v1(context=context or None)
        deadline = time.monotonic() + wait_s
        while True:
            ok, detail, bad = _deployment_state(namespace, deployment, context, apps, core)
            if ok or time.monotonic() >= deadline:
                break
            time.sleep(1.0)
    if step.gap:
        return _unchecked("deployment available", f"{namespace}/{deployment}", step.gap)
    if bad:
        detail += f"; not ready or crash-looping: {', '.join(bad[:5])}"
    return _frame(
        [{"check": "deployment available", "target": f"{namespace}/{deployment}", "ok": ok, "detail": detail}]
    )


def check_alarms(*, prefix: str = "", enabled: bool = True, cloudwatch: Any | None = None) -> pd.DataFrame:
    """CloudWatch alarms (names starting with `prefix`) are OK; one row per alarm not OK."""
    from runbook_kit import clients

    if not enabled:
        return _frame([])
    alarms: list[dict[str, Any]] = []
    with record.degrade(f"CloudWatch alarms {prefix or '(all)'}", fix="cloudwatch:DescribeAlarms") as step:
        cw = cloudwatch or clients.aws("cloudwatch")
        with backend_call("aws", "describe alarms"):
            for page in cw.get_paginator("describe_alarms").paginate(
                **({"AlarmNamePrefix": prefix} if prefix else {})
            ):
                alarms += page.get("MetricAlarms", []) + page.get("CompositeAlarms", [])
    if step.gap:
        return _unchecked("alarms OK", prefix or "(all)", step.gap)
    bad = [a for a in alarms if a.get("StateValue") != "OK"]
    if not bad:
        return _frame(
            [
                {
                    "check": "alarms OK",
                    "target": prefix or "(all)",
                    "ok": True,
                    "detail": f"{len(alarms)} alarm(s), all OK",
                }
            ]
        )
    return _frame(
        [
            {
                "check": "alarms OK",
                "target": a["AlarmName"],
                "ok": False,
                "detail": f"{a.get('StateValue')}: {a.get('StateReason', '')[:160]}",
            }
            for a in bad
        ]
    )


def check_alb(
    *,
    load_balancer: str,
    minutes: float = 10,
    max_error_rate_pct: float = 1.0,
    max_p99_ms: float = 1000,
    cloudwatch: Any | None = None,
) -> pd.DataFrame:
    """The load balancer's 5xx rate and worst-minute p99 over the last `minutes` are under thresholds."""
    if not load_balancer:
        return _frame([])
    from runbook_kit.triage import alb_health

    lb = alb_health(load_balancer=load_balancer, minutes=minutes, cloudwatch=cloudwatch)
    if lb.empty:  # alb_health recorded the gap (no permission, no datapoint)
        return _unchecked("load balancer", load_balancer, lb.attrs.get("gap") or {"why": "no data"})
    row = lb.iloc[0]
    rows = [
        {
            "check": "5xx rate",
            "target": load_balancer,
            "ok": row.error_rate_pct <= max_error_rate_pct,
            "detail": f"{row.error_rate_pct:g}% over {minutes:g} min (max {max_error_rate_pct:g}%)",
        },
        {
            "check": "p99 latency",
            "target": load_balancer,
            "ok": row.p99_ms <= max_p99_ms,
            "detail": f"worst minute {row.p99_ms:.0f} ms (max {max_p99_ms:g})",
        },
    ]
    return _frame(rows)


def check_error_logs(
    *,
    log_group: str,
    minutes: float = 15,
    baseline_minutes: float = 60,
    pattern: str = "ERROR",
    max_ratio: float = 2.0,
    logs: Any | None = None,
) -> pd.DataFrame:
    """Errors per minute in the last `minutes` are at most `max_ratio` × those of the `baseline_minutes`
    before them (Logs Insights `stats count(*) by bin(1m)`)."""
    if not log_group:
        return _frame([])
    from runbook_kit.aws.logs import error_timeline

    frame = error_timeline(
        log_group=log_group, minutes=minutes + baseline_minutes, pattern=pattern, bin_size="1m", logs=logs
    )
    if record.missing(frame):  # the Logs Insights read recorded the gap
        return _unchecked("error logs", log_group, frame.attrs["gap"])
    cut = pd.Timestamp.now(tz="UTC") - pd.Timedelta(minutes=minutes)
    times = pd.to_datetime(frame["bin"], utc=True)
    recent = float(frame.errors[times >= cut].sum()) / minutes
    baseline = float(frame.errors[times < cut].sum()) / baseline_minutes
    ok = recent <= max_ratio * baseline or recent == 0
    return _frame(
        [
            {
                "check": "error logs",
                "target": log_group,
                "ok": ok,
                "detail": f"{recent:.1f} {pattern}/min in the last {minutes:g} min vs {baseline:.1f}/min "
                f"before (max ×{max_ratio:g})",
            }
        ]
    )


def kubectl_top(*, namespace: str, context: str = "", custom: Any | None = None) -> pd.DataFrame:
    """`kubectl top pods` and `kubectl top nodes` in one frame (kind, name, cpu_cores, memory_mib);
    a cluster without metrics.k8s.io (or no permission to read it) records a gap and gives an empty
    frame marked missing."""
    from runbook_kit import clients
    from runbook_kit.k8s.quantity import cpu_cores, memory_bytes

    columns = ["kind", "name", "cpu_cores", "memory_mib"]
    if not namespace:
        return pd.DataFrame(columns=columns)
    rows = []
    what = "pod and node usage (metrics.k8s.io)"
    fix = "install metrics-server; RBAC: list pods and nodes of metrics.k8s.io"
    try:
        with record.degrade(what, fix=fix) as step:
            api = custom or clients.custom_objects(context=context or None)
            with backend_call("k8s", f"top pods {namespace}"):
                pods = api.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", namespace, "pods")
            with backend_call("k8s", "top nodes"):
                nodes = api.list_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes")
    except NotFound as exc:  # the metrics API is not served: a cluster without metrics-server
        return record.gap_frame(columns, what=what, why=str(exc), fix=fix)
    if step.gap:
        frame = pd.DataFrame(columns=columns)
        frame.attrs["gap"] = step.gap
        return frame
    for item in pods.get("items", []):
        cpu = sum(cpu_cores(c["usage"].get("cpu")) or 0 for c in item.get("containers", []))
        mem = sum(memory_bytes(c["usage"].get("memory")) or 0 for c in item.get("containers", []))
        rows.append(
            {
                "kind": "pod",
                "name": item["metadata"]["name"],
                "cpu_cores": cpu,
                "memory_mib": round(mem / 2**20, 1),
            }
        )
    for item in nodes.get("items", []):
        rows.append(
            {
                "kind": "node",
                "name": item["metadata"]["name"],
                "cpu_cores": cpu_cores(item["usage"].get("cpu")) or 0,
                "memory_mib": round((memory_bytes(item["usage"].get("memory")) or 0) / 2**20, 1),
            }
        )
    return pd.DataFrame(rows, columns=columns)


def record_verdict(*checks: pd.DataFrame) -> record.Entry:
    """One finding from all the checks: resolved / NOT resolved / not verified.

    A check that could not be done (its gap recorded by the check, `record.missing`) never passes:
    with nothing failing, the verdict is "not verified" and names what is missing."""
    missing = record.missing(*checks)
    frames = [c for c in checks if c is not None and len(c)]
    table = pd.concat(frames, ignore_index=True) if frames else _frame([])
    failed = table[table["ok"].apply(lambda v: v is False)]
    gaps = table[table["ok"].apply(lambda v: v is None)]
    if len(table) == 0:
        return record.finding("verdict: not verified — no check was run", severity="medium", role="verdict")
    if len(failed):
        names = "; ".join(f"{r.check} {r.target}: {r.detail}" for r in failed.itertuples())
        return record.finding(
            f"verdict: NOT resolved — {len(failed)} check(s) failing: {names}"[:300],
            severity="high",
            role="verdict",
            checks=table,
            failing=len(failed),
            missing=missing,
        )
    if len(gaps) or missing:
        names = ", ".join(f"{r.check} {r.target}" for r in gaps.itertuples())
        return record.finding(
            f"verdict: not verified — nothing failing, but could not check {names}"[:300],
            severity="medium",
            role="verdict",
            checks=table,
            gaps=len(gaps),
            missing=missing,
        )
    return record.finding(
        f"verdict: resolved — {len(table)} check(s) passing", severity="info", role="verdict", checks=table
    )
