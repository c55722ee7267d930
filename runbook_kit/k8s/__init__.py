"""Kubernetes steps for runbooks: what is crash-looping, why, and guarded ways to fix it.

`__all__` is what a runbook author calls (`rk.k8s.<name>`); the building blocks (classification,
quantities, row builders, the diagnosis and verify result types) stay importable from their modules
of one idea each (status, logs, resources, rollout, nodes, classify, diagnose, mitigate, nodeops,
actions, verify, plots) for tests and power users. A test keeps `__all__` equal to what is exported.

Names say what a step does (docs/design.md, "Naming"):
* a noun (`pod_status`, `rollout_history`) or `assess_*` / `find_*`: a read or a computation; it
  records nothing but a gap (a read that could not be done);
* snapshot first: `snap = workload_snapshot(...)` reads a workload once; the views (`pod_status`,
  `pod_events`, `container_logs`, `container_resources`, `rollout_history`, `revision_diff`,
  `deployment_status`, `replicaset_status`, `most_restarted_pod`) take it as first positional
  argument and make no API call, and `diagnose_crashloop(snap)` reasons on it. Called with keywords
  only, as before, they read live;
* `diagnose_*` / `check_*` / `verify_*`: records findings;
* `plan_*`: returns a `guard.Plan` and touches nothing; `rk.apply(plan, dry_run=...)` is the only
  verb that changes a system.

The Kubernetes client is reached only through `runbook_kit.clients`. This package imports no other
backend (import-linter `layers` contract).
"""

from runbook_kit.k8s.actions import plan_action, plan_mitigation
from runbook_kit.k8s.diagnose import diagnose_crashloop
from runbook_kit.k8s.instances import instance_nodes
from runbook_kit.k8s.logs import container_logs
from runbook_kit.k8s.mitigate import plan_delete_pod, plan_restart, plan_rollback, plan_scale, plan_set_memory
from runbook_kit.k8s.nodeops import plan_cordon, plan_drain, plan_uncordon
from runbook_kit.k8s.nodes import node_status
from runbook_kit.k8s.plots import plot_memory, plot_restarts
from runbook_kit.k8s.resources import container_resources
from runbook_kit.k8s.rollout import revision_diff, rollout_history
from runbook_kit.k8s.snapshot import workload_snapshot
from runbook_kit.k8s.status import (
    deployment_status,
    most_restarted_pod,
    pod_events,
    pod_status,
    replicaset_status,
)
from runbook_kit.k8s.verify import verify_rollout

__all__ = [
    "container_logs",
    "container_resources",
    "deployment_status",
    "diagnose_crashloop",
    "instance_nodes",
    "most_restarted_pod",
    "node_status",
    "plan_action",
    "plan_cordon",
    "plan_delete_pod",
    "plan_drain",
    "plan_mitigation",
    "plan_restart",
    "plan_rollback",
    "plan_scale",
    "plan_set_memory",
    "plan_uncordon",
    "plot_memory",
    "plot_restarts",
    "pod_events",
    "pod_status",
    "replicaset_status",
    "revision_diff",
    "rollout_history",
    "verify_rollout",
    "workload_snapshot",
]
