"""What changed: one timeline of every change in a window, from every source the kit can reach.

Sources: Kubernetes rollouts of the namespace's deployments and ConfigMap/Secret changes (names and
times only), CodeDeploy deployments, CloudFormation stack events, CloudTrail write events (by user or
role; RDS parameter group changes are among them), and `git log --since` of the configured
infrastructure repositories (Terraform and the like: commit, author, files touched). Security
findings (GuardDuty, Security Hub) are read alongside but kept out of the change ranking: they are
context, not changes.

Every source is read in `collect_changes` on its own: one that cannot be read (AccessDenied, an
unreachable cluster, a configured path that is not a git repository) becomes a recorded gap
(`record.gap`: what, why, the permission or setting that fixes it; the run completes with gaps) and
the timeline is built from the rest. One the user did not configure (no CodeDeploy application, no
repository, no namespace) is not a gap: an info finding says it was not read. The symptom (error
rate and p99 of the service's load balancer) is read the same way; the changes nearest its start are named by
`diagnose_cause` (a burst of changes, the most specific release first), the rest stay on the timeline.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import os
import subprocess
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from runbook_kit import record
from runbook_kit.errors import NotConfigured
from runbook_kit.investigate.changes import COLUMNS, change_events

__all__ = [
    "ChangeSources",
    "Symptom",
    "change_timeline",
    "collect_changes",
    "diagnose_security",
    "diagnose_what_changed",
    "git_changes",
    "plot_what_changed",
    "symptom_metrics",
]

GIT_COLUMNS = ["time", "repo", "commit", "author", "message", "files"]
_SEP, _END = "\x1f", "\x1e"


def git_changes(*, repos: Sequence[str], minutes: float = 240, git: str = "git") -> pd.DataFrame:
    """`git log --since` of each repository: time, repo, commit, author, message, files touched."""
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)).isoformat()
    rows = []
    for repo in repos:
        try:
            done = subprocess.run(
                [
                    git,
                    "-C",
                    repo,
                    "log",
                    f"--since={since}",
                    f"--format={_END}%H{_SEP}%an <%ae>{_SEP}%aI{_SEP}%s",
                    "--name-only",
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NotConfigured("git", f"git log {repo}", f"{type(exc).__name__}: {exc}") from exc
        if done.returncode != 0:  # not a clone, or git missing: the setting points at the wrong place
            raise NotConfigured(
                "git",
                f"git log {repo}",
                done.stderr.strip().splitlines()[-1] if done.stderr else f"exit {done.returncode}",
            )
        for chunk in done.stdout.split(_END)[1:]:
            head, _, body = chunk.partition("\n")
            commit, author, when, message = head.split(_SEP, 3)
            files = [line for line in body.splitlines() if line.strip()]
            rows.append(
                {
                    "time": when,
                    "repo": os.path.basename(repo.rstrip("/")) or repo,
                    "commit": commit[:12],
                    "author": author,
                    "message": message,
                    "files": ", ".join(files),
                }
            )
    frame = pd.DataFrame(rows, columns=GIT_COLUMNS)
    frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
    return frame.sort_values("time", ascending=False, kind="stable").reset_index(drop=True)


@dataclasses.dataclass(frozen=True)
class ChangeSources:
    """What each source returned (empty frames for gaps, marked `record.missing`), the gaps (source ->
    why, recorded as gap entries) and the sources not configured (source -> why; info, not gaps)."""

    minutes: float
    namespace: str
    frames: dict[str, pd.DataFrame]
    gaps: dict[str, str]
    not_configured: dict[str, str] = dataclasses.field(default_factory=dict)

    def _repr_html_(self) -> str:
        read = ", ".join(
            f"{name} ({len(frame)})"
            for name, frame in self.frames.items()
            if name not in self.gaps and name not in self.not_configured
        )
        gaps = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in self.gaps.items())
        skipped = ", ".join(f"{k} ({v})" for k, v in self.not_configured.items())
        return (
            f"<b>Read</b>: {html.escape(read) or 'nothing'}"
            + (f"<br><b>Not configured</b>: {html.escape(skipped)}" if skipped else "")
            + (f"<br><b>Gaps</b><ul>{gaps}</ul>" if gaps else "")
        )


_FIXES = {
    "kubernetes rollouts": "RBAC: list deployments and replicasets in the namespace",
    "configmaps and secrets": "RBAC: list configmaps and secrets (metadata only) in the namespace",
    "codedeploy": "codedeploy:ListDeploymentGroups, ListDeployments, BatchGetDeployments",
    "cloudtrail": "cloudtrail:LookupEvents",
    "cloudformation": "cloudformation:DescribeStacks, DescribeStackEvents",
    "infrastructure repositories": "set infra_repos or $RUNBOOK_INFRA_REPOS to local git clones",
    "guardduty": "guardduty:ListDetectors, ListFindings, GetFindings",
    "securityhub": "securityhub:GetFindings",
}


def _read(sources: ChangeSources, name: str, why_not: str, read: Callable[[], pd.DataFrame]) -> None:
    """Read one source: not configured is an info finding; not readable a recorded gap; never an abort."""
    if why_not:
        sources.not_configured[name] = why_not
        sources.frames[name] = pd.DataFrame()
        record.finding(f"{name} not read: {why_not}", severity="info", source=name, role="not-configured")
        return
    with record.degrade(name, fix=_FIXES.get(name, "")) as step:
        frame = read()
    if step.gap:
        frame = pd.DataFrame()
        frame.attrs["gap"] = step.gap
    elif record.missing(frame):  # a read step of the backend recorded the gap itself
        step.gap = dict(frame.attrs["gap"])
    if step.gap:
        sources.gaps[name] = step.gap["why"]
    sources.frames[name] = frame


def _rollouts(namespace: str, deployment: str, minutes: float, context: str) -> pd.DataFrame:
    from runbook_kit.k8s import _api
    from runbook_kit.k8s.rollout import rollout_history

    names = (
        [deployment]
        if deployment
        else [
            d["metadata"]["name"]
            for d in _api.list_items(
                _api.apps(context).list_namespaced_deployment,
                namespace,
                op=f"list deployments in {namespace}",
            )
        ]
    )
    parts = [
        change_events(
            rollouts=rollout_history(namespace=namespace, deployment=name, context=context),
            namespace=namespace,
            deployment=name,
        )
        for name in names
    ]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)
    since = pd.Timestamp(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes))
    return frame[frame["time"] >= since].reset_index(drop=True)


def collect_changes(
    *,
    namespace: str,
    deployment: str = "",
    codedeploy_application: str = "",
    stacks: str = "",
    infra_repos: str = "",
    minutes: float = 240,
    context: str = "",
) -> ChangeSources:
    """Read every change source for the namespace over the last `minutes`; gaps for the rest."""
    from runbook_kit.aws import cloudformation, cloudtrail, codedeploy, security
    from runbook_kit.k8s.config_changes import config_changes

    repos = [
        r.strip() for r in (infra_repos or os.environ.get("RUNBOOK_INFRA_REPOS", "")).split(",") if r.strip()
    ]
    sources = ChangeSources(minutes=minutes, namespace=namespace, frames={}, gaps={})
    no_namespace = "" if namespace else "not configured: no namespace"
    _read(
        sources,
        "kubernetes rollouts",
        no_namespace,
        lambda: _rollouts(namespace, deployment, minutes, context),
    )
    _read(
        sources,
        "configmaps and secrets",
        no_namespace,
        lambda: config_changes(namespace=namespace, minutes=minutes, context=context),
    )
    _read(
        sources,
        "codedeploy",
        "" if codedeploy_application else "not configured: no codedeploy_application",
        lambda: codedeploy.deployments(application=codedeploy_application, minutes=minutes),
    )
    _read(sources, "cloudtrail", "", lambda: cloudtrail.lookup_events(minutes=minutes, read_only=False))
    _read(
        sources,
        "cloudformation",
        "",
        lambda: cloudformation.stack_events(
            stacks=[s.strip() for s in stacks.split(",") if s.strip()], minutes=minutes
        ),
    )
    _read(
        sources,
        "infrastructure repositories",
        "" if repos else "not configured: set infra_repos or $RUNBOOK_INFRA_REPOS",
        lambda: git_changes(repos=repos, minutes=minutes),
    )
    _read(sources, "guardduty", "", lambda: security.guardduty_findings())
    _read(sources, "securityhub", "", lambda: security.securityhub_findings())
    return sources


def _extra_rows(frames: dict[str, pd.DataFrame]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    config = frames.get("configmaps and secrets")
    if config is not None and not config.empty:
        rows += [
            {
                "time": c["time"],
                "source": "kubernetes",
                "kind": "config",
                "change": f"{c['kind']} {c['namespace']}/{c['name']} changed ({c['operation'] or 'write'} by "
                f"{c['manager'] or 'unknown'}; values not read)",
                "who": c["manager"],
                "target": f"{c['kind'].lower()}/{c['name']} in {c['namespace']}",
                "ref": c["name"],
            }
            for _, c in config.iterrows()
        ]
    stacks = frames.get("cloudformation")
    if stacks is not None and not stacks.empty:
        done = stacks[
            (stacks["resource"] == stacks["stack"]) & stacks["status"].str.endswith(("COMPLETE", "FAILED"))
        ]
        rows += [
            {
                "time": s["time"],
                "source": "cloudformation",
                "kind": "stack",
                "change": f"stack {s['stack']} {s['status']}{f': {s.reason}' if s['reason'] else ''}",
                "who": "",
                "target": f"stack/{s['stack']}",
                "ref": s["stack"],
            }
            for _, s in done.iterrows()
        ]
    git = frames.get("infrastructure repositories")
    if git is not None and not git.empty:
        rows += [
            {
                "time": g["time"],
                "source": "git",
                "kind": "commit",
                "change": f"{g['repo']}@{g['commit'][:8]}: {g['message']} ({g['files']})",
                "who": g["author"],
                "target": g["repo"],
                "ref": g["commit"],
            }
            for _, g in git.iterrows()
        ]
    return rows


def change_timeline(sources: ChangeSources) -> pd.DataFrame:
    """Every change of every source in one frame, newest first (pure over the sources' frames).

    Change sources that could not be read mark the timeline missing (`record.missing(timeline)`)."""
    f = sources.frames
    base = change_events(deploys=f.get("codedeploy"), trail=f.get("cloudtrail"))
    rollouts = f.get("kubernetes rollouts")
    extra = pd.DataFrame(_extra_rows(f), columns=COLUMNS)
    parts = [p for p in (base, rollouts, extra) if p is not None and not p.empty]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    since = pd.Timestamp(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=sources.minutes))
    frame = frame[frame["time"] >= since]
    for column in ("revision", "previous_revision"):
        frame[column] = frame[column].astype("Int64")
    frame = frame.sort_values("time", ascending=False, kind="stable").reset_index(drop=True)
    unread = {k: v for k, v in sources.gaps.items() if k not in ("guardduty", "securityhub")}
    if unread:  # already recorded as gaps; the timeline carries them for the diagnosis
        frame.attrs["gap"] = {
            "what": "changes from " + ", ".join(unread),
            "why": "; ".join(f"{k}: {v}" for k, v in unread.items()),
            "fix": "; ".join(_FIXES.get(k, "") for k in unread),
        }
    return frame


@dataclasses.dataclass(frozen=True)
class Symptom:
    alb: pd.DataFrame  # per minute: avg_ms, p99_ms, requests, target_5xx, error_rate_pct (empty: not read)
    spike: Any  # rk.aws.Spike or None
    gap: str = ""  # why it was not read: a recorded gap (alb marked `record.missing`) or not configured

    def _repr_html_(self) -> str:
        if self.gap:
            return f"<b>Symptom not read</b>: {html.escape(self.gap)}"
        spike = self.spike
        if spike is None or not spike.detected:
            return "<b>No sustained rise of p99 in the window</b>"
        return (
            f"<b>p99 rose at {spike.start:%H:%M} UTC</b>: {spike.baseline:.0f} ms → {spike.level:.0f} ms "
            f"(×{spike.magnitude:.1f})"
        )


def symptom_metrics(*, load_balancer: str, minutes: float = 240) -> Symptom:
    """The service's error rate and p99 from its load balancer, and when they rose (a gap if unreadable)."""
    from runbook_kit.aws.alb import alb_metrics, diagnose_spike

    if not load_balancer:
        why = "not configured: no load_balancer"
        record.finding(f"symptom not read: {why}", severity="info", source="symptom", role="not-configured")
        return Symptom(alb=pd.DataFrame(), spike=None, gap=why)
    with record.degrade(
        f"error rate and p99 of load balancer {load_balancer}",
        fix="cloudwatch:GetMetricData on AWS/ApplicationELB",
    ) as step:
        alb = alb_metrics(load_balancer=load_balancer, minutes=minutes)
        return Symptom(alb=alb, spike=diagnose_spike(alb, load_balancer=load_balancer))
    missing = pd.DataFrame()
    missing.attrs["gap"] = step.gap
    return Symptom(alb=missing, spike=None, gap=str((step.gap or {}).get("why", "")))


def diagnose_what_changed(*, timeline: pd.DataFrame, symptom: Symptom, tolerance_minutes: float = 60) -> Any:
    """Name the changes nearest the symptom's start (or the latest ones when there is no symptom)."""
    from runbook_kit.investigate.correlate import diagnose_cause

    unread = record.missing(timeline)  # change sources that were gaps: the cause may be among them
    record.finding(
        f"{len(timeline)} change(s) in the window"
        + (f" (incomplete: {timeline.attrs['gap']['what']} could not be read)" if unread else ""),
        severity="info",
        by_source=timeline["source"].value_counts().to_dict() if len(timeline) else {},
        missing=unread,
    )
    if symptom.spike is not None and symptom.spike.detected:
        return diagnose_cause(spike=symptom.spike, changes=timeline, tolerance_minutes=tolerance_minutes)
    latest = timeline.head(3)
    why = f" (symptom not read: {symptom.gap})" if symptom.gap else ""
    record.finding(
        f"No symptom start to correlate with{why}: the latest changes are listed",
        severity="medium",
        latest=[f"{r['time']:%H:%M} {r['source']}: {r['change']}" for _, r in latest.iterrows()],
        missing=record.missing(symptom.alb, timeline),
    )
    return latest


def plot_what_changed(*, symptom: Symptom, timeline: pd.DataFrame) -> Any:
    """Error rate and p99 with every change marked (the changes alone when the symptom is a gap)."""
    from runbook_kit.aws.alb import plot_latency

    if symptom.alb.empty:
        return timeline[["time", "source", "kind", "change"]]
    return plot_latency(
        symptom.alb,
        spike=symptom.spike if symptom.spike and symptom.spike.detected else None,
        changes=timeline,
        title="error rate and p99 against every change",
    )


def diagnose_security(sources: ChangeSources, *, resources: Sequence[str] = ()) -> pd.DataFrame:
    """GuardDuty and Security Hub findings, most severe first; recorded as context, never as the cause.

    `resources` (instance ids, ARNs of the resources involved) are marked in the `involved` column."""
    from runbook_kit.aws.security import security_findings

    frame = security_findings(
        guardduty=sources.frames.get("guardduty"),
        securityhub=sources.frames.get("securityhub"),
        resources=resources,
    )
    if frame.empty:
        record.finding("No active GuardDuty or Security Hub finding", severity="info")
        return frame
    top = frame.iloc[0]
    record.finding(
        f"{len(frame)} security finding(s); most severe: {top['label']} {top['title']} "
        f"({top['source']}) — context, not ranked among the changes",
        severity="info",
        findings=[f"{r['label']} {r['source']}: {r['title']} [{r['resource']}]" for _, r in frame.iterrows()],
        about_the_resources_involved=int(frame["involved"].sum()),
    )
    return frame
