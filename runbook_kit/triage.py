"""Triage: the first ten minutes. What is broken, how badly, since when, what changed, what next.

Reads (each returns a DataFrame; a read that cannot be done — no permission, unreachable, no data —
records a gap (`record.gap`) and returns an empty frame marked missing (`record.missing`), so the
assessment names it instead of guessing; a source the user did not give (empty parameter) is not a
gap but `attrs["not_configured"]`, listed as "not checked" info):

* `dashboard_metrics` — `aws cloudwatch get-dashboard` of the environment's overview dashboard, its
  metric widgets fetched with GetMetricData (`plot_dashboard` draws them);
* `app_health` — per deployment of a namespace: desired / ready / available / updated, pods not ready,
  crash-looping, restarts;
* `alb_health` — the load balancer's 5xx rate and p99 over the last minutes;
* `recent_changes` — rollouts (ReplicaSets created), CodeDeploy deployments and CloudTrail write
  events of the last hours.

`assess_incident(...)` is pure: the affected service, the customer impact, when it started, what
changed, a suggested severity from configurable thresholds, and the next runbook with its exact
`runbook run` command. `record_assessment(...)` writes it as findings. Thresholds (runbook.yaml):

    triage:
      P0: {unavailable_fraction: 1.0, error_rate_pct: 50}
      P1: {unavailable_fraction: 0.5, crashlooping: 1, error_rate_pct: 5, p99_ms: 2000}
      P2: {unavailable_fraction: 0.01, restarts: 1, error_rate_pct: 1, p99_ms: 1000}

The first level (P0 first) with any threshold met is suggested; none met: P3.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shlex
from collections.abc import Mapping
from typing import Any

import pandas as pd

from runbook_kit import record
from runbook_kit.errors import backend_call

__all__ = [
    "DEFAULT_RULES",
    "Assessment",
    "alb_health",
    "app_health",
    "assess_incident",
    "dashboard_metrics",
    "plot_dashboard",
    "recent_changes",
    "record_assessment",
]

DEFAULT_RULES: dict[str, dict[str, float]] = {
    "P0": {"unavailable_fraction": 1.0, "error_rate_pct": 50},
    "P1": {"unavailable_fraction": 0.5, "crashlooping": 1, "error_rate_pct": 5, "p99_ms": 2000},
    "P2": {"unavailable_fraction": 0.01, "restarts": 1, "error_rate_pct": 1, "p99_ms": 1000},
}


def _not_configured(columns: list[str], why: str) -> pd.DataFrame:
    """An empty frame for a source the user did not give: not a gap (nothing was tried), just info."""
    frame = pd.DataFrame(columns=columns)
    frame.attrs["not_configured"] = why
    return frame


def _utc(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


# --- reads ------------------------------------------------------------------------------------------

DASH_COLUMNS = ["widget", "label", "timestamp", "value"]


@record.read_step("CloudWatch dashboard {dashboard}", columns=DASH_COLUMNS,
                  fix="cloudwatch:GetDashboard and cloudwatch:GetMetricData")
def dashboard_metrics(
    *, dashboard: str, hours: float = 3, period: int = 60, cloudwatch: Any | None = None
) -> pd.DataFrame:
    """The metric widgets of a CloudWatch dashboard over the last `hours` (long format)."""
    from runbook_kit import clients

    if not dashboard:
        return _not_configured(DASH_COLUMNS, "no dashboard given (parameter dashboard)")
    end = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    start = end - dt.timedelta(hours=hours)
    cw = cloudwatch or clients.aws("cloudwatch")
    with backend_call("aws", f"cloudwatch get-dashboard {dashboard}"):
        body = json.loads(cw.get_dashboard(DashboardName=dashboard)["DashboardBody"])
    queries, labels = [], {}
    for w, widget in enumerate(body.get("widgets", [])):
        props = widget.get("properties") or {}
        if widget.get("type") != "metric":
            continue
        previous: list[Any] = []
        for m, metric in enumerate(props.get("metrics", [])):
            opts = metric[-1] if metric and isinstance(metric[-1], dict) else {}
            parts = [p for p in metric if not isinstance(p, dict)]
            parts = [previous[i] if p == "." and i < len(previous) else p for i, p in enumerate(parts)]
            previous = parts
            namespace, name, dims = parts[0], parts[1], parts[2:]
            qid = f"w{w}m{m}"
            stat = opts.get("stat") or props.get("stat") or "Average"
            queries.append(
                {
                    "Id": qid,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": namespace,
                            "MetricName": name,
                            "Dimensions": [
                                {"Name": dims[i], "Value": dims[i + 1]}
                                for i in range(0, len(dims) - 1, 2)
                            ],
                        },
                        "Period": int(props.get("period", period)),
                        "Stat": stat,
                    },
                }
            )
            labels[qid] = (props.get("title") or f"widget {w}", opts.get("label") or f"{name} ({stat})")
    rows = []
    with backend_call("aws", "cloudwatch get-metric-data"):
        for i in range(0, len(queries), 500):
            for page in cw.get_paginator("get_metric_data").paginate(
                MetricDataQueries=queries[i : i + 500], StartTime=start, EndTime=end
            ):
                for result in page["MetricDataResults"]:
                    widget, label = labels[result["Id"]]
                    rows += [
                        {"widget": widget, "label": label, "timestamp": pd.Timestamp(t), "value": v}
                        for t, v in zip(result["Timestamps"], result["Values"], strict=False)
                    ]
    return pd.DataFrame(rows, columns=DASH_COLUMNS).sort_values(
        ["widget", "label", "timestamp"], ignore_index=True
    )


def plot_dashboard(frame: pd.DataFrame, *, title: str = "") -> Any:
    """One panel per widget, one line per metric (None when there is nothing to draw)."""
    if frame is None or frame.empty:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    widgets = list(dict.fromkeys(frame.widget))
    fig, axes = plt.subplots(len(widgets), 1, figsize=(9, 2.4 * len(widgets)), squeeze=False, sharex=True)
    for ax, widget in zip(axes[:, 0], widgets, strict=True):
        for label, part in frame[frame.widget == widget].groupby("label", sort=False):
            ax.plot(part.timestamp, part.value, label=str(label))
        ax.set_title(widget, fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    plt.close(fig)
    return fig


HEALTH_COLUMNS = [
    "deployment",
    "desired",
    "ready",
    "available",
    "updated",
    "not_ready",
    "crashlooping",
    "restarts",
]


@record.read_step("deployments and pods of namespace {namespace}", columns=HEALTH_COLUMNS,
                  fix="RBAC: list deployments and pods in the namespace")
def app_health(
    *, namespace: str, context: str = "", apps: Any | None = None, core: Any | None = None
) -> pd.DataFrame:
    """Per deployment in `namespace`: replicas, pods not ready, crash-looping, restarts."""
    from runbook_kit import clients

    if not namespace:
        return _not_configured(HEALTH_COLUMNS, "no namespace given (parameter namespace)")
    apps = apps or clients.apps_v1(context=context or None)
    core = core or clients.core_v1(context=context or None)
    with backend_call("k8s", f"list deployments {namespace}"):
        deps = json.loads(apps.list_namespaced_deployment(namespace, _preload_content=False).data)[
            "items"
        ]
    with backend_call("k8s", f"list pods {namespace}"):
        pods = json.loads(core.list_namespaced_pod(namespace, _preload_content=False).data)["items"]
    rows = []
    for dep in deps:
        labels = ((dep.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        mine = [
            p
            for p in pods
            if labels and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items())
        ]
        statuses = [c for p in mine for c in (p.get("status") or {}).get("containerStatuses") or []]
        st = dep.get("status") or {}
        rows.append(
            {
                "deployment": dep["metadata"]["name"],
                "desired": int((dep.get("spec") or {}).get("replicas", 1)),
                "ready": int(st.get("readyReplicas") or 0),
                "available": int(st.get("availableReplicas") or 0),
                "updated": int(st.get("updatedReplicas") or 0),
                "not_ready": sum(
                    1
                    for p in mine
                    if any(not c.get("ready") for c in (p.get("status") or {}).get("containerStatuses") or [])
                ),
                "crashlooping": sum(
                    1
                    for c in statuses
                    if ((c.get("state") or {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff"
                ),
                "restarts": sum(int(c.get("restartCount") or 0) for c in statuses),
            }
        )
    return pd.DataFrame(rows, columns=HEALTH_COLUMNS)


ALB_COLUMNS = ["load_balancer", "requests", "error_rate_pct", "p99_ms", "worst_minute"]


@record.read_step("5xx rate and p99 of load balancer {load_balancer}", columns=ALB_COLUMNS,
                  fix="cloudwatch:GetMetricData on AWS/ApplicationELB")
def alb_health(*, load_balancer: str, minutes: float = 60, cloudwatch: Any | None = None) -> pd.DataFrame:
    """The load balancer over the last `minutes`: requests, 5xx rate, worst-minute p99."""
    if not load_balancer:
        return _not_configured(ALB_COLUMNS, "no load balancer given (parameter load_balancer)")
    from runbook_kit.aws.alb import alb_metrics

    frame = alb_metrics(load_balancer=load_balancer, minutes=minutes, cloudwatch=cloudwatch)
    if frame.empty:
        return record.gap_frame(
            ALB_COLUMNS,
            what=f"5xx rate and p99 of load balancer {load_balancer}",
            why=f"CloudWatch has no datapoint in the last {minutes:g} min",
            fix="check the parameter load_balancer (app/NAME/ID) and that it serves traffic",
        )
    requests = float(frame.requests.fillna(0).sum())
    errors = float(frame.target_5xx.fillna(0).sum())
    worst = frame.loc[frame.p99_ms.fillna(0).idxmax()]
    return pd.DataFrame(
        [
            {
                "load_balancer": load_balancer,
                "requests": requests,
                "error_rate_pct": round(100 * errors / requests, 2) if requests else 0.0,
                "p99_ms": float(worst.p99_ms),
                "worst_minute": worst.timestamp,
            }
        ],
        columns=ALB_COLUMNS,
    )


CHANGE_COLUMNS = ["time", "source", "what", "who"]


def recent_changes(
    *,
    namespace: str = "",
    hours: float = 4,
    codedeploy_application: str = "",
    cloudtrail: bool = True,
    context: str = "",
    apps: Any | None = None,
) -> pd.DataFrame:
    """Rollouts, CodeDeploy deployments and CloudTrail writes of the last `hours`, newest first."""
    from runbook_kit import clients

    since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)
    rows: list[dict[str, Any]] = []
    gaps: list[Mapping[str, str]] = []
    if namespace:
        with record.degrade(f"rollouts in namespace {namespace}", fix="RBAC: list replicasets") as step:
            api = apps or clients.apps_v1(context=context or None)
            with backend_call("k8s", f"list replicasets {namespace}"):
                rss = json.loads(api.list_namespaced_replica_set(namespace, _preload_content=False).data)[
                    "items"
                ]
            for rs in rss:
                meta = rs["metadata"]
                created = _utc(meta.get("creationTimestamp"))
                owner = next(
                    (o["name"] for o in meta.get("ownerReferences") or [] if o["kind"] == "Deployment"), ""
                )
                rev = (meta.get("annotations") or {}).get("deployment.kubernetes.io/revision", "?")
                if created and created >= since and owner:
                    rows.append(
                        {
                            "time": created,
                            "source": "kubernetes",
                            "what": f"rollout of {namespace}/{owner} to revision {rev}",
                            "who": "",
                        }
                    )
        if step.gap:
            gaps.append(step.gap)
    if codedeploy_application:
        from runbook_kit.aws.codedeploy import deployments

        found = deployments(application=codedeploy_application, minutes=hours * 60)  # a gap: recorded
        gaps += [found.attrs["gap"]] if record.missing(found) else []
        for d in found.to_dict("records"):
            rows.append(
                {
                    "time": pd.Timestamp(d.get("created")).to_pydatetime(),
                    "source": "codedeploy",
                    "what": f"deployment {d.get('deployment_id')} ({d.get('status')})",
                    "who": str(d.get("creator") or ""),
                }
            )
    if cloudtrail:
        from runbook_kit.aws.cloudtrail import lookup_events

        events = lookup_events(minutes=hours * 60, read_only=False)  # a gap: recorded by the read
        gaps += [events.attrs["gap"]] if record.missing(events) else []
        for e in events.to_dict("records"):
            rows.append(
                {
                    "time": pd.Timestamp(e.get("time")).to_pydatetime(),
                    "source": "cloudtrail",
                    "what": f"{e.get('event_name')} {e.get('resources') or ''}".strip(),
                    "who": str(e.get("username") or ""),
                }
            )
    frame = pd.DataFrame(rows, columns=CHANGE_COLUMNS)
    if not frame.empty:
        frame = frame.sort_values("time", ascending=False, ignore_index=True)
    if gaps:  # already recorded one by one; the frame carries them for the assessment
        frame.attrs["gap"] = {k: "; ".join(str(g.get(k, "")) for g in gaps) for k in ("what", "why", "fix")}
    if not namespace and not codedeploy_application and not cloudtrail:
        frame.attrs["not_configured"] = "no change source given (namespace, codedeploy_application)"
    return frame


# --- the assessment ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Assessment:
    service: str
    impact: str
    started: dt.datetime | None
    changed: str
    severity: str
    why: str
    next_runbook: str
    command: str
    gaps: tuple[str, ...] = ()  # evidence that could not be read ("what: why", `record.missing`)
    not_checked: tuple[str, ...] = ()  # sources the user did not give (info, not gaps)


def _rules(rules: Mapping[str, Mapping[str, float]] | None) -> Mapping[str, Mapping[str, float]]:
    if rules is not None:
        return rules
    from runbook_kit import settings

    configured = settings.get().triage
    return {**DEFAULT_RULES, **configured} if configured else DEFAULT_RULES


def assess_incident(
    *,
    health: pd.DataFrame,
    alb: pd.DataFrame | None = None,
    changes: pd.DataFrame | None = None,
    namespace: str = "",
    incident: str | None = None,
    rules: Mapping[str, Mapping[str, float]] | None = None,
) -> Assessment:
    """Pure but for defaults: what is affected, how badly, since when, what changed, what to run next.

    `incident` None: the run's own incident (record.this_run(), set by its parameters cell), so the suggested
    command records under the same incident. `rules` None: runbook.yaml's `triage`, else the defaults.
    """
    if incident is None:
        incident = record.this_run().get("incident", "")
    alb = alb if alb is not None else _not_configured(ALB_COLUMNS, "no load balancer given")
    changes = changes if changes is not None else _not_configured(CHANGE_COLUMNS, "no changes given")
    gaps = tuple(record.missing(health, alb, changes))
    not_checked = tuple(str(f.attrs["not_configured"]) for f in (health, alb, changes)
                        if f.attrs.get("not_configured"))
    worst = None
    if not health.empty:
        scored = health.assign(
            unavailable_fraction=(1 - health.available / health.desired.clip(lower=1)).clip(0, 1)
        )
        worst = scored.sort_values(
            ["unavailable_fraction", "crashlooping", "restarts"], ascending=False
        ).iloc[0]
    metrics = {
        "unavailable_fraction": float(worst.unavailable_fraction) if worst is not None else 0.0,
        "crashlooping": float(worst.crashlooping) if worst is not None else 0.0,
        "restarts": float(worst.restarts) if worst is not None else 0.0,
        "error_rate_pct": float(alb.error_rate_pct.iloc[0]) if not alb.empty else 0.0,
        "p99_ms": float(alb.p99_ms.iloc[0]) if not alb.empty else 0.0,
    }
    severity, why = "P3", "no threshold of P0–P2 met"
    for level in ("P0", "P1", "P2"):
        met = [
            f"{k} {metrics[k]:g} ≥ {v:g}"
            for k, v in _rules(rules).get(level, {}).items()
            if k in metrics and metrics[k] >= v
        ]
        if met:
            severity, why = level, "; ".join(met)
            break
    if gaps:  # a severity from partial evidence says so: it may be worse than it looks
        why += f" (evidence missing: {'; '.join(g.split(':', 1)[0] for g in gaps)})"
    service = (
        f"{namespace}/{worst.deployment}"
        if worst is not None
        else (str(alb.load_balancer.iloc[0]) if not alb.empty else "unknown")
    )
    impact_parts = []
    if worst is not None:
        impact_parts.append(
            f"{int(worst.available)}/{int(worst.desired)} replicas available, "
            f"{int(worst.crashlooping)} crash-looping"
        )
    if not alb.empty:
        impact_parts.append(f"5xx {metrics['error_rate_pct']:g}%, p99 {metrics['p99_ms']:.0f} ms")
    latest = changes.iloc[0] if not changes.empty else None
    started = (
        pd.Timestamp(alb.worst_minute.iloc[0]).to_pydatetime()
        if not alb.empty
        else (latest.time if latest is not None else None)
    )
    changed = (
        f"{latest.what} ({latest.source}, {pd.Timestamp(latest.time):%Y-%m-%d %H:%M} UTC)"
        if latest is not None
        else "no change found in the window"
    )
    tail = f" --incident {shlex.quote(incident)}" if incident else ""
    if worst is not None and (metrics["crashlooping"] or worst.not_ready):
        runbook = "pod_crashloop"
        command = (
            f"runbook run pod_crashloop -p namespace {shlex.quote(namespace)} "
            f"-p deployment {shlex.quote(str(worst.deployment))}{tail}"
        )
    elif metrics["error_rate_pct"] or metrics["p99_ms"]:
        runbook = "api_latency_spike"
        command = f"runbook run api_latency_spike -p load_balancer {shlex.quote(service)}{tail}"
    else:
        runbook, command = "", "(no runbook matches: investigate the dashboard and the changes above)"
    return Assessment(
        service=service,
        impact="; ".join(impact_parts) or "not measured",
        started=started,
        changed=changed,
        severity=severity,
        why=why,
        next_runbook=runbook,
        command=command,
        gaps=gaps,
        not_checked=not_checked,
    )


def record_assessment(assessment: Assessment) -> Assessment:
    """Record the assessment as findings: the initial picture, the suggested severity, what next."""
    a = assessment
    sev = {"P0": "critical", "P1": "high", "P2": "medium"}.get(a.severity, "low")
    record.finding(
        f"initial assessment: {a.service} — {a.impact}",
        severity=sev,
        role="assessment",
        service=a.service,
        impact=a.impact,
        started=a.started,
        changed=a.changed,
    )
    record.finding(
        f"suggested severity {a.severity}: {a.why}",
        severity=sev,
        role="assessment",
        severity_level=a.severity,
        gaps=list(a.gaps),
    )
    record.finding(
        f"next runbook: {a.next_runbook or 'none'}", severity="info", role="assessment", command=a.command
    )
    for what in a.not_checked:  # the user's choice, not a gap: the gaps are recorded by the reads
        record.finding(f"not checked: {what}", severity="info", role="assessment")
    return a
