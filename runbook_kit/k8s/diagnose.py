"""Diagnose a crash loop: classify each crashing container, relate it to the latest rollout, recommend.

This is the step the on-call engineer otherwise does by hand (get pods → describe → logs
--previous → get deploy -o yaml → rollout history) and guesses from. It records findings that name
the crash-looping pods, the reason, the memory limit and the rollout, and recommends a mitigation:
rollback when the crashes come from the newest revision and an older one exists (known good, fastest
and fully reversible), otherwise a memory raise (for OOM kills) by an explained amount.
"""

from __future__ import annotations

import dataclasses
import html
from collections import Counter
from typing import Any

import pandas as pd

from runbook_kit import record
from runbook_kit.errors import BackendError
from runbook_kit.k8s import _api
from runbook_kit.k8s.classify import OOM, ContainerCrash, classify_container, crashing_containers
from runbook_kit.k8s.logs import memory_peak_from_logs, read_log
from runbook_kit.k8s.quantity import MemoryRaise, assess_memory_limit, format_memory, memory_bytes
from runbook_kit.k8s.resources import pod_metrics
from runbook_kit.k8s.rollout import replicasets_of, revision, template_diff
from runbook_kit.k8s.status import select_pods

__all__ = ["CrashloopDiagnosis", "assess_mitigation", "diagnose_crashloop"]

MAX_PODS_READ = 5  # events and previous logs are read for at most this many crashing pods


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


def _deployment_of(pods: list[dict[str, Any]], namespace: str, context: str, apps: Any) -> str:
    for pod in pods:
        ref = _api.owner(pod, "ReplicaSet")
        if ref:
            rs = _api.read(
                _api.apps(context, apps).read_namespaced_replica_set,
                ref["name"],
                namespace,
                op=f"read replicaset {namespace}/{ref['name']}",
            )
            dep = _api.owner(rs, "Deployment")
            if dep:
                return str(dep["name"])
    return ""


def _limit_of(template: dict[str, Any], container: str) -> float | None:
    for c in (template.get("spec") or {}).get("containers") or []:
        if c.get("name") == container:
            return memory_bytes(((c.get("resources") or {}).get("limits") or {}).get("memory"))
    return None


def diagnose_crashloop(
    *,
    namespace: str,
    deployment: str = "",
    selector: str = "",
    context: str = "",
    core: Any | None = None,
    apps: Any | None = None,
    custom: Any | None = None,
) -> CrashloopDiagnosis:
    """Classify every crash-looping container, relate the crashes to the latest rollout, recommend."""
    label_selector, pods = select_pods(
        namespace=namespace, deployment=deployment, selector=selector, context=context, core=core, apps=apps
    )
    crashing = [(p, cs) for p in pods for cs in crashing_containers(p)]
    where = f"{namespace}/{deployment}" if deployment else f"{namespace} ({label_selector or 'all pods'})"
    if not crashing:
        record.finding(
            f"No crash-looping pods in {where} ({len(pods)} pods checked)",
            severity="info",
            namespace=namespace,
            deployment=deployment,
            pods_checked=len(pods),
        )
        return CrashloopDiagnosis(namespace, deployment, [], "", "none", "nothing is crash-looping")

    api = _api.core(context, core)
    crashes: list[ContainerCrash] = []
    peaks: list[float] = []
    for i, (pod, cs) in enumerate(crashing):
        name = pod["metadata"]["name"]
        events: list[dict[str, Any]] = []
        log_text = ""
        if i < MAX_PODS_READ:
            events = _api.list_items(
                api.list_namespaced_event,
                namespace,
                op=f"list events of {name}",
                field_selector=f"involvedObject.name={name}",
            )
            if int(cs.get("restartCount") or 0) > 0:
                try:
                    log_text = read_log(
                        namespace=namespace,
                        pod=name,
                        container=cs.get("name", ""),
                        previous=True,
                        tail=200,
                        context=context,
                        core=core,
                    )
                except BackendError:
                    log_text = ""  # no previous container (yet): classify on status and events
                peak = memory_peak_from_logs(log_text)
                if peak:
                    peaks.append(peak)
        crashes.append(classify_container(pod=pod, status=cs, events=events, log_text=log_text))

    cause, _ = Counter(c.category for c in crashes).most_common(1)[0]
    container = Counter(c.container for c in crashes if c.category == cause).most_common(1)[0][0]
    usage = pod_metrics(namespace=namespace, selector=label_selector, context=context, custom=custom)
    crash_pods = {c.pod for c in crashes}
    if usage:
        peaks += [
            mem
            for (pod_name, c_name), (_, mem) in usage.items()
            if pod_name in crash_pods and c_name == container and mem
        ]
    observed_peak = max(peaks) if peaks else None

    deployment = deployment or _deployment_of([p for p, _ in crashing], namespace, context, apps)
    rollout: dict[str, Any] | None = None
    from_latest = has_previous = False
    current_limit = memory_bytes(
        next((c.memory_limit for c in crashes if c.container == container), "") or None
    )
    previous_limit = None
    if deployment:
        rss = replicasets_of(namespace=namespace, deployment=deployment, context=context, apps=apps)
        if rss:
            latest = rss[-1]
            previous = rss[-2] if len(rss) > 1 else None
            has_previous = previous is not None
            crash_rs = {(_api.owner(p, "ReplicaSet") or {}).get("name") for p, _ in crashing}
            from_latest = latest["metadata"]["name"] in crash_rs
            first_crash = min(p["metadata"].get("creationTimestamp", "") for p, _ in crashing)
            at = latest["metadata"].get("creationTimestamp")
            changes = (
                template_diff(previous["spec"]["template"], latest["spec"]["template"]) if previous else []
            )
            if previous:
                previous_limit = _limit_of(previous["spec"]["template"], container)
            minutes = None
            crash_t, rollout_t = _api.parse_time(first_crash), _api.parse_time(at)
            if crash_t and rollout_t:
                minutes = round((crash_t - rollout_t).total_seconds() / 60, 1)
            rollout = {
                "revision": revision(latest),
                "replicaset": latest["metadata"]["name"],
                "at": at,
                "previous_revision": revision(previous) if previous else None,
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
    diagnosis = CrashloopDiagnosis(
        namespace, deployment, crashes, cause, mitigation, why, rollout, memory, container
    )
    _record(diagnosis, where=where, observed_peak=observed_peak, previous_limit=previous_limit)
    return diagnosis


def _record(
    d: CrashloopDiagnosis, *, where: str, observed_peak: float | None, previous_limit: float | None
) -> None:
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
    record.finding(
        title,
        severity="high",
        namespace=d.namespace,
        deployment=d.deployment,
        reason=d.cause,
        pods=d.pods,
        container=d.container,
        limit=limit,
        observed_peak=format_memory(observed_peak) if observed_peak else "unknown",
        exit_codes=sorted({c.exit_code for c in d.crashes if c.exit_code is not None}),
        restarts=sum(c.restarts for c in d.crashes),
        rollout=d.rollout,
        evidence=[f"{c.pod}/{c.container}: {c.detail}" for c in d.crashes[:10]],
    )
    if d.rollout:
        record.finding(
            f"Latest rollout of {d.namespace}/{d.deployment}: revision {d.rollout['revision']} at "
            f"{d.rollout['at']} (previous {d.rollout['previous_revision']}); first crashing pod created "
            f"{d.rollout['minutes_after_rollout']} min after it",
            severity="medium" if d.rollout["crashing_pods_on_latest_revision"] else "info",
            **d.rollout,
        )
    record.finding(
        f"Recommended mitigation: {d.recommendation} — {d.reason}",
        severity="info",
        recommendation=d.recommendation,
        memory_raise=d.memory.explanation if d.memory else None,
        new_memory_limit=d.memory.new_quantity if d.memory else None,
        previous_limit=format_memory(previous_limit) if previous_limit else None,
    )
