"""The job controller's half of the control loop (batch/v1 Jobs), and the TTL-after-finished controller.

Like the real one (pkg/controller/job, Kubernetes 1.32), for NonIndexed Jobs with
`restartPolicy: Never`: pods named `<job>-<5 chars>` carrying the Job's selector labels
(`batch.kubernetes.io/controller-uid`, `controller-uid`, `batch.kubernetes.io/job-name`, `job-name`)
and a controller ownerReference; up to `parallelism` pods at once until `completions` succeeded; each
terminated pod counted once into `status.succeeded` / `status.failed` (a pod matching a
podFailurePolicy `Ignore` rule is not counted). A failed pod is replaced after a back-off
(`backoff` seconds, doubling, capped at 6 minutes: the real controller starts at 10 s, the sandbox at
1 s by default so tests stay quick) until failures exceed `backoffLimit`.

Ending: `FailureTarget` then `Failed` with reason BackoffLimitExceeded, DeadlineExceeded
(`activeDeadlineSeconds` after `startTime`) or PodFailurePolicy (a FailJob rule on exit codes or on
pod conditions such as DisruptionTarget, which an eviction sets); `SuccessCriteriaMet` then
`Complete` (with `completionTime`). Active pods of an ending Job are deleted (their processes get
SIGTERM, then SIGKILL after terminationGracePeriodSeconds) and the terminal condition is written once
none is left running, as 1.31+ does. Events as the controller emits them: SuccessfulCreate,
SuccessfulDelete, FailedCreate (a missing ServiceAccount), Completed, BackoffLimitExceeded,
DeadlineExceeded, PodFailurePolicy. A finished Job with `ttlSecondsAfterFinished` is deleted with its
pods once that many seconds have passed. A suspended Job is not run; Indexed Jobs are refused (422).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from runbook_sandbox.k8s import events, kubelet
from runbook_sandbox.k8s.pods import delete_pod
from runbook_sandbox.k8s.store import Store, clone, iso, parse_time

COMPONENT = "job-controller"
MAX_BACKOFF = 360.0
TERMINAL = ("Succeeded", "Failed")


def _cond(kind: str, reason: str, message: str, at: dt.datetime) -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True",
        "lastProbeTime": iso(at),
        "lastTransitionTime": iso(at),
        "reason": reason,
        "message": message,
    }


def has_condition(job: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c["type"] == kind and c["status"] == "True":
            return dict(c)
    return None


def finished(job: dict[str, Any]) -> dict[str, Any] | None:
    return has_condition(job, "Complete") or has_condition(job, "Failed")


def _phase(pod: dict[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase", "Pending"))


def policy_match(job: dict[str, Any], pod: dict[str, Any]) -> tuple[str, str] | None:
    """(action, message) of the first podFailurePolicy rule the failed pod matches, else None."""
    rules = ((job["spec"].get("podFailurePolicy") or {}).get("rules")) or []
    meta = pod["metadata"]
    for index, rule in enumerate(rules):
        action = rule.get("action", "")
        on_codes = rule.get("onExitCodes")
        if on_codes:
            values = set(on_codes.get("values") or [])
            for cs in (pod.get("status") or {}).get("containerStatuses") or []:
                term = cs.get("state", {}).get("terminated")
                if not term or term["exitCode"] == 0:
                    continue
                if on_codes.get("containerName") and on_codes["containerName"] != cs["name"]:
                    continue
                hit = term["exitCode"] in values
                if (on_codes.get("operator") == "In") == hit:
                    return action, (
                        f"Container {cs['name']} for pod {meta['namespace']}/{meta['name']} failed with exit "
                        f"code {term['exitCode']} matching {action} rule at index {index}"
                    )
        for pattern in rule.get("onPodConditions") or []:
            for c in (pod.get("status") or {}).get("conditions") or []:
                if c["type"] == pattern.get("type") and c["status"] == pattern.get("status", "True"):
                    return action, (
                        f"Pod {meta['namespace']}/{meta['name']} has condition {c['type']} matching {action} "
                        f"rule at index {index}"
                    )
    return None


class JobController:
    """Mixin for Controller: needs `store`, `_items`, `_pod_from`, `counted`, `last_failure`, `backoff`."""

    store: Store
    counted: dict[str, set[str]]  # job uid -> uids of the pods already counted into its status
    last_failure: dict[str, dt.datetime]  # job uid -> when its last failed pod was counted
    backoff: float

    def _items(self, plural: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _pod_from(self, owner: dict[str, Any], *, kind: str, api_version: str) -> dict[str, Any]:
        raise NotImplementedError

    def _reconcile_jobs(self, pods_by_owner: dict[str, list[dict[str, Any]]], at: dt.datetime) -> None:
        for job in self._items("jobs"):
            pods = pods_by_owner.get(job["metadata"]["uid"], [])
            if finished(job):
                self._expire(job, pods, at)
            else:
                self._reconcile_job(job, pods, at)

    def _reconcile_job(self, job: dict[str, Any], pods: list[dict[str, Any]], at: dt.datetime) -> None:
        spec, uid = job["spec"], job["metadata"]["uid"]
        status = clone(job.get("status") or {})
        if spec.get("suspend"):
            return
        status.setdefault("startTime", iso(at))
        counted = self.counted.setdefault(uid, set())
        target = has_condition(job, "FailureTarget") or has_condition(job, "SuccessCriteriaMet")
        last_failure = self.last_failure.get(uid)
        for pod in sorted(pods, key=lambda p: p["metadata"]["creationTimestamp"]):
            puid = pod["metadata"]["uid"]
            if _phase(pod) not in TERMINAL or puid in counted:
                continue
            counted.add(puid)
            if _phase(pod) == "Succeeded":
                status["succeeded"] = status.get("succeeded", 0) + 1
                continue
            match = policy_match(job, pod)
            if match and match[0] == "Ignore":
                continue
            status["failed"] = status.get("failed", 0) + 1
            last_failure = at
            if match and match[0] == "FailJob" and target is None:
                target = _cond("FailureTarget", "PodFailurePolicy", match[1], at)
        live = [p for p in pods if _phase(p) not in TERMINAL]
        active = [p for p in live if not p["metadata"].get("deletionTimestamp")]
        terminating = [p for p in live if p["metadata"].get("deletionTimestamp")]
        if target is None:
            target = self._failure_target(job, status, at)
        if target is None and status.get("succeeded", 0) >= int(spec.get("completions", 1)):
            target = _cond(
                "SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods", at
            )
        if target is not None:
            for pod in active:
                delete_pod(self.store, pod, at=at)
                self._event(job, "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}", at)
            terminating += active
            active = []
        elif not terminating:
            active += self._create_pods(job, len(active), status, last_failure, at)
        status["active"] = len(active)
        status["ready"] = sum(1 for p in active if kubelet.is_ready(p))
        status["terminating"] = len(terminating)
        status["uncountedTerminatedPods"] = {}
        if last_failure is not None:
            self.last_failure[uid] = last_failure
        conditions = [c for c in status.get("conditions") or [] if c["type"] != (target or {}).get("type")]
        if target is not None:
            conditions.append(target)
            if not terminating:
                final = "Complete" if target["type"] == "SuccessCriteriaMet" else "Failed"
                conditions.append(dict(target, type=final, lastProbeTime=iso(at), lastTransitionTime=iso(at)))
                if final == "Complete":
                    status["completionTime"] = iso(at)
                    self._event(job, "Completed", "Job completed", at)
                else:
                    self._event(job, target["reason"], target["message"], at, warning=True)
        if conditions:
            status["conditions"] = conditions
        self._write_status(job, status)

    def _failure_target(
        self, job: dict[str, Any], status: dict[str, Any], at: dt.datetime
    ) -> dict[str, Any] | None:
        spec = job["spec"]
        if status.get("failed", 0) > int(spec.get("backoffLimit", 6)):
            return _cond(
                "FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit", at
            )
        deadline = spec.get("activeDeadlineSeconds")
        started = parse_time(status.get("startTime"))
        if (
            deadline is not None
            and started is not None
            and at >= started + dt.timedelta(seconds=int(deadline))
        ):
            return _cond(
                "FailureTarget", "DeadlineExceeded", "Job was active longer than specified deadline", at
            )
        return None

    def _create_pods(
        self,
        job: dict[str, Any],
        active: int,
        status: dict[str, Any],
        last_failure: dt.datetime | None,
        at: dt.datetime,
    ) -> list[dict[str, Any]]:
        spec = job["spec"]
        remaining = int(spec.get("completions", 1)) - status.get("succeeded", 0)
        want = min(int(spec.get("parallelism", 1)), remaining) - active
        failures = status.get("failed", 0)
        if want <= 0:
            return []
        if failures and last_failure is not None:
            delay = min(MAX_BACKOFF, self.backoff * 2 ** (failures - 1))
            if at < last_failure + dt.timedelta(seconds=delay):
                return []
        sa = job["spec"]["template"].get("spec", {}).get("serviceAccountName") or "default"
        ns = job["metadata"]["namespace"]
        if self.store.get("serviceaccounts", ns, sa) is None:
            name = f"{job['metadata']['name']}-"
            self._event(
                job,
                "FailedCreate",
                f'Error creating: pods "{name}" is forbidden: error looking up '
                f'service account {ns}/{sa}: serviceaccount "{sa}" not found',
                at,
                warning=True,
            )
            return []
        created = []
        for _ in range(want):
            template = self._pod_from(job, kind="Job", api_version="batch/v1")
            pod = self.store.create("pods", template, created=at)
            created.append(pod)
            self._event(job, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}", at)
        return created

    def _write_status(self, job: dict[str, Any], status: dict[str, Any]) -> None:
        status = {k: v for k, v in status.items() if v is not None}
        if status != (job.get("status") or {}):
            self.store.replace("jobs", dict(job, status=status))

    def _expire(self, job: dict[str, Any], pods: list[dict[str, Any]], at: dt.datetime) -> None:
        """The TTL-after-finished controller: delete the Job and its pods `ttl` seconds after it ended."""
        ttl = job["spec"].get("ttlSecondsAfterFinished")
        done = finished(job)
        if ttl is None or done is None:
            return
        ended = parse_time(done.get("lastTransitionTime")) or at
        if at < ended + dt.timedelta(seconds=int(ttl)):
            return
        for pod in pods:
            delete_pod(self.store, pod, at=at)
        meta = job["metadata"]
        self.store.delete("jobs", meta["namespace"], meta["name"])
        self.counted.pop(meta["uid"], None)
        self.last_failure.pop(meta["uid"], None)

    def _event(
        self, job: dict[str, Any], reason: str, message: str, at: dt.datetime, *, warning: bool = False
    ) -> None:
        events.record(
            self.store,
            job,
            reason=reason,
            type_="Warning" if warning else "Normal",
            message=message,
            component=COMPONENT,
            first=at,
            now=at,
        )
