"""The seeded cluster: nodes and kube-system always; `crashloop`, `latency` and `--pods N` on demand.

Seeds write objects as the controllers would have left them, with timestamps placed relative to the
anchor through runbook_sandbox.timeline, so the Kubernetes story lines up with the AWS data a
different process seeds. The crashloop seed shows what a real rolling update does when the new pods
never become ready (3 replicas, maxSurge 25% -> 1 pod, maxUnavailable 25% -> 0 pods): the new
ReplicaSet has one pod, OOMKilled in CrashLoopBackOff since the rollout, the old ReplicaSet still
serves with 3 Ready pods, and the deployment reports 1 unavailable replica and Progressing=False
(ProgressDeadlineExceeded) because the deadline (600 s) passed long ago.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from typing import Any

from runbook_sandbox import timeline as tl
from runbook_sandbox.k8s import events, kubelet, manifests, workloads
from runbook_sandbox.k8s.controller import Controller
from runbook_sandbox.k8s.pods import bind, default_pod, pod_ip
from runbook_sandbox.k8s.store import Store, clone, iso

ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
NODES = (
    ("ip-10-0-1-23.ec2.internal", "10.0.1.23", "us-east-1a"),
    ("ip-10-0-2-47.ec2.internal", "10.0.2.47", "us-east-1b"),
    ("ip-10-0-3-112.ec2.internal", "10.0.3.112", "us-east-1c"),
)
API_IMAGE = f"{ECR}/payments/api:1.42.0"
CRASHLOOP_CAUSE = (
    f"right-size payments/api: lower memory limit {tl.CRASHLOOP_GOOD_LIMIT} -> "
    f"{tl.CRASHLOOP_BAD_LIMIT} (cost review CHG-2291)"
)


class Seeder:
    def __init__(
        self, store: Store, controller: Controller, *, anchor: dt.datetime, now: dt.datetime
    ) -> None:
        self.store, self.controller, self.anchor, self.now = store, controller, anchor, now
        self.nodes: list[dict[str, Any]] = []
        self._next_node = 0

    def ago(self, delta: dt.timedelta) -> dt.datetime:
        return tl.at(self.anchor, delta)

    def base(self) -> None:
        created = self.ago(dt.timedelta(days=30))
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            manifests.namespace(self.store, name, created)
        for name, ip, zone in NODES:
            self.nodes.append(
                self.store.create("nodes", manifests.node(name, ip, zone, created), created=created)
            )
        dns = manifests.deployment(
            "kube-system",
            "coredns",
            2,
            [
                manifests.container(
                    "coredns", "registry.k8s.io/coredns/coredns:v1.11.3", memory="170Mi", cpu="100m", port=53
                )
            ],
            labels={"k8s-app": "kube-dns"},
        )
        self.rollouts(dns, [(created, None)])
        self._kube_proxy(created)

    def _kube_proxy(self, created: dt.datetime) -> None:
        """A DaemonSet pod on every node (not recreated if deleted: the sandbox has no DaemonSet controller),
        so `kubectl drain` has DaemonSet-managed pods to refuse or, with --ignore-daemonsets, to skip."""
        labels = {"k8s-app": "kube-proxy"}
        container = manifests.container(
            "kube-proxy",
            "602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/kube-proxy:v1.32.0-eksbuild.2",
            memory="64Mi",
            cpu="100m",
            port=10249,
        )
        template = {
            "metadata": {"labels": dict(labels)},
            "spec": {
                "containers": [container],
                "hostNetwork": True,
                "priorityClassName": "system-node-critical",
                "tolerations": [{"operator": "Exists"}],
            },
        }
        default_pod(template)
        count = len(self.nodes)
        ds = self.store.create(
            "daemonsets",
            {
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "metadata": {
                    "name": "kube-proxy",
                    "namespace": "kube-system",
                    "labels": dict(labels),
                    "generation": 1,
                },
                "spec": {
                    "selector": {"matchLabels": dict(labels)},
                    "template": template,
                    "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
                },
                "status": {
                    "desiredNumberScheduled": count,
                    "currentNumberScheduled": count,
                    "numberReady": count,
                    "updatedNumberScheduled": count,
                    "numberAvailable": count,
                    "numberMisscheduled": 0,
                    "observedGeneration": 1,
                },
            },
            created=created,
        )
        for node in self.nodes:
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"kube-proxy-{workloads.safe_encode(os.urandom(8), 5)}",
                    "namespace": "kube-system",
                    "labels": dict(labels),
                    "generateName": "kube-proxy-",
                    "ownerReferences": [workloads.owner_ref(ds, kind="DaemonSet", api_version="apps/v1")],
                },
                "spec": clone(template["spec"]),
            }
            pod = bind(self.store.stamp(pod, created=created), node, at=created)
            pod["status"] = kubelet.pod_status(pod, self.now)
            pod["status"]["podIP"] = pod["status"]["hostIP"]
            pod["status"]["podIPs"] = [{"ip": pod["status"]["hostIP"]}]
            self.store.create("pods", pod, created=created)

    def rollouts(
        self,
        deployment: dict[str, Any],
        revisions: list[tuple[dt.datetime, dict[str, Any] | None]],
        *,
        stalled: bool = False,
    ) -> dict[str, Any]:
        """Store a deployment with one ReplicaSet per (time, template change); the last one is current.

        Completed rollouts leave the old ReplicaSets at 0 replicas; a stalled one (`stalled=True`) leaves
        the previous ReplicaSet serving and the new one at maxSurge pods, as the real controller does.
        """
        first_created = revisions[0][0]
        d = self.store.create("deployments", deployment, created=first_created)
        replicasets = []
        for number, (when, change) in enumerate(revisions, start=1):
            if change:
                d = clone(d)
                containers = d["spec"]["template"]["spec"]["containers"]
                containers[0].update(clone(change.get("container", {})))
                if "cause" in change:
                    d["metadata"]["annotations"][workloads.CHANGE_CAUSE] = change["cause"]
                d["metadata"]["generation"] = number
            rs = workloads.new_replicaset(d, revision_number=number)
            replicasets.append((when, self.store.create("replicasets", rs, created=when)))
        desired = int(d["spec"]["replicas"])
        surge, _ = workloads.rolling_budget(d)
        plan = {rs["metadata"]["uid"]: 0 for _, rs in replicasets}
        if stalled and len(replicasets) > 1:
            plan[replicasets[-2][1]["metadata"]["uid"]] = desired
            plan[replicasets[-1][1]["metadata"]["uid"]] = surge
        else:
            plan[replicasets[-1][1]["metadata"]["uid"]] = desired
        for when, rs in replicasets:
            count = plan[rs["metadata"]["uid"]]
            rs = clone(rs)
            rs["spec"]["replicas"] = count
            rs = self.store.replace("replicasets", rs)
            for i in range(count):
                self._pod(rs, created=when + dt.timedelta(seconds=2 + 3 * i))
            if when == replicasets[-1][0]:
                events.record(
                    self.store,
                    d,
                    reason="ScalingReplicaSet",
                    component="deployment-controller",
                    message=f"Scaled up replica set {rs['metadata']['name']} from 0 to {count}",
                    first=when,
                    now=self.now,
                )
        d = clone(d)
        d["metadata"]["annotations"][workloads.REVISION] = str(len(replicasets))
        last_rollout, (_, newest) = replicasets[-1][0], replicasets[-1]
        available = iso(first_created + dt.timedelta(seconds=5))
        conditions = [
            {
                "type": "Available",
                "status": "True",
                "lastUpdateTime": available,
                "lastTransitionTime": available,
                "reason": "MinimumReplicasAvailable",
                "message": "Deployment has minimum availability.",
            },
        ]
        deadline = last_rollout + dt.timedelta(seconds=int(d["spec"]["progressDeadlineSeconds"]))
        if stalled and deadline < self.now:
            conditions.append(
                {
                    "type": "Progressing",
                    "status": "False",
                    "lastUpdateTime": iso(deadline),
                    "lastTransitionTime": iso(deadline),
                    "reason": "ProgressDeadlineExceeded",
                    "message": f'ReplicaSet "{newest["metadata"]["name"]}" has timed out progressing.',
                }
            )
        elif not stalled:
            done = iso(last_rollout + dt.timedelta(seconds=5 + 3 * desired))
            conditions.append(
                {
                    "type": "Progressing",
                    "status": "True",
                    "lastUpdateTime": done,
                    "lastTransitionTime": iso(first_created),
                    "reason": "NewReplicaSetAvailable",
                    "message": f'ReplicaSet "{newest["metadata"]["name"]}" has successfully progressed.',
                }
            )
        d["status"] = {"conditions": conditions}
        return self.store.replace("deployments", d)

    def _pod(self, rs: dict[str, Any], *, created: dt.datetime) -> dict[str, Any]:
        pod = self.controller._pod_from(rs)
        self.store.stamp(pod, created=created)
        node = self.nodes[self._next_node % len(self.nodes)]
        self._next_node += 1
        pod = bind(pod, node, at=created + dt.timedelta(seconds=1))
        pod["status"] = kubelet.pod_status(pod, self.now)
        stored = self.store.create("pods", pod, created=created)
        events.record(
            self.store,
            rs,
            reason="SuccessfulCreate",
            component="replicaset-controller",
            message=f"Created pod: {stored['metadata']['name']}",
            first=created,
            now=self.now,
        )
        return stored

    # --- scenarios ---------------------------------------------------------------------------

    def crashloop(self) -> None:
        ns = tl.CRASHLOOP_NAMESPACE
        manifests.namespace(self.store, ns, self.ago(dt.timedelta(days=60)))
        api = manifests.deployment(
            ns,
            tl.CRASHLOOP_DEPLOYMENT,
            3,
            [
                manifests.container(
                    "api", f"{ECR}/payments/api:1.41.0", memory=tl.CRASHLOOP_GOOD_LIMIT, ready_delay=3
                )
            ],
        )
        self.rollouts(
            api,
            [
                (self.ago(dt.timedelta(days=14)), {"cause": "deploy payments/api 1.41.0"}),
                (
                    self.ago(dt.timedelta(days=4)),
                    {"container": {"image": API_IMAGE}, "cause": "deploy payments/api 1.42.0"},
                ),
                (
                    self.ago(tl.CRASHLOOP_ROLLOUT_AGO),
                    {
                        "container": {
                            "resources": {
                                "requests": {"cpu": "250m", "memory": tl.CRASHLOOP_BAD_LIMIT},
                                "limits": {"memory": tl.CRASHLOOP_BAD_LIMIT},
                            }
                        },
                        "cause": CRASHLOOP_CAUSE,
                    },
                ),
            ],
            stalled=True,
        )
        worker = manifests.deployment(
            ns,
            "worker",
            2,
            [
                manifests.container(
                    "worker", f"{ECR}/payments/worker:2.7.3", memory="384Mi", cpu="100m", port=9090
                )
            ],
        )
        self.rollouts(worker, [(self.ago(dt.timedelta(days=9)), None)])
        for name, spec in (("api", {"minAvailable": 2}), ("worker", {"maxUnavailable": 1})):
            self.store.create(
                "poddisruptionbudgets",
                {
                    "apiVersion": "policy/v1",
                    "kind": "PodDisruptionBudget",
                    "metadata": {"name": name, "namespace": ns, "generation": 1},
                    "spec": {**spec, "selector": {"matchLabels": {"app": name}}},
                    "status": {},
                },
                created=self.ago(dt.timedelta(days=60)),
            )

    def workers(self) -> None:
        """`node`: shop/web spread over the Auto Scaling group's nodes, some on the impaired one."""
        from runbook_sandbox.k8s.cloud import GROUP_LABEL

        workers = [n for n in self.store.items("nodes") if GROUP_LABEL in (n["metadata"].get("labels") or {})]
        ns = tl.NODE_NAMESPACE
        manifests.namespace(self.store, ns, self.ago(dt.timedelta(days=60)))
        web = manifests.deployment(
            ns,
            tl.NODE_DEPLOYMENT,
            tl.NODE_REPLICAS,
            [manifests.container("web", f"{ECR}/shop/web:v2.3.0", memory="256Mi", cpu="250m", port=8080)],
        )
        everyone, self.nodes, self._next_node = self.nodes, workers, 0
        try:
            self.rollouts(web, [(self.ago(dt.timedelta(days=4)), {"cause": "deploy web v2.3.0"})])
        finally:
            self.nodes = everyone

    def latency(self) -> None:
        ns = tl.LATENCY_NAMESPACE
        manifests.namespace(self.store, ns, self.ago(dt.timedelta(days=90)))
        checkout = manifests.deployment(
            ns,
            tl.LATENCY_SERVICE,
            3,
            [
                manifests.container(
                    "checkout", f"{ECR}/storefront/checkout:v3.8.0", memory="768Mi", cpu="500m"
                )
            ],
        )
        self.rollouts(
            checkout,
            [
                (self.ago(dt.timedelta(days=9)), {"cause": "deploy checkout v3.8.0"}),
                (
                    self.ago(dt.timedelta(days=2)),
                    {
                        "container": {"image": f"{ECR}/storefront/checkout:v3.8.1"},
                        "cause": "deploy checkout v3.8.1",
                    },
                ),
                (
                    self.ago(tl.LATENCY_DEPLOY_AGO),
                    {
                        "container": {"image": f"{ECR}/storefront/checkout:v3.9.0"},
                        "cause": "deploy checkout v3.9.0 (CodeDeploy d-7Q2LX0ABC)",
                    },
                ),
            ],
        )
        frontend = manifests.deployment(
            ns,
            "frontend",
            2,
            [
                manifests.container(
                    "frontend", f"{ECR}/storefront/frontend:v1.20.4", memory="256Mi", cpu="100m"
                )
            ],
        )
        self.rollouts(frontend, [(self.ago(dt.timedelta(days=21)), None)])
        self._config(ns)

    def _config(self, ns: str) -> None:
        """ConfigMaps and a Secret of the storefront, changed at known times (managedFields carry when)."""
        changes = (
            (
                "configmaps",
                "checkout-config",
                dt.timedelta(days=30),
                dt.timedelta(minutes=40),
                {"data": {"PAYMENTS_TIMEOUT_MS": "3000", "LOG_LEVEL": "info"}},
            ),
            (
                "configmaps",
                "frontend-flags",
                dt.timedelta(days=10),
                dt.timedelta(days=10),
                {"data": {"NEW_CART": "false"}},
            ),
            (
                "secrets",
                "checkout-db-credentials",
                dt.timedelta(days=90),
                dt.timedelta(minutes=170),
                {"type": "Opaque", "data": {"password": "c2FuZGJveC1ub3QtYS1zZWNyZXQ="}},
            ),
        )
        for plural, name, created_ago, changed_ago, body in changes:
            created, changed = self.ago(created_ago), self.ago(changed_ago)
            kind = "ConfigMap" if plural == "configmaps" else "Secret"
            fields = [
                {
                    "manager": "kubectl-client-side-apply",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": iso(changed),
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:data": {}},
                }
            ]
            obj = {
                "apiVersion": "v1",
                "kind": kind,
                "metadata": {"name": name, "namespace": ns, "managedFields": fields},
                **body,
            }
            self.store.create(plural, obj, created=created)

    def bulk(self, pods: int, *, deployments: int = 5) -> None:
        """N settled Running pods in namespace `bulk`, spread over a few deployments (benchmarks)."""
        ns = "bulk"
        created = self.ago(dt.timedelta(days=1))
        manifests.namespace(self.store, ns, created)
        per = [pods // deployments + (1 if i < pods % deployments else 0) for i in range(deployments)]
        for i, count in enumerate(per):
            d = manifests.deployment(
                ns,
                f"bulk-{i}",
                count,
                [
                    manifests.container(
                        "app", "public.ecr.aws/nginx/nginx:1.27", memory="32Mi", cpu="5m", port=80
                    )
                ],
            )
            d["spec"]["template"]["spec"]["containers"][0]["resources"] = {}
            d = self.store.create("deployments", d, created=created)
            rs = workloads.new_replicaset(d, revision_number=1)
            rs["spec"]["replicas"] = count
            rs = self.store.create("replicasets", rs, created=created)
            first = self.store.stamp(self.controller._pod_from(rs), created=created)
            first = bind(first, self.nodes[0], at=created)
            first["status"] = kubelet.pod_status(first, self.now)
            prefix = rs["metadata"]["name"]
            names: set[str] = set()
            while len(names) < count:  # one clone per pod: this path seeds 10,000 pods in well under 2 s
                names.add(f"{prefix}-{workloads.safe_encode(os.urandom(8), 5)}")
            for name in sorted(names):
                pod = clone(first)
                meta = pod["metadata"]
                meta["name"] = name
                meta["uid"] = str(uuid.uuid4())
                node = self.nodes[self._next_node % len(self.nodes)]
                self._next_node += 1
                ip = pod_ip(meta["uid"], node)
                host = node["status"]["addresses"][0]["address"]
                pod["spec"]["nodeName"] = node["metadata"]["name"]
                pod["status"].update(podIP=ip, podIPs=[{"ip": ip}], hostIP=host, hostIPs=[{"ip": host}])
                self.store.create("pods", pod, created=created)
                self.controller.settled.add(meta["uid"])


def seed(
    store: Store,
    controller: Controller,
    *,
    scenarios: set[str],
    anchor: dt.datetime,
    now: dt.datetime,
    pods: int = 0,
    cloud: Any = None,
) -> None:
    seeder = Seeder(store, controller, anchor=anchor, now=now)
    seeder.base()
    if "node" in scenarios:
        if cloud is None:
            raise ValueError(
                "the node scenario needs the AWS part (--aws-endpoint): its nodes are EC2 instances"
            )
        cloud.wait_for_group()
        cloud.sync(at=now, settled=True)
        seeder.workers()
    if "crashloop" in scenarios:
        seeder.crashloop()
    if "latency" in scenarios:
        seeder.latency()
    if pods:
        seeder.bulk(pods)
    controller.tick(now)
