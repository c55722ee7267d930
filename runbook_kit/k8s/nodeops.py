"""Node mitigations as guarded plans: cordon, uncordon, drain.

Drain follows `kubectl drain`: cordon first, then evict every pod on the node through the Eviction
API (so PodDisruptionBudgets are honoured by the API server), skipping DaemonSet-managed pods (their
controller would recreate them in place) and mirror pods (the kubelet owns them). The pods to evict
are the plan's `targets` and `max_targets` is its blast radius: the guard refuses a drain that would
evict more. An eviction the API answers with 429 (a PDB would be violated) is not retried blindly:
the drain reports which pods are blocked and fails, leaving the node cordoned.
"""

from __future__ import annotations

from typing import Any

from runbook_kit.errors import Throttled
from runbook_kit.guard import Plan
from runbook_kit.k8s import _api

__all__ = ["drain_targets", "plan_cordon", "plan_drain", "plan_uncordon"]

MIRROR = "kubernetes.io/config.mirror"


def _node_observer(api: Any, node: str) -> Any:
    def observe() -> dict[str, Any]:
        obj = _api.read(api.read_node, node, op=f"read node {node}")
        pods = _api.list_items(
            api.list_pod_for_all_namespaces, op=f"list pods on {node}", field_selector=f"spec.nodeName={node}"
        )
        return {
            "node": node,
            "unschedulable": bool((obj.get("spec") or {}).get("unschedulable")),
            "pods": len(drain_targets(pods)[0]),
        }

    return observe


def _set_unschedulable(api: Any, node: str, unschedulable: bool, *, dry_run: bool) -> dict[str, Any]:
    """The cordon / uncordon patch (uncordon removes the field, as kubectl does)."""
    verb = "cordon" if unschedulable else "uncordon"
    return _api.write(
        api.patch_node,
        node,
        {"spec": {"unschedulable": unschedulable or None}},
        op=f"{verb} node {node}",
        dry_run=dry_run,
    )


def _cordon_plan(node: str, *, unschedulable: bool, context: str, core: Any, reason: str) -> Plan:
    api = _api.core(context, core)
    obj = _api.read(api.read_node, node, op=f"read node {node}")
    current = bool((obj.get("spec") or {}).get("unschedulable"))
    verb, inverse = ("cordon", "uncordon") if unschedulable else ("uncordon", "cordon")

    def execute(dry_run: bool) -> dict[str, Any]:
        return _set_unschedulable(api, node, unschedulable, dry_run=dry_run)

    return Plan(
        action=verb,
        target=f"node/{node}",
        backend="k8s",
        command=f"kubectl {verb} {node}",
        execute=execute,
        observe=_node_observer(api, node),
        server_dry_run=True,
        targets=[f"node/{node}"],
        changes={
            "unschedulable_before": current,
            "unschedulable": unschedulable,
        },
        nothing_to_do=current == unschedulable,
        reason=reason,
        undo=f"kubectl {inverse} {node}",
    )


def plan_cordon(*, node: str, context: str = "", core: Any | None = None, reason: str = "") -> Plan:
    """`kubectl cordon`: no new pods are scheduled on the node; running pods stay."""
    return _cordon_plan(node, unschedulable=True, context=context, core=core, reason=reason)


def plan_uncordon(*, node: str, context: str = "", core: Any | None = None, reason: str = "") -> Plan:
    """`kubectl uncordon`: the node takes new pods again."""
    return _cordon_plan(node, unschedulable=False, context=context, core=core, reason=reason)


def drain_targets(pods: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """(pods to evict, [(pod, why skipped)]) like kubectl drain: DaemonSet/mirror/finished pods stay."""
    evict, skipped = [], []
    for pod in pods:
        meta = pod.get("metadata") or {}
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        ref = _api.owner(pod)
        if ref and ref.get("kind") == "DaemonSet":
            skipped.append((key, "DaemonSet-managed"))
        elif MIRROR in (meta.get("annotations") or {}):
            skipped.append((key, "mirror pod"))
        elif (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            skipped.append((key, "finished"))
        elif meta.get("deletionTimestamp"):
            skipped.append((key, "already terminating"))
        else:
            evict.append(pod)
    return evict, skipped


def plan_drain(
    *, node: str, max_pods: int = 20, context: str = "", core: Any | None = None, reason: str = ""
) -> Plan:
    """`kubectl drain --ignore-daemonsets`: cordon, then evict each pod (PDBs respected)."""
    api = _api.core(context, core)
    _api.read(api.read_node, node, op=f"read node {node}")
    pods = _api.list_items(
        api.list_pod_for_all_namespaces, op=f"list pods on {node}", field_selector=f"spec.nodeName={node}"
    )
    evict, skipped = drain_targets(pods)
    names = [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in evict]

    def execute(dry_run: bool) -> dict[str, Any]:
        _set_unschedulable(api, node, True, dry_run=dry_run)
        evicted, blocked = [], []
        for pod in evict:
            ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
            body = {
                "apiVersion": "policy/v1",
                "kind": "Eviction",
                "metadata": {"name": name, "namespace": ns},
            }
            if dry_run:
                body["deleteOptions"] = {"dryRun": ["All"]}
            try:
                _api.write(
                    api.create_namespaced_pod_eviction,
                    name,
                    ns,
                    body,
                    op=f"evict pod {ns}/{name}",
                    dry_run=dry_run,
                )
                evicted.append(f"{ns}/{name}")
            except Throttled as exc:  # 429: the eviction would violate a PodDisruptionBudget
                blocked.append(f"{ns}/{name}: {exc.message}")
        if blocked:
            raise Throttled(
                "k8s",
                f"drain node {node}",
                f"{len(blocked)} eviction(s) refused by a PodDisruptionBudget (429)"
                f"{' in the dry run' if dry_run else ', node stays cordoned'}; "
                f"{'would evict' if dry_run else 'evicted'} {len(evicted)}: {'; '.join(blocked[:5])}",
            )
        return {"evicted": evicted, "blocked": blocked}

    return Plan(
        action="drain",
        target=f"node/{node}",
        backend="k8s",
        command=f"kubectl drain {node} --ignore-daemonsets --delete-emptydir-data",
        execute=execute,
        observe=_node_observer(api, node),
        server_dry_run=True,
        targets=names,
        max_targets=max_pods,
        changes={"evict": len(names), "skipped": [f"{k} ({why})" for k, why in skipped]},
        excluded=skipped,
        reason=reason,
        undo=f"kubectl uncordon {node} (evicted pods are recreated by their controllers "
        f"elsewhere; they do not move back)",
    )
