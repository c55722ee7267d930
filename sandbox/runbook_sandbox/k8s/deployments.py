"""The deployment controller's half of the control loop: revisions and the rolling update.

Kept apart from controller.py (the loop, replicasets, scheduler, kubelet) because this is where the
behaviour runbooks depend on lives: one ReplicaSet per pod-template revision (reused and moved to
the newest revision number when a template comes back, which is what `rollout undo` relies on), a
rolling update bounded by maxSurge/maxUnavailable, and a status (replicas, updated, ready,
available, unavailable, Available/Progressing conditions with ProgressDeadlineExceeded) that a
runbook can wait on truthfully.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from runbook_sandbox.k8s import events, kubelet, workloads
from runbook_sandbox.k8s.store import Store, clone, iso


class DeploymentController:
    """Mixin for Controller: needs `store`, `_ready`, `_progress` and `_items`."""

    store: Store
    _ready: dict[str, tuple[int, int]]
    _progress: dict[str, tuple[str, dt.datetime]]

    def _items(self, plural: str) -> list[dict[str, Any]]:
        raise NotImplementedError  # Controller scopes it to the namespaces that need a pass

    # --- deployments -----------------------------------------------------------------------

    def _owned(self, deployment: dict[str, Any]) -> list[dict[str, Any]]:
        uid = deployment["metadata"]["uid"]
        return [
            rs
            for rs in self.store.items("replicasets", deployment["metadata"]["namespace"])
            if workloads.controller_uid(rs) == uid
        ]

    def _scale(self, rs: dict[str, Any], replicas: int, deployment: dict[str, Any], at: dt.datetime) -> None:
        old = int(rs["spec"].get("replicas", 0))
        if old == replicas:
            return
        updated = clone(rs)
        updated["spec"]["replicas"] = replicas
        annotations = updated["metadata"].setdefault("annotations", {})
        annotations["deployment.kubernetes.io/desired-replicas"] = str(deployment["spec"].get("replicas", 1))
        self.store.replace("replicasets", updated)
        direction = "up" if replicas > old else "down"
        events.record(
            self.store,
            deployment,
            reason="ScalingReplicaSet",
            component="deployment-controller",
            message=f"Scaled {direction} replica set {rs['metadata']['name']} from {old} to {replicas}",
            first=at,
            now=at,
        )

    def _reconcile_deployment(self, deployment: dict[str, Any], at: dt.datetime) -> None:
        spec = deployment["spec"]
        desired = int(spec.get("replicas", 1))
        owned = self._owned(deployment)
        newest = max((workloads.revision(rs) for rs in owned), default=0)
        new = next(
            (rs for rs in owned if workloads.same_template(rs["spec"]["template"], spec["template"])), None
        )
        if new is None:
            new = workloads.new_replicaset(deployment, revision_number=newest + 1)
            new = self.store.create("replicasets", new, created=at)
        elif workloads.revision(new) < newest or not self._has_cause(new, deployment):
            bumped = clone(new)
            annotations = bumped["metadata"].setdefault("annotations", {})
            if workloads.revision(new) < newest:
                annotations[workloads.REVISION] = str(newest + 1)
            cause = (deployment["metadata"].get("annotations") or {}).get(workloads.CHANGE_CAUSE)
            if cause:
                annotations[workloads.CHANGE_CAUSE] = cause
            new = self.store.replace("replicasets", bumped)
        revision_number = str(workloads.revision(new))
        if (deployment["metadata"].get("annotations") or {}).get(workloads.REVISION) != revision_number:
            updated = clone(deployment)
            updated["metadata"].setdefault("annotations", {})[workloads.REVISION] = revision_number
            deployment = self.store.replace("deployments", updated)
        old = sorted(
            (rs for rs in owned if rs["metadata"]["uid"] != new["metadata"]["uid"]),
            key=lambda rs: rs["metadata"]["creationTimestamp"],
        )
        if spec.get("paused"):
            return
        ready = self._ready
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            for rs in old:
                self._scale(rs, 0, deployment, at)
            if not any(ready.get(rs["metadata"]["uid"], (0, 0))[0] for rs in old):
                self._scale(new, desired, deployment, at)
            return
        surge, unavailable = workloads.rolling_budget(deployment)
        old_total = sum(int(rs["spec"].get("replicas", 0)) for rs in old)
        new_replicas = int(new["spec"].get("replicas", 0))
        if old_total == 0:
            target = desired
        elif new_replicas < desired:
            target = min(desired, new_replicas + max(0, desired + surge - old_total - new_replicas))
        else:
            target = desired
        self._scale(new, target, deployment, at)
        if not old_total:
            return
        min_available = desired - unavailable
        new_ready = ready.get(new["metadata"]["uid"], (0, 0))[0]
        budget = old_total + target - min_available - (target - new_ready)
        for rs in old:  # unhealthy old pods go first
            replicas = int(
                self.store.require("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"])[
                    "spec"
                ].get("replicas", 0)
            )
            unhealthy = replicas - ready.get(rs["metadata"]["uid"], (0, 0))[0]
            cut = max(0, min(unhealthy, budget))
            if cut:
                self._scale(rs, replicas - cut, deployment, at)
                budget -= cut
        available = sum(ready.get(rs["metadata"]["uid"], (0, 0))[0] for rs in owned)
        can_remove = available - min_available
        for rs in old:
            current = self.store.require("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"])
            replicas = int(current["spec"].get("replicas", 0))
            cut = max(0, min(replicas, can_remove))
            if cut:
                self._scale(current, replicas - cut, deployment, at)
                can_remove -= cut

    @staticmethod
    def _has_cause(rs: dict[str, Any], deployment: dict[str, Any]) -> bool:
        cause = (deployment["metadata"].get("annotations") or {}).get(workloads.CHANGE_CAUSE)
        return cause is None or (rs["metadata"].get("annotations") or {}).get(workloads.CHANGE_CAUSE) == cause

    def _ready_counts(self) -> dict[str, tuple[int, int]]:
        """owner uid -> (ready pods, pods)."""
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for pod in self._items("pods"):
            uid = workloads.controller_uid(pod)
            if uid and not pod["metadata"].get("deletionTimestamp"):
                counts[uid][1] += 1
                if kubelet.is_ready(pod):
                    counts[uid][0] += 1
        return {k: (v[0], v[1]) for k, v in counts.items()}

    def _deployment_status(self, deployment: dict[str, Any], at: dt.datetime) -> None:
        spec, meta = deployment["spec"], deployment["metadata"]
        desired = int(spec.get("replicas", 1))
        owned = self._owned(deployment)
        new = next(
            (rs for rs in owned if workloads.same_template(rs["spec"]["template"], spec["template"])), None
        )
        status_of = [rs.get("status") or {} for rs in owned]
        total_spec = sum(int(rs["spec"].get("replicas", 0)) for rs in owned)
        available = sum(s.get("availableReplicas", 0) for s in status_of)
        updated_count = (new.get("status") or {}).get("replicas", 0) if new else 0
        status: dict[str, Any] = {
            "observedGeneration": meta.get("generation", 1),
            "replicas": sum(s.get("replicas", 0) for s in status_of),
            "updatedReplicas": updated_count,
            "readyReplicas": sum(s.get("readyReplicas", 0) for s in status_of),
            "availableReplicas": available,
            "unavailableReplicas": max(0, total_spec - available),
        }
        status = {k: v for k, v in status.items() if v or k in ("observedGeneration", "replicas")}
        _, max_unavailable = workloads.rolling_budget(deployment)
        old_conditions = {c["type"]: c for c in (deployment.get("status") or {}).get("conditions") or []}
        new_name = new["metadata"]["name"] if new else ""
        complete = (
            new is not None
            and updated_count == desired
            and status["replicas"] == desired
            and available == desired
        )
        conditions = []
        if available >= desired - max_unavailable:
            conditions.append(
                self._condition(
                    old_conditions,
                    "Available",
                    "True",
                    "MinimumReplicasAvailable",
                    "Deployment has minimum availability.",
                    at,
                )
            )
        else:
            conditions.append(
                self._condition(
                    old_conditions,
                    "Available",
                    "False",
                    "MinimumReplicasUnavailable",
                    "Deployment does not have minimum availability.",
                    at,
                )
            )
        marker = (
            f"{new_name}/{(new or {}).get('spec', {}).get('replicas')}/"
            f"{(new or {}).get('status', {}).get('readyReplicas', 0)}"
        )
        since = self._progress_since(deployment, marker, at)
        if complete:
            progressing = self._condition(
                old_conditions,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{new_name}" has successfully progressed.',
                at,
            )
        elif at - since > dt.timedelta(seconds=int(spec.get("progressDeadlineSeconds", 600))):
            progressing = self._condition(
                old_conditions,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{new_name}" has timed out progressing.',
                at,
            )
        else:
            progressing = self._condition(
                old_conditions,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                f'ReplicaSet "{new_name}" is progressing.',
                at,
            )
            progressing["lastUpdateTime"] = iso(since)
        conditions.append(progressing)
        status["conditions"] = conditions
        if deployment.get("status") != status:
            updated = dict(deployment, status=status)
            self.store.replace("deployments", updated)

    def _progress_since(self, deployment: dict[str, Any], marker: str, at: dt.datetime) -> dt.datetime:
        """When the rollout last made progress (a new RS, a scale of it, a pod of it becoming ready)."""
        uid = deployment["metadata"]["uid"]
        known = self._progress.get(uid)
        if known is None:
            progressing = next(
                (
                    c
                    for c in (deployment.get("status") or {}).get("conditions") or []
                    if c["type"] == "Progressing"
                ),
                None,
            )
            since = at
            if progressing and progressing.get("lastUpdateTime"):
                since = dt.datetime.fromisoformat(progressing["lastUpdateTime"].replace("Z", "+00:00"))
                if (
                    progressing.get("reason") == "ProgressDeadlineExceeded"
                ):  # updated when the deadline passed
                    since -= dt.timedelta(seconds=int(deployment["spec"].get("progressDeadlineSeconds", 600)))
            self._progress[uid] = (marker, since)
            return since
        if known[0] != marker:
            self._progress[uid] = (marker, at)
            return at
        return known[1]

    @staticmethod
    def _condition(
        old: dict[str, dict[str, Any]], kind: str, status: str, reason: str, message: str, at: dt.datetime
    ) -> dict[str, Any]:
        previous = old.get(kind)
        if previous and previous["status"] == status and previous.get("reason") == reason:
            return dict(previous, message=message)
        transition = previous["lastTransitionTime"] if previous and previous["status"] == status else iso(at)
        return {
            "type": kind,
            "status": status,
            "lastUpdateTime": iso(at),
            "lastTransitionTime": transition,
            "reason": reason,
            "message": message,
        }
