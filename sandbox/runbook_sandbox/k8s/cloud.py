"""EKS worker nodes backed by the AWS part's EC2 instances: node join and the cloud node controller.

With `--aws-endpoint`, the Kubernetes part reads one Auto Scaling group through the AWS part's API
(the same endpoint a runbook uses, so both see one truth) and keeps one Node per instance, named by
its private DNS name, with `spec.providerID` `aws:///<az>/<instance-id>`:

* an instance that appears in the group joins as a new Node, NotReady (`KubeletNotReady`) until it
  has been seen for `join_delay` seconds, then Ready, as a real node does after its kubelet starts;
* an instance whose status check is impaired has a Node the kubelet no longer reports for:
  Ready=Unknown (`NodeStatusUnknown`) with the `node.kubernetes.io/unreachable` taint;
* an instance that left the group or was terminated loses its Node, and the pods bound to it are
  deleted (the pod garbage collector), so their controllers recreate them on the nodes that remain.

The seeded nodes of the other scenarios have no instance behind them and are left alone.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from pathlib import Path
from typing import Any

from runbook_sandbox.k8s import manifests
from runbook_sandbox.k8s.pods import delete_pod
from runbook_sandbox.k8s.store import Store, iso, now

__all__ = ["GROUP_LABEL", "CloudNodes", "wait_for_url"]

GROUP_LABEL = "runbook-sandbox/autoscaling-group"
UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}


def wait_for_url(path: Path, *, timeout: float = 30.0) -> str:
    """The AWS part's URL, once it has written it (both parts start in parallel; no port is guessed)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the AWS part did not write its URL to {path} in {timeout:.0f} s")
        time.sleep(0.05)
    return path.read_text().strip()


def _conditions(ready: str, reason: str, message: str, since: str) -> list[dict[str, Any]]:
    pressure = [
        ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ]
    unknown = ready == "Unknown"
    rows = [
        {
            "type": t,
            "status": "Unknown" if unknown else "False",
            "reason": "NodeStatusUnknown" if unknown else r,
            "message": "Kubelet stopped posting node status." if unknown else m,
        }
        for t, r, m in pressure
    ]
    rows.append({"type": "Ready", "status": ready, "reason": reason, "message": message})
    for row in rows:
        row.update(lastHeartbeatTime=since, lastTransitionTime=since)
    return rows


class CloudNodes:
    def __init__(
        self, store: Store, *, endpoint: str, group: str, cluster: str, join_delay: float = 2.0
    ) -> None:
        import boto3

        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        )
        from botocore.config import Config

        # one attempt, short timeouts: the loop itself retries, and botocore's back-off on a server that
        # is still starting would delay the first sync by seconds
        config = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=1, read_timeout=10)
        self.ec2 = session.client("ec2", endpoint_url=endpoint, config=config)
        self.autoscaling = session.client("autoscaling", endpoint_url=endpoint, config=config)
        for client in (self.ec2, self.autoscaling):  # the sandbox's own traffic: kept out of its request log
            client.meta.events.register(
                "before-sign.*.*", lambda request, **_: request.headers.add_header("x-sandbox-seed", "1")
            )
        self.store, self.group, self.cluster, self.join_delay = store, group, cluster, join_delay
        self.first_seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- reading the cloud -------------------------------------------------------------------

    def wait_for_group(self, *, timeout: float = 30.0) -> None:
        """Wait until the AWS part (started in parallel) has seeded the group and marked it so."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                groups = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[self.group])
                tags = {t["Key"] for g in groups["AutoScalingGroups"] for t in g.get("Tags") or []}
                if "runbook-sandbox:seeded" in tags:
                    return
            except Exception:  # not listening yet
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the AWS part did not seed Auto Scaling group {self.group} in {timeout:.0f} s"
                )
            time.sleep(0.1)

    def _instances(self) -> dict[str, dict[str, Any]]:
        groups = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[self.group])
        members = [
            i["InstanceId"]
            for g in groups["AutoScalingGroups"]
            for i in g["Instances"]
            if i["LifecycleState"] in ("Pending", "InService")
        ]
        if not members:
            return {}
        found = {
            i["InstanceId"]: i
            for r in self.ec2.describe_instances(InstanceIds=members)["Reservations"]
            for i in r["Instances"]
            if i["State"]["Name"] in ("pending", "running")
        }
        statuses = self.ec2.describe_instance_status(InstanceIds=list(found) or members)["InstanceStatuses"]
        for status in statuses:
            if status["InstanceId"] in found:
                impaired = "impaired" in (
                    status["SystemStatus"]["Status"],
                    status["InstanceStatus"]["Status"],
                )
                found[status["InstanceId"]]["impaired"] = impaired
        return found

    # --- reconciling nodes -------------------------------------------------------------------

    def _node(self, instance: dict[str, Any], created: dt.datetime) -> dict[str, Any]:
        zone = instance["Placement"]["AvailabilityZone"]
        node = manifests.node(instance["PrivateDnsName"], instance["PrivateIpAddress"], zone, created)
        node["metadata"]["labels"].update(
            {GROUP_LABEL: self.group, "alpha.eksctl.io/cluster-name": self.cluster}
        )
        node["spec"]["providerID"] = f"aws:///{zone}/{instance['InstanceId']}"
        return node

    def _wanted_status(self, instance: dict[str, Any], seen: float, clock: float) -> tuple[str, str, str]:
        if instance.get("impaired"):
            return "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status."
        if clock - seen < self.join_delay:
            return (
                "False",
                "KubeletNotReady",
                "container runtime network not ready: cni plugin not initialized",
            )
        return "True", "KubeletReady", "kubelet is posting ready status"

    def sync(self, *, at: dt.datetime | None = None, settled: bool = False) -> None:
        """One pass; `settled` (seeding) treats every healthy instance as joined long ago."""
        at = at or now()
        clock = time.monotonic()
        instances = self._instances()
        with self.store.lock:
            ours = {
                (n["spec"].get("providerID") or "").rsplit("/", 1)[-1]: n
                for n in self.store.items("nodes")
                if (n["metadata"].get("labels") or {}).get(GROUP_LABEL) == self.group
            }
            for instance_id, instance in instances.items():
                seen = self.first_seen.setdefault(instance_id, clock - (self.join_delay if settled else 0))
                node = ours.get(instance_id)
                if node is None:
                    node = self.store.create("nodes", self._node(instance, at), created=at)
                self._set_ready(node, *self._wanted_status(instance, seen, clock), at=at)
            for instance_id, node in ours.items():
                if instance_id not in instances:
                    self._remove(node, at=at)

    def _set_ready(
        self, node: dict[str, Any], status: str, reason: str, message: str, *, at: dt.datetime
    ) -> None:
        current: dict[str, Any] = next((c for c in node["status"]["conditions"] if c["type"] == "Ready"), {})
        if current.get("status") == status and current.get("reason") == reason:
            return
        updated = dict(node, status=dict(node["status"]), spec=dict(node["spec"]))
        updated["status"]["conditions"] = _conditions(status, reason, message, iso(at))
        taints = [t for t in node["spec"].get("taints") or [] if t["key"] != UNREACHABLE["key"]]
        if status == "Unknown":
            taints.append(dict(UNREACHABLE, timeAdded=iso(at)))
        if taints:
            updated["spec"]["taints"] = taints
        else:
            updated["spec"].pop("taints", None)
        self.store.replace("nodes", updated)

    def _remove(self, node: dict[str, Any], *, at: dt.datetime) -> None:
        name = node["metadata"]["name"]
        for pod in self.store.items("pods"):
            if pod["spec"].get("nodeName") == name:
                delete_pod(self.store, pod, at=at)
        self.store.delete("nodes", "", name)

    # --- the loop ------------------------------------------------------------------------------

    def start(self, tick: float = 0.5) -> None:
        def run() -> None:
            while not self._stop.wait(tick):
                try:
                    self.sync()
                except Exception:  # the AWS part may be going down first; keep trying
                    logging.getLogger(__name__).warning("cloud node sync failed", exc_info=True)

        self._thread = threading.Thread(target=run, name="k8s-cloud-nodes", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)
