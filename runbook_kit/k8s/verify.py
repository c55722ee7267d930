"""Verify a mitigation: the rollout is available and the restarts have stopped, within a timeout.

"Applied" is not "recovered". After a rollback or a memory raise the on-call engineer needs to know
that the deployment converged (observedGeneration current, updated == ready == available ==
replicas, no old pods left) and that the new pods stay up: their restart counts do not move over a
quiet period. The result is recorded as a finding either way — success, or "not recovered within
N s" with what is still wrong — so the record says whether the fix worked.
"""

from __future__ import annotations

import dataclasses
import html
import time
from typing import Any

from runbook_kit import record
from runbook_kit.guard import Result
from runbook_kit.k8s import _api
from runbook_kit.k8s.classify import CRASH_WAITING
from runbook_kit.k8s.rollout import revision
from runbook_kit.k8s.status import list_pods

__all__ = ["VerifyResult", "changed_deployment", "rollout_state", "verify_rollout"]

POLL_S = 1.0


@dataclasses.dataclass(frozen=True)
class VerifyResult:
    namespace: str
    deployment: str
    recovered: bool
    waited_s: float
    revision: int
    replicas: int
    updated: int
    ready: int
    available: int
    crashlooping: list[str]
    message: str

    def _repr_html_(self) -> str:
        icon = "✅" if self.recovered else "❌"
        return (
            f"{icon} <b>{html.escape(self.message)}</b><br>revision {self.revision}: "
            f"{self.ready}/{self.replicas} ready, {self.updated} updated, {self.available} available"
        )


def rollout_state(dep: dict[str, Any]) -> tuple[bool, str]:
    """(complete, what is missing) for a deployment dict, as `kubectl rollout status` judges it (pure)."""
    spec, st = dep.get("spec") or {}, dep.get("status") or {}
    want = spec.get("replicas", 1)
    if st.get("observedGeneration", 0) < (dep.get("metadata") or {}).get("generation", 0):
        return False, "the controller has not observed the latest generation yet"
    counts = {k: st.get(k, 0) for k in ("updatedReplicas", "readyReplicas", "availableReplicas", "replicas")}
    if counts["updatedReplicas"] < want:
        return False, f"{counts['updatedReplicas']} of {want} replicas updated"
    if counts["replicas"] > counts["updatedReplicas"]:
        return False, f"{counts['replicas'] - counts['updatedReplicas']} old replicas pending termination"
    if counts["availableReplicas"] < want or counts["readyReplicas"] < want:
        return False, f"{counts['availableReplicas']} of {want} updated replicas available"
    return True, "rollout complete"


def _restarts(pods: list[dict[str, Any]]) -> tuple[dict[str, int], list[str]]:
    counts, crashing = {}, []
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        counts[pod["metadata"]["name"]] = sum(int(cs.get("restartCount") or 0) for cs in statuses)
        if any(
            ((cs.get("state") or {}).get("waiting") or {}).get("reason") in CRASH_WAITING for cs in statuses
        ):
            crashing.append(pod["metadata"]["name"])
    return counts, crashing


def changed_deployment(after: Result | None, deployment: str) -> bool:
    """Whether `after` (what `rk.apply` returned) changed `deployment/<deployment>` for real (pure)."""
    return bool(after is not None and after.applied and deployment
                and f"deployment/{deployment}" in after.plan.targets)


def verify_rollout(
    *,
    namespace: str,
    deployment: str,
    after: Result | None = None,
    timeout_s: float = 120,
    quiet_s: float = 10,
    context: str = "",
    apps: Any | None = None,
    core: Any | None = None,
) -> VerifyResult | None:
    """Wait until the rollout is complete and no pod restarts for `quiet_s`; record the outcome.

    With `after` (the Result of `rk.apply`) it waits up to `timeout_s` only when that change was applied
    to this deployment; otherwise (a dry run, a node action, nothing to do) it checks once. Without a
    deployment there is nothing to verify: an info finding says so and it returns None.
    """
    if not deployment:
        record.finding("No deployment to verify: none given and none owns the crashing pods", severity="info",
                       namespace=namespace)
        return None
    if after is not None and not changed_deployment(after, deployment):
        timeout_s = 0
    apps_api, core_api = _api.apps(context, apps), _api.core(context, core)
    start = time.monotonic()
    deadline = start + max(0.0, timeout_s)
    quiet_since: float | None = None
    baseline: dict[str, int] = {}
    while True:
        dep = _api.read_deployment(apps_api, namespace, deployment, context=context)
        labels = ((dep.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        pods = list_pods(
            namespace=namespace, selector=_api.selector_string(labels), context=context, core=core_api
        )
        complete, why = rollout_state(dep)
        counts, crashing = _restarts(pods)
        now = time.monotonic()
        if complete and not crashing:
            if quiet_since is None or counts != baseline:
                quiet_since, baseline = now, counts
            if now - quiet_since >= min(quiet_s, max(0.0, timeout_s)):
                recovered, message = (
                    True,
                    (
                        f"{namespace}/{deployment} recovered: rollout complete, no restarts "
                        f"for {quiet_s if timeout_s else 0:g} s"
                    ),
                )
                break
            why = "waiting for the pods to stay up"
        else:
            quiet_since = None
        if now >= deadline:
            detail = f"; crash-looping: {', '.join(crashing[:5])}" if crashing else ""
            recovered, message = (
                False,
                (
                    f"{namespace}/{deployment} not recovered within {timeout_s:g} s: {why}{detail}"
                    if timeout_s > 0
                    else f"{namespace}/{deployment} not recovered (checked once): {why}{detail}"
                ),
            )
            break
        time.sleep(POLL_S)
    st = dep.get("status") or {}
    result = VerifyResult(
        namespace,
        deployment,
        recovered,
        round(time.monotonic() - start, 1),
        revision(dep),
        (dep.get("spec") or {}).get("replicas", 1),
        st.get("updatedReplicas", 0),
        st.get("readyReplicas", 0),
        st.get("availableReplicas", 0),
        crashing,
        message,
    )
    # checked once (nothing was applied to wait for): a status line, not a failed fix
    severity = "info" if recovered or timeout_s <= 0 else "high"
    record.finding(
        message,
        severity=severity,
        revision=result.revision,
        replicas=result.replicas,
        ready=result.ready,
        waited_s=result.waited_s,
        crashlooping=crashing,
        recovered=recovered,
    )
    return result
