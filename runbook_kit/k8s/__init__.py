"""Kubernetes helpers for runbooks: what is crash-looping, why, and guarded ways to fix it.

Modules of one idea each (status, logs, resources, rollout, nodes, classify, diagnose, mitigate,
nodeops, verify, plots); this package re-exports the public helpers (`rk.k8s.<name>`) and a test
keeps `__all__` equal to what is really exported. The Kubernetes client is reached only through
`runbook_kit.clients` (core_v1 / apps_v1 / policy_v1 / custom_objects, `context=` passed through).
"""

from runbook_kit.k8s.actions import ACTIONS, MITIGATIONS, plan_action, plan_mitigation
from runbook_kit.k8s.classify import CATEGORIES, ContainerCrash, classify_container, crashing_containers
from runbook_kit.k8s.config_changes import config_changes
from runbook_kit.k8s.diagnose import Diagnosis, diagnose_crashloop, recommend
from runbook_kit.k8s.instances import instance_nodes, node_for_instance, parse_provider_id
from runbook_kit.k8s.logs import container_logs, log_signatures, memory_peak_from_logs
from runbook_kit.k8s.mitigate import (
    plan_delete_pod,
    plan_noop,
    plan_restart,
    plan_rollback,
    plan_scale,
    plan_set_memory,
)
from runbook_kit.k8s.nodeops import drain_targets, plan_cordon, plan_drain, plan_uncordon
from runbook_kit.k8s.nodes import node_status
from runbook_kit.k8s.plots import plot_memory, plot_restarts
from runbook_kit.k8s.quantity import MemoryRaise, format_memory, memory_bytes, recommend_memory_limit
from runbook_kit.k8s.resources import container_resources
from runbook_kit.k8s.rollout import revision_diff, rollout_history, template_diff
from runbook_kit.k8s.status import deployment_status, pod_events, pod_rows, pod_status, replicaset_status
from runbook_kit.k8s.verify import VerifyResult, rollout_state, verify_rollout

__all__ = [
    "ACTIONS",
    "CATEGORIES",
    "MITIGATIONS",
    "ContainerCrash",
    "Diagnosis",
    "MemoryRaise",
    "VerifyResult",
    "classify_container",
    "config_changes",
    "container_logs",
    "container_resources",
    "crashing_containers",
    "deployment_status",
    "diagnose_crashloop",
    "drain_targets",
    "format_memory",
    "instance_nodes",  # breadth
    "log_signatures",
    "memory_bytes",
    "memory_peak_from_logs",
    "node_for_instance",  # breadth
    "node_status",
    "parse_provider_id",  # breadth
    "plan_action",
    "plan_cordon",
    "plan_delete_pod",
    "plan_drain",
    "plan_mitigation",
    "plan_noop",
    "plan_restart",
    "plan_rollback",
    "plan_scale",
    "plan_set_memory",
    "plan_uncordon",
    "plot_memory",
    "plot_restarts",
    "pod_events",
    "pod_rows",
    "pod_status",
    "recommend",
    "recommend_memory_limit",
    "replicaset_status",
    "revision_diff",
    "rollout_history",
    "rollout_state",
    "template_diff",
    "verify_rollout",
]
