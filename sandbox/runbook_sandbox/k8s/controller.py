"""The control loop: deployment, replicaset, scheduler, kubelet and garbage collector in one thread.

Every `tick` seconds it reconciles, in the order the real components would converge: garbage
collection (owners gone, namespaces gone), deployments (one ReplicaSet per template revision and a
rolling update within maxSurge/maxUnavailable), replicasets (create or delete pods to match
`spec.replicas`), the ServiceAccount controller (`default` in every namespace), the job controller
(jobs.py), the scheduler (Ready, uncordoned nodes with room for the requests), the kubelet
(container states from the app model; Job pods run as local processes, localpods.py), the job
controller again (to count what ended) and PodDisruptionBudget status. A Job's creation and a Job
pod's process ending wake the loop at once (`poke`). Time is real time; a healthy
pod is Ready about a second after it is created, so a rollout completes in a few ticks.

Writes go through the store like API writes (new dicts, new resourceVersions) and only when an
object really changed, so a settled cluster is quiet and 10,000 settled pods cost one pass of dict
lookups per tick.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections import defaultdict
from typing import Any

from runbook_sandbox.k8s import apps, events, jobs, kubelet, localpods, workloads
from runbook_sandbox.k8s.deployments import DeploymentController
from runbook_sandbox.k8s.jobs import JobController
from runbook_sandbox.k8s.localpods import LocalKubelet
from runbook_sandbox.k8s.podenv import Node
from runbook_sandbox.k8s.pods import bind, default_pod, delete_pod, node_ready, requests_of
from runbook_sandbox.k8s.runtime import Runtime
from runbook_sandbox.k8s.store import Store, clone, iso, now


class Controller(DeploymentController, JobController, LocalKubelet):
    def __init__(
        self, store: Store, *, tick: float = 0.5, node: Node | None = None, backoff: float = 1.0
    ) -> None:
        self.store = store
        self.tick_seconds = tick
        self.node = node  # None: Job pods are created and scheduled but no process runs them
        self.runtime = Runtime(node.state_dir, on_change=self.poke) if node else None
        self.backoff = backoff
        self.counted: dict[str, set[str]] = {}
        self.last_failure: dict[str, dt.datetime] = {}
        self._wake = threading.Event()
        self.settled: set[str] = set()  # uids of pods whose status cannot change by itself
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._scope: set[str] | None = None
        self._seen_rv = 0
        self._ready: dict[str, tuple[int, int]] = {}
        self._progress: dict[str, tuple[str, dt.datetime]] = {}  # deployment uid -> (marker, since)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="k8s-controller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=2)
        if self.runtime is not None:
            self.runtime.stop_all()

    def poke(self) -> None:
        """Run the next pass now (a Job was created, a pod's process ended)."""
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.tick_seconds)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.tick()
            except Exception:  # keep the cluster alive; the log shows what broke
                import logging

                logging.getLogger(__name__).exception("controller tick failed")

    # --- one pass --------------------------------------------------------------------------

    def tick(self, at: dt.datetime | None = None) -> None:
        at = at or now()
        with self.store.lock:
            self._scope = self._dirty_namespaces()
            started_rv = int(self.store.resource_version)  # this pass's own writes dirty the next one
            try:
                self._pass(at)
            finally:
                self._scope = None
                self._seen_rv = started_rv

    def _dirty_namespaces(self) -> set[str] | None:
        """Namespaces where something changed since the last pass or a pod is still changing by itself.

        A settled namespace (the 10,000 pods of a benchmark) costs nothing per tick. None means all:
        the first pass, a node or namespace change, or a history that no longer reaches back.
        """
        history = self.store.history
        if not self._seen_rv or not history or history[0][0] > self._seen_rv + 1:
            return None
        dirty: set[str] = set()
        for rv, _, plural, obj in reversed(history):
            if rv <= self._seen_rv:
                break
            if plural in ("namespaces", "nodes"):
                return None
            dirty.add(obj["metadata"].get("namespace", ""))
        for pod in self.store.values("pods"):
            if pod["metadata"]["uid"] not in self.settled:
                dirty.add(pod["metadata"]["namespace"])
        for job in self.store.values("jobs"):  # back-off, deadline and TTL are due by the clock
            if job["spec"].get("ttlSecondsAfterFinished") is not None or not jobs.finished(job):
                dirty.add(job["metadata"]["namespace"])
        return dirty

    def _items(self, plural: str) -> list[dict[str, Any]]:
        if self._scope is None:
            return self.store.items(plural)
        return [obj for ns in sorted(self._scope) for obj in self.store.items(plural, ns)]

    def _pass(self, at: dt.datetime) -> None:
        self._collect_garbage()
        self._ready = self._ready_counts()
        for deployment in self._items("deployments"):
            self._reconcile_deployment(deployment, at)
        pods_by_owner = self._pods_by_owner()
        for rs in self._items("replicasets"):
            self._reconcile_replicaset(rs, pods_by_owner.get(rs["metadata"]["uid"], []), at)
        self._service_accounts()
        self._reconcile_jobs(pods_by_owner, at)
        self._schedule(at)
        self._kubelet(at)
        self._local_kubelet(at)
        pods_by_owner = self._pods_by_owner()
        self._reconcile_jobs(pods_by_owner, at)
        self._reap()
        for rs in self._items("replicasets"):
            self._replicaset_status(rs, pods_by_owner.get(rs["metadata"]["uid"], []))
        for deployment in self._items("deployments"):
            self._deployment_status(deployment, at)
        self._pdb_status()

    def _pods_by_owner(self) -> dict[str, list[dict[str, Any]]]:
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for pod in self._items("pods"):
            uid = workloads.controller_uid(pod)
            if uid:
                grouped[uid].append(pod)
        return grouped

    def _collect_garbage(self) -> None:
        namespaces = {ns["metadata"]["name"] for ns in self.store.items("namespaces")}
        owners = {
            o["metadata"]["uid"]
            for plural in ("deployments", "replicasets", "daemonsets")
            for o in self.store.values(plural)
        }
        owners |= {o["metadata"]["uid"] for o in self.store.values("jobs")}
        for plural in ("pods", "replicasets", "deployments", "daemonsets", "events", "poddisruptionbudgets"):
            for obj in self._items(plural):
                meta = obj["metadata"]
                owner = workloads.controller_uid(obj)
                if meta["namespace"] not in namespaces or (
                    owner and plural != "events" and owner not in owners
                ):
                    if plural == "pods":
                        delete_pod(self.store, obj, at=now())
                    else:
                        self.store.delete(plural, meta["namespace"], meta["name"])
                    self.settled.discard(meta["uid"])
        for job in self._items("jobs"):
            if job["metadata"]["namespace"] not in namespaces:
                self.store.delete("jobs", job["metadata"]["namespace"], job["metadata"]["name"])

    # --- replicasets -----------------------------------------------------------------------

    def _reconcile_replicaset(self, rs: dict[str, Any], pods: list[dict[str, Any]], at: dt.datetime) -> None:
        want = int(rs["spec"].get("replicas", 0))
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        if len(live) < want:
            for _ in range(want - len(live)):
                pod = self.store.create("pods", self._pod_from(rs), created=at)
                events.record(
                    self.store,
                    rs,
                    reason="SuccessfulCreate",
                    component="replicaset-controller",
                    message=f"Created pod: {pod['metadata']['name']}",
                    first=at,
                    now=at,
                )
        elif len(live) > want:
            # unscheduled first, then not ready, then the newest (the real controller's ranking, simplified)
            ranked = sorted(
                live,
                key=lambda p: (
                    bool(p["spec"].get("nodeName")),
                    kubelet.is_ready(p),
                    p["metadata"]["creationTimestamp"],
                ),
                reverse=False,
            )
            victims = sorted(ranked[: len(live) - want], key=lambda p: p["metadata"]["name"])
            for pod in victims:
                delete_pod(self.store, pod, at=at)
                self.settled.discard(pod["metadata"]["uid"])
                events.record(
                    self.store,
                    rs,
                    reason="SuccessfulDelete",
                    component="replicaset-controller",
                    message=f"Deleted pod: {pod['metadata']['name']}",
                    first=at,
                    now=at,
                )

    def _pod_from(
        self, owner: dict[str, Any], *, kind: str = "ReplicaSet", api_version: str = "apps/v1"
    ) -> dict[str, Any]:
        """A new pod from its controller's template (a ReplicaSet's, a Job's), named and owned as the
        real controllers do: `<owner>-<5 chars>`, a controller ownerReference."""
        template = clone(owner["spec"]["template"])
        meta = template.get("metadata") or {}
        meta.pop("creationTimestamp", None)
        base = owner["metadata"]["name"]
        meta.update(
            name=f"{base}-{self._suffix(base)}",
            generateName=f"{base}-",
            namespace=owner["metadata"]["namespace"],
            ownerReferences=[workloads.owner_ref(owner, kind=kind, api_version=api_version)],
        )
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": template["spec"],
            "status": {"phase": "Pending", "qosClass": "BestEffort"},
        }
        return default_pod(pod)

    def _suffix(self, base: str) -> str:
        while True:
            suffix = workloads.safe_encode(os.urandom(8), 5)
            if not any(
                self.store.get("pods", ns["metadata"]["name"], f"{base}-{suffix}")
                for ns in self.store.items("namespaces")
            ):
                return suffix

    def _replicaset_status(self, rs: dict[str, Any], pods: list[dict[str, Any]]) -> None:
        ready = sum(1 for p in pods if kubelet.is_ready(p))
        status: dict[str, Any] = {
            "replicas": len(pods),
            "fullyLabeledReplicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        status = {k: v for k, v in status.items() if v or k in ("replicas", "observedGeneration")}
        if rs.get("status") != status:
            self.store.replace("replicasets", dict(rs, status=status))

    # --- scheduler and kubelet -----------------------------------------------------------------

    def _schedule(self, at: dt.datetime) -> None:
        pending = [p for p in self._items("pods") if not p["spec"].get("nodeName")]
        if not pending:
            return
        nodes = self.store.items("nodes")
        usage: dict[str, list[float]] = {n["metadata"]["name"]: [0.0, 0.0, 0] for n in nodes}
        for pod in self.store.values("pods"):
            node = pod["spec"].get("nodeName")
            if node in usage:
                cpu, mem = requests_of(pod)
                usage[node][0] += cpu
                usage[node][1] += mem
                usage[node][2] += 1
        for pod in pending:
            cpu, mem = requests_of(pod)
            fits, cordoned, short = [], 0, 0
            for node in nodes:
                name = node["metadata"]["name"]
                if node["spec"].get("unschedulable") or not node_ready(node):
                    cordoned += 1
                    continue
                alloc = node["status"]["allocatable"]
                if usage[name][0] + cpu > (apps.millicores(alloc["cpu"]) or 0.0) or usage[name][1] + mem > (
                    apps.mib(alloc["memory"]) or 0.0
                ):
                    short += 1
                    continue
                fits.append(name)
            if not fits:
                reasons = []
                if cordoned:
                    reasons.append(f"{cordoned} node(s) were unschedulable")
                if short:
                    reasons.append(f"{short} Insufficient memory")
                message = f"0/{len(nodes)} nodes are available: {', '.join(reasons) or 'no nodes'}."
                conditions = [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "lastProbeTime": None,
                        "lastTransitionTime": pod["metadata"]["creationTimestamp"],
                        "reason": "Unschedulable",
                        "message": message,
                    }
                ]
                if (pod.get("status") or {}).get("conditions") != conditions:
                    self.store.replace(
                        "pods",
                        dict(
                            pod,
                            status={
                                "phase": "Pending",
                                "conditions": conditions,
                                "qosClass": kubelet.qos_class(pod),
                            },
                        ),
                    )
                    events.record(
                        self.store,
                        pod,
                        reason="FailedScheduling",
                        type_="Warning",
                        message=message,
                        component="default-scheduler",
                        first=at,
                        now=at,
                    )
                continue
            chosen = min(fits, key=lambda n: (usage[n][2], n))
            usage[chosen][0] += cpu
            usage[chosen][1] += mem
            usage[chosen][2] += 1
            node = next(n for n in nodes if n["metadata"]["name"] == chosen)
            self.store.replace("pods", bind(pod, node, at=at))

    def _kubelet(self, at: dt.datetime) -> None:
        for pod in self._items("pods"):
            uid = pod["metadata"]["uid"]
            if uid in self.settled or not pod["spec"].get("nodeName") or localpods.is_local(pod):
                continue
            status = kubelet.pod_status(pod, at)
            if status != pod.get("status"):
                pod = self.store.replace("pods", dict(pod, status=status))
            for e in kubelet.pod_events(pod, at):
                events.record(
                    self.store,
                    pod,
                    reason=e.reason,
                    type_=e.type,
                    message=e.message,
                    component=e.component,
                    host=pod["spec"]["nodeName"] if e.component == "kubelet" else "",
                    field_path=e.field_path,
                    count=e.count,
                    first=e.first,
                    last=e.last,
                    now=at,
                )
            if kubelet.settled(pod, at):
                self.settled.add(uid)

    def _service_accounts(self) -> None:
        """The ServiceAccount controller: every namespace has a `default` ServiceAccount."""
        for ns in self.store.items("namespaces"):
            name = ns["metadata"]["name"]
            if (
                ns.get("status", {}).get("phase") == "Active"
                and self.store.get("serviceaccounts", name, "default") is None
            ):
                self.store.create(
                    "serviceaccounts",
                    {
                        "apiVersion": "v1",
                        "kind": "ServiceAccount",
                        "metadata": {"name": "default", "namespace": name},
                    },
                )

    def _pdb_status(self) -> None:
        pdbs = self._items("poddisruptionbudgets")
        if not pdbs:
            return
        pods = self._items("pods")
        for pdb in pdbs:
            health = workloads.pdb_health(pdb, pods, is_ready=kubelet.is_ready)
            status = dict(health, observedGeneration=pdb["metadata"].get("generation", 1))
            old = dict(pdb.get("status") or {})
            old.pop("conditions", None)
            if old != status:
                allowed = health["disruptionsAllowed"] > 0
                status["conditions"] = [
                    {
                        "type": "DisruptionAllowed",
                        "status": "True" if allowed else "False",
                        "reason": "SufficientPods" if allowed else "InsufficientPods",
                        "message": "",
                        "observedGeneration": status["observedGeneration"],
                        "lastTransitionTime": iso(now()),
                    }
                ]
                self.store.replace("poddisruptionbudgets", dict(pdb, status=status))
