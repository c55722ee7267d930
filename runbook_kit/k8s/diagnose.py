"""Diagnose a crash loop: classify each crashing container, relate it to the latest rollout, recommend.

This is the step the on-call engineer otherwise does by hand (get pods → describe → logs
--previous → get deploy -o yaml → rollout history) and guesses from. It records findings that name
the crash-looping pods, the reason, the memory limit and the rollout, and recommends a mitigation:
rollback when the crashes come from the newest revision and an older one exists (known good, fastest
and fully reversible), otherwise a memory raise (for OOM kills) by an explained amount.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pandas as pd

from runbook_kit import record
from runbook_kit.k8s import _api
from runbook_kit.k8s.classify import OOM, ContainerCrash, classify_container
from runbook_kit.k8s.logs import memory_peak_from_logs
from runbook_kit.k8s.quantity import MemoryRaise, assess_memory_limit, format_memory, memory_bytes
from runbook_kit.k8s.rollout import revision, template_diff
from runbook_kit.k8s.snapshot import WorkloadSnapshot, workload_snapshot

__all__ = ["CrashloopDiagnosis", "assess_crashloop", "assess_mitigation", "diagnose_crashloop"]

LOG_LINES_KEPT = 5  # last lines of each previous log the record keeps as evidence


@dataclasses.dataclass(frozen=True)
class CrashloopDiagnosis:
    namespace: str
    deployment: str
    crashes: list[ContainerCrash]
    cause: str  # the dominant category, "" when nothing crash-loops
    recommendation: str  # rollback | raise_memory | none
    reason: str
    rollout: dict[str, Any] | None = None  # revision, previous_revision, at, changes, first_crash
    memory: MemoryRaise | None = None
    container: str = ""
    evidence: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # one row per crash
    usage: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # metrics rows used
    observed_peak: float | None = None  # bytes: the largest of logged peaks and metrics usage
    previous_limit: float | None = None  # bytes: the previous revision's limit of `container`
    taken_at: dt.datetime | None = None  # when the snapshot reasoned on was taken
    gaps: tuple[str, ...] = ()  # what the snapshot could not read

    @property
    def pods(self) -> list[str]:
        return sorted({c.pod for c in self.crashes})

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([dataclasses.asdict(c) for c in self.crashes])

    def _repr_html_(self) -> str:
        esc = html.escape
        head = (
            f"<b>Diagnosis</b>: {esc(self.cause or 'no crash loop')} — recommended: "
            f"<b>{esc(self.recommendation)}</b><br>{esc(self.reason)}"
        )
        if self.memory:
            head += f"<br>memory: {esc(self.memory.explanation)}"
        return head + (self.frame().to_html(index=False) if self.crashes else "")


def assess_mitigation(
    *, cause: str, from_latest_revision: bool, has_previous: bool, memory: MemoryRaise | None
) -> tuple[str, str]:
    """(mitigation, why) from the diagnosis facts (pure)."""
    if not cause:
        return "none", "nothing is crash-looping"
    if from_latest_revision and has_previous:
        return "rollback", (
            "the crashing pods run the newest revision and the previous one ran; rolling "
            "back restores a known-good template fastest and is itself reversible"
        )
    if cause == OOM and memory is not None:
        return "raise_memory", f"raise the memory limit to {memory.new_quantity}: {memory.explanation}"
    return "none", f"{cause} not introduced by a rollout: fix the cause (see findings) rather than roll back"


def _limit_of(template: Mapping[str, Any], container: str) -> float | None:
    for c in (template.get("spec") or {}).get("containers") or []:
        if c.get("name") == container:
            return memory_bytes(((c.get("resources") or {}).get("limits") or {}).get("memory"))
    return None


def _last_lines(text: str, n: int = LOG_LINES_KEPT) -> list[str]:
    return [line for line in text.splitlines() if line.strip()][-n:]


def _evidence_row(
    snap: WorkloadSnapshot, pod: Mapping[str, Any], crash: ContainerCrash, revisions: Mapping[str, int]
) -> dict[str, Any]:
    """The facts one crash's classification used, as a row the record keeps."""
    rs = (_api.owner(dict(pod), "ReplicaSet") or {}).get("name", "")
    return {
        "pod": crash.pod,
        "container": crash.container,
        "reason": crash.category,
        "waiting_reason": crash.waiting_reason,
        "exit_code": crash.exit_code,
        "restarts": crash.restarts,
        "memory_limit": crash.memory_limit,
        "replicaset": rs,
        "revision": revisions.get(rs),
        "detail": crash.detail,
        "events": [
            f"{e.get('reason', '')}: {e.get('message', '')}"
            for e in snap.events
            if (e.get("involvedObject") or {}).get("name") == crash.pod
        ][-3:],
        "last_log_lines": _last_lines(snap.logs.get((crash.pod, crash.container), "")),
    }


def assess_crashloop(snap: WorkloadSnapshot) -> CrashloopDiagnosis:
    """Classify every crash-looping container of a snapshot and relate the crashes to its latest
    rollout (pure: no API call, nothing recorded)."""
    namespace, deployment = snap.namespace, snap.deployment
    crashing = snap.crashing
    if not crashing:
        return CrashloopDiagnosis(
            namespace, deployment, [], "", "none", "nothing is crash-looping", taken_at=snap.taken_at
        )
    revisions = {rs["metadata"]["name"]: revision(dict(rs)) for rs in snap.replicasets}
    crashes: list[ContainerCrash] = []
    evidence: list[dict[str, Any]] = []
    peaks: list[float] = []
    for pod, cs in crashing:
        name = pod["metadata"]["name"]
        events = [e for e in snap.events if (e.get("involvedObject") or {}).get("name") == name]
        log_text = snap.logs.get((name, cs.get("name", "")), "")
        peak = memory_peak_from_logs(log_text)
        if peak:
            peaks.append(peak)
        crash = classify_container(pod=pod, status=cs, events=events, log_text=log_text)
        crashes.append(crash)
        evidence.append(_evidence_row(snap, pod, crash, revisions))

    cause, _ = Counter(c.category for c in crashes).most_common(1)[0]
    container = Counter(c.container for c in crashes if c.category == cause).most_common(1)[0][0]
    crash_pods = {c.pod for c in crashes}
    usage_rows = [
        {"pod": p, "container": c, "memory": format_memory(mem)}
        for (p, c), (_, mem) in (snap.usage or {}).items()
        if p in crash_pods and c == container and mem
    ]
    peaks += [
        mem for (p, c), (_, mem) in (snap.usage or {}).items() if p in crash_pods and c == container and mem
    ]
    observed_peak = max(peaks) if peaks else None

    rollout: dict[str, Any] | None = None
    from_latest = has_previous = False
    current_limit = memory_bytes(
        next((c.memory_limit for c in crashes if c.container == container), "") or None
    )
    previous_limit = None
    if deployment and snap.replicasets:
        latest = snap.replicasets[-1]
        previous = snap.replicasets[-2] if len(snap.replicasets) > 1 else None
        has_previous = previous is not None
        crash_rs = {(_api.owner(dict(p), "ReplicaSet") or {}).get("name") for p, _ in crashing}
        from_latest = latest["metadata"]["name"] in crash_rs
        first_crash = min(p["metadata"].get("creationTimestamp", "") for p, _ in crashing)
        at = latest["metadata"].get("creationTimestamp")
        changes = template_diff(previous["spec"]["template"], latest["spec"]["template"]) if previous else []
        if previous:
            previous_limit = _limit_of(previous["spec"]["template"], container)
        minutes = None
        crash_t, rollout_t = _api.parse_time(first_crash), _api.parse_time(at)
        if crash_t and rollout_t:
            minutes = round((crash_t - rollout_t).total_seconds() / 60, 1)
        rollout = {
            "revision": revision(dict(latest)),
            "replicaset": latest["metadata"]["name"],
            "at": at,
            "previous_revision": revision(dict(previous)) if previous else None,
            "changes": [f"{c['container']} {c['field']}: {c['old']} → {c['new']}" for c in changes],
            "first_crash_pod_created": first_crash,
            "minutes_after_rollout": minutes,
            "crashing_pods_on_latest_revision": from_latest,
        }

    memory = None
    if cause == OOM and (current_limit or observed_peak or previous_limit):
        memory = assess_memory_limit(
            current=current_limit, observed_peak=observed_peak, previous_limit=previous_limit
        )
    mitigation, why = assess_mitigation(
        cause=cause, from_latest_revision=from_latest, has_previous=has_previous, memory=memory
    )
    return CrashloopDiagnosis(
        namespace, deployment, crashes, cause, mitigation, why, rollout, memory, container,
        evidence=evidence, usage=usage_rows, observed_peak=observed_peak, previous_limit=previous_limit,
        taken_at=snap.taken_at, gaps=snap.gaps,
    )


def diagnose_crashloop(
    snap: WorkloadSnapshot | None = None,
    /,
    *,
    namespace: str | None = None,
    deployment: str = "",
    selector: str = "",
    context: str = "",
    core: Any | None = None,
    apps: Any | None = None,
    custom: Any | None = None,
) -> CrashloopDiagnosis:
    """Classify every crash-looping container, relate the crashes to the latest rollout, recommend,
    and record the findings with the evidence each used.

    Reasons on `snap` (a `workload_snapshot`) and makes no API call; called with keywords instead,
    it takes the snapshot itself first.
    """
    if snap is None:
        snap = workload_snapshot(
            namespace=namespace,  # type: ignore[arg-type]  # None is refused there, readably
            deployment=deployment, selector=selector, context=context, core=core, apps=apps, custom=custom,
        )
    diagnosis = assess_crashloop(snap)
    if not diagnosis.crashes:
        record.finding(
            f"No crash-looping pods in {snap.where} ({len(snap.pods)} pods checked)",
            severity="info",
            namespace=snap.namespace,
            deployment=snap.deployment,
            pods_checked=len(snap.pods),
            snapshot_taken_at=snap.taken_at.isoformat(),
            gaps=list(snap.gaps),
        )
        return diagnosis
    _record(diagnosis, where=snap.where)
    return diagnosis


def _record(d: CrashloopDiagnosis, *, where: str) -> None:
    limit = next((c.memory_limit for c in d.crashes if c.container == d.container), "")
    rollout_text = ""
    if d.rollout and d.rollout["crashing_pods_on_latest_revision"]:
        change = "; ".join(d.rollout["changes"][:3]) or "no template change found"
        rollout_text = (
            f"; started after rollout to revision {d.rollout['revision']} at {d.rollout['at']} ({change})"
        )
    title = (
        f"{len(d.pods)} pod(s) of {where} crash-looping: {d.cause} (container {d.container}, "
        f"memory limit {limit or 'none'}){rollout_text}"
    )
    taken_at = d.taken_at.isoformat() if d.taken_at else None
    record.finding(
        title,
        severity="high",
        namespace=d.namespace,
        deployment=d.deployment,
        reason=d.cause,
        pods=d.pods,
        container=d.container,
        limit=limit,
        observed_peak=format_memory(d.observed_peak) if d.observed_peak else "unknown",
        exit_codes=sorted({c.exit_code for c in d.crashes if c.exit_code is not None}),
        restarts=sum(c.restarts for c in d.crashes),
        rollout=d.rollout,
        evidence=d.evidence[:10],
        usage=d.usage[:10],
        snapshot_taken_at=taken_at,
        gaps=list(d.gaps),
    )
    if d.rollout:
        record.finding(
            f"Latest rollout of {d.namespace}/{d.deployment}: revision {d.rollout['revision']} at "
            f"{d.rollout['at']} (previous {d.rollout['previous_revision']}); first crashing pod created "
            f"{d.rollout['minutes_after_rollout']} min after it",
            severity="medium" if d.rollout["crashing_pods_on_latest_revision"] else "info",
            **d.rollout,
            evidence=[
                {k: row[k] for k in ("pod", "replicaset", "revision")}
                for row in d.evidence[:10]
            ],
            snapshot_taken_at=taken_at,
        )
    record.finding(
        f"Recommended mitigation: {d.recommendation} — {d.reason}",
        severity="info",
        recommendation=d.recommendation,
        memory_raise=d.memory.explanation if d.memory else None,
        new_memory_limit=d.memory.new_quantity if d.memory else None,
        previous_limit=format_memory(d.previous_limit) if d.previous_limit else None,
        evidence={
            "cause": d.cause,
            "limit": limit,
            "observed_peak": format_memory(d.observed_peak) if d.observed_peak else None,
            "revision": (d.rollout or {}).get("revision"),
            "previous_revision": (d.rollout or {}).get("previous_revision"),
            "crashing_pods_on_latest_revision": (d.rollout or {}).get("crashing_pods_on_latest_revision"),
        },
    )
