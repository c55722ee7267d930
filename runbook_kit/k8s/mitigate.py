"""Application mitigations as guarded plans: rollout undo, scale, rollout restart, raise memory, delete pod.

Each helper reads what it needs, describes the change as a `guard.Plan` (with its kubectl
equivalent, the objects it touches and how to undo it) and changes nothing; `rk.apply(plan,
dry_run=...)` executes it. Every execute sends `dryRun=All` when asked for a dry run, so the API
server validates the exact request without persisting it. `observe()` reads the state each write
changes — after the controller has seen the new generation, so before/after show the revision move.

Rollback is done the way kubectl does it: the deployment's pod template is replaced (JSON patch)
by the chosen ReplicaSet's template, minus its pod-template-hash label; the deployment controller
then makes that ReplicaSet the newest revision.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from runbook_kit.errors import NotFound, ParameterError
from runbook_kit.guard import Plan
from runbook_kit.k8s import _api
from runbook_kit.k8s._api import CHANGE_CAUSE, HASH_LABEL
from runbook_kit.k8s.rollout import replicasets_of, revision

__all__ = ["plan_delete_pod", "plan_restart", "plan_rollback", "plan_scale", "plan_set_memory"]

SETTLE_S = 10.0  # observe() waits at most this long for the controller to see a new generation


def _deployment(namespace: str, deployment: str, context: str, apps: Any) -> tuple[Any, dict[str, Any]]:
    """The apps client and the deployment a plan patches, as it is now."""
    api = _api.apps(context, apps)
    return api, _api.read_deployment(api, namespace, deployment, context=context)


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list(((obj.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or [])


def deployment_observer(api: Any, namespace: str, deployment: str) -> Any:
    """A callable reading revision, generation, replicas, images and memory limits of a deployment."""

    def observe() -> dict[str, Any]:
        deadline = time.monotonic() + SETTLE_S
        while True:
            dep = _api.read_deployment(api, namespace, deployment)
            st = dep.get("status") or {}
            if (
                st.get("observedGeneration", 0) >= dep["metadata"].get("generation", 0)
                or time.monotonic() > deadline
            ):
                break
            time.sleep(0.25)
        annotations = ((dep["spec"].get("template") or {}).get("metadata") or {}).get("annotations") or {}
        return {
            "revision": revision(dep),
            "generation": dep["metadata"].get("generation"),
            "replicas": dep["spec"].get("replicas"),
            "ready": st.get("readyReplicas", 0),
            "images": {c["name"]: c.get("image") for c in _containers(dep)},
            "memory_limits": {
                c["name"]: ((c.get("resources") or {}).get("limits") or {}).get("memory")
                for c in _containers(dep)
            },
            "restarted_at": annotations.get("kubectl.kubernetes.io/restartedAt"),
        }

    return observe


def _deployment_patch_plan(
    api: Any,
    *,
    namespace: str,
    deployment: str,
    body: Any,
    action: str,
    command: str,
    changes: dict[str, Any],
    reason: str,
    undo: str,
    verb: str = "",
    scale: bool = False,
    nothing_to_do: bool = False,
) -> Plan:
    """A plan patching one deployment (`scale=True`: its /scale subresource, as a merge patch).

    `verb` (default: `action`) names the write in errors: `{verb} {namespace}/{deployment}`.
    """
    name = f"deployment/{deployment}"
    op = f"{verb or action} {namespace}/{deployment}"
    extra = {"_content_type": "application/merge-patch+json"} if scale else {}

    def execute(dry_run: bool) -> dict[str, Any]:
        call = api.patch_namespaced_deployment_scale if scale else api.patch_namespaced_deployment
        return _api.write(call, deployment, namespace, body, op=op, dry_run=dry_run, **extra)

    return Plan(
        action=action,
        target=f"{name} in namespace {namespace}",
        backend="k8s",
        command=command,
        execute=execute,
        observe=deployment_observer(api, namespace, deployment),
        server_dry_run=True,
        targets=[name],
        changes=changes,
        reason=reason,
        undo=undo,
        nothing_to_do=nothing_to_do,
    )


def plan_rollback(
    *,
    namespace: str,
    deployment: str,
    revision_number: int | None = None,
    context: str = "",
    apps: Any | None = None,
    reason: str = "",
) -> Plan:
    """`kubectl rollout undo` to `revision_number` (None: the revision before the current one)."""
    api, dep = _deployment(namespace, deployment, context, apps)
    current = revision(dep)
    rss = replicasets_of(namespace=namespace, deployment=deployment, context=context, apps=api, dep=dep)
    if revision_number is not None:
        target = next((rs for rs in rss if revision(rs) == revision_number), None)
        if target is None:
            known = ", ".join(str(revision(rs)) for rs in rss) or "none"
            raise NotFound(
                "k8s",
                f"rollout undo {namespace}/{deployment}",
                f"revision {revision_number} not found (revisions: {known})",
            )
    else:
        older = [rs for rs in rss if revision(rs) < current]
        if not older:
            raise NotFound(
                "k8s",
                f"rollout undo {namespace}/{deployment}",
                f"no revision before the current one ({current}) to roll back to",
            )
        target = older[-1]
    template = copy.deepcopy(target["spec"]["template"])
    (template.setdefault("metadata", {}).get("labels") or {}).pop(HASH_LABEL, None)
    patch: list[dict[str, Any]] = [{"op": "replace", "path": "/spec/template", "value": template}]
    cause = (target["metadata"].get("annotations") or {}).get(CHANGE_CAUSE)
    if cause:
        if (dep["metadata"].get("annotations")) is None:
            patch.append({"op": "add", "path": "/metadata/annotations", "value": {}})
        patch.append(
            {"op": "add", "path": "/metadata/annotations/kubernetes.io~1change-cause", "value": cause}
        )
    to = revision(target)
    name = f"deployment/{deployment}"

    return _deployment_patch_plan(
        api,
        namespace=namespace,
        deployment=deployment,
        body=patch,
        action="rollout undo",
        command=f"kubectl rollout undo {name} -n {namespace} --to-revision={to}",
        changes={
            "from_revision": current,
            "to_revision": to,
            "to_images": ", ".join(
                c.get("image", "") for c in template.get("spec", {}).get("containers", [])
            ),
            "to_replicaset": target["metadata"]["name"],
        },
        reason=reason or f"restore the pod template of revision {to}",
        undo=f"kubectl rollout undo {name} -n {namespace} --to-revision={current}",
    )


def plan_scale(
    *,
    namespace: str,
    deployment: str,
    replicas: int,
    context: str = "",
    apps: Any | None = None,
    reason: str = "",
) -> Plan:
    """`kubectl scale deployment --replicas=N` through the /scale subresource."""
    if replicas < 0:
        raise ParameterError(f"replicas must be >= 0, not {replicas}")
    api, dep = _deployment(namespace, deployment, context, apps)
    current = dep["spec"].get("replicas", 1)
    name = f"deployment/{deployment}"

    return _deployment_patch_plan(
        api,
        namespace=namespace,
        deployment=deployment,
        body={"spec": {"replicas": replicas}},
        action="scale",
        command=f"kubectl scale {name} -n {namespace} --replicas={replicas}",
        changes={
            "replicas_before": current,
            "replicas": replicas,
        },
        nothing_to_do=current == replicas,
        reason=reason,
        undo=f"kubectl scale {name} -n {namespace} --replicas={current}",
        scale=True,
    )


def plan_restart(
    *, namespace: str, deployment: str, context: str = "", apps: Any | None = None, reason: str = ""
) -> Plan:
    """`kubectl rollout restart`: a new restartedAt annotation on the template rolls every pod."""
    api, dep = _deployment(namespace, deployment, context, apps)
    name = f"deployment/{deployment}"
    at = _api.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": at}}}}}

    return _deployment_patch_plan(
        api,
        namespace=namespace,
        deployment=deployment,
        body=body,
        action="rollout restart",
        command=f"kubectl rollout restart {name} -n {namespace}",
        changes={"restartedAt": at, "revision": revision(dep)},
        reason=reason,
        undo=f"a restart cannot be undone; `kubectl rollout undo {name} -n {namespace}` returns to "
        f"the template before it (same pods spec)",
    )


def plan_set_memory(
    *,
    namespace: str,
    deployment: str,
    memory: str,
    container: str = "",
    context: str = "",
    apps: Any | None = None,
    reason: str = "",
) -> Plan:
    """`kubectl set resources --limits=memory=...` on one container (requests lowered to fit if above)."""
    from runbook_kit.k8s.quantity import memory_bytes

    api, dep = _deployment(namespace, deployment, context, apps)
    containers = _containers(dep)
    chosen = (
        next((c for c in containers if c.get("name") == container), None)
        if container
        else (containers[0] if containers else None)
    )
    if chosen is None:
        raise NotFound("k8s", f"set resources {namespace}/{deployment}", f"no container {container!r}")
    if memory_bytes(memory) is None:
        raise ParameterError(f"memory must be a quantity such as 512Mi, not {memory!r}")
    res = chosen.get("resources") or {}
    old_limit = (res.get("limits") or {}).get("memory", "")
    entry: dict[str, Any] = {"name": chosen["name"], "resources": {"limits": {"memory": memory}}}
    old_request = (res.get("requests") or {}).get("memory")
    if old_request and (memory_bytes(old_request) or 0) > (memory_bytes(memory) or 0):
        entry["resources"]["requests"] = {"memory": memory}
    body = {"spec": {"template": {"spec": {"containers": [entry]}}}}
    name = f"deployment/{deployment}"

    return _deployment_patch_plan(
        api,
        namespace=namespace,
        deployment=deployment,
        body=body,
        action="set memory limit",
        command=f"kubectl set resources {name} -n {namespace} -c {chosen['name']} --limits=memory={memory}",
        changes={
            "container": chosen["name"],
            "memory_limit_before": old_limit,
            "memory_limit": memory,
        },
        nothing_to_do=old_limit == memory,
        reason=reason,
        undo=(
            f"kubectl set resources {name} -n {namespace} -c {chosen['name']} --limits=memory={old_limit}"
            if old_limit
            else f"kubectl rollout undo {name}"
        ),
        verb="set resources",
    )


def plan_delete_pod(
    *, namespace: str, pod: str, context: str = "", core: Any | None = None, reason: str = ""
) -> Plan:
    """`kubectl delete pod`: its controller replaces it (an unmanaged pod is gone for good)."""
    api = _api.core(context, core)
    obj = _api.read(api.read_namespaced_pod, pod, namespace, op=f"read pod {namespace}/{pod}")
    ref = _api.owner(obj)

    def execute(dry_run: bool) -> dict[str, Any]:
        return _api.write(
            api.delete_namespaced_pod, pod, namespace, op=f"delete pod {namespace}/{pod}", dry_run=dry_run
        )

    def observe() -> dict[str, Any]:
        try:
            cur = _api.read(api.read_namespaced_pod, pod, namespace, op=f"read pod {namespace}/{pod}")
        except NotFound:
            return {"pod": pod, "exists": False}
        return {
            "pod": pod,
            "exists": True,
            "uid": cur["metadata"].get("uid"),
            "deleting": bool(cur["metadata"].get("deletionTimestamp")),
        }

    return Plan(
        action="delete pod",
        target=f"pod/{pod} in namespace {namespace}",
        backend="k8s",
        command=f"kubectl delete pod {pod} -n {namespace}",
        execute=execute,
        observe=observe,
        server_dry_run=True,
        targets=[f"{namespace}/{pod}"],
        max_targets=1,
        changes={"owner": f"{ref['kind']}/{ref['name']}" if ref else "none (unmanaged: not recreated)"},
        reason=reason,
        undo="the owning controller recreates the pod; an unmanaged pod cannot be restored",
    )
