"""Generate the Kubernetes runbooks: pod_crashloop.ipynb and k8s_mitigation.ipynb.

Why a script: notebooks are committed without outputs and must follow the contract that
tests/test_notebooks.py enforces (documented first cell, a `parameters` cell, one `rk.` call per
step). Writing them from Python keeps the JSON valid and the diffs of this file readable.

    .venv/bin/python notebooks/_build/k8s.py
"""

from __future__ import annotations

from _notebook import write

PERMISSIONS = (
    "- **Kubernetes RBAC** (read): `get`, `list` on `pods`, `pods/log`, `events`, `nodes`, "
    "`namespaces`; `get`, `list` on `deployments`, `replicasets` (apps); `get`, `list` on `pods`, "
    "`nodes` in `metrics.k8s.io` (optional: without it usage is reported as unavailable).\n"
    "- **Kubernetes RBAC** (mitigate): `patch` on `deployments` (rollback, restart, set resources); "
    "`patch` on `deployments/scale` (scale); `delete` on `pods`; `patch` on `nodes` (cordon); "
    "`create` on `pods/eviction` (drain).\n"
    "- **EKS**: `eks:DescribeCluster` to build the kubeconfig (`aws eks update-kubeconfig`)."
)




CRASHLOOP = [
    ("md", f"""
# Pod CrashLoopBackOff

Why pods crash-loop (OOM, image, probe, config, app), which rollout caused it, and a guarded fix.

**When to use**: pods in `CrashLoopBackOff`, `OOMKilled`, `ImagePullBackOff` or
`CreateContainerConfigError`; restart counts climbing; a deployment stuck after a rollout.

**What it may change** (only with `dry_run = False`): by `mitigation` — `recommended` applies what
the diagnosis recommends; `rollback` patches the deployment's pod template back to a previous
revision (`kubectl rollout undo`); `raise_memory` raises the crashing container's memory limit by the
computed amount (`kubectl set resources`); `restart` rolls every pod (`kubectl rollout restart`);
`none` changes nothing. Every change replaces pods through a rolling update.

**How to undo**: the `undo` line of the plan — a rollback is undone by rolling back to the revision
shown as `from_revision`; a memory raise by setting the previous limit; a restart cannot be undone
(it only replaces pods).

**Permissions needed**:
{PERMISSIONS}
"""),
    ("params", """
namespace = "payments"  # namespace of the crash-looping workload
deployment = "api"  # deployment name; empty: use selector
selector = ""  # label selector (kubectl -l syntax) used when deployment is empty
context = ""  # kubeconfig context; empty: the current context
mitigation = "recommended"  # recommended, none, rollback, raise_memory or restart
revision = 0  # rollback: the revision to return to; 0: the one before the current
verify_timeout_s = 180  # after applying: wait this long for the rollout and for restarts to stop
dry_run = True  # True: show and record the plan, change nothing
"""),
    ("code", "import runbook_kit as rk"),
    ("md", "## 1. Check pod status\n\n`kubectl get pods -o wide`: status, restarts, last termination, node."),
    ("code", """
pods = rk.k8s.pod_status(namespace=namespace, deployment=deployment, selector=selector, context=context)
pods
"""),
    ("code", "rk.k8s.plot_restarts(pods, title=f\"Restarts per pod: {namespace}/{deployment or selector}\")"),
    ("md", "## 2. Check the deployment and its replica sets"),
    ("code", "rk.k8s.deployment_status(namespace=namespace, deployment=deployment, context=context)"),
    ("md", "## 3. Describe the pod: events\n\nThe pod with the most restarts, oldest event first."),
    ("code", """
pod = pods.pod.iloc[0] if len(pods) else ""  # the pod with the most restarts
rk.k8s.pod_events(namespace=namespace, pod=pod, context=context)
"""),
    ("md", "## 4. Check logs of the previous container\n\n`kubectl logs --previous`, with error signatures."),
    ("code", "rk.k8s.container_logs(namespace=namespace, pod=pod, previous=True, tail=50, context=context)"),
    ("md", "## 5. Check resource limits and usage\n\nRequests and limits per container; usage from "
           "metrics.k8s.io when the cluster serves it."),
    ("code", """
resources = rk.k8s.container_resources(namespace=namespace, deployment=deployment, selector=selector,
                                       context=context)
resources
"""),
    ("code", "rk.k8s.plot_memory(resources, title=f\"Memory vs limit: {namespace}/{deployment}\")"),
    ("md", "## 6. Check the rollout history\n\nRevisions with image and resources, and what changed in the "
           "latest one."),
    ("code", "rk.k8s.rollout_history(namespace=namespace, deployment=deployment, context=context)"),
    ("code", "rk.k8s.revision_diff(namespace=namespace, deployment=deployment, context=context)"),
    ("md", """
## 7. Diagnose

Each crash-looping container is classified (OOMKilled, bad image, failing probe, config error,
application error); the crashes are related to the latest rollout; a mitigation is recommended.
"""),
    ("code", """
diagnosis = rk.k8s.diagnose_crashloop(namespace=namespace, deployment=deployment, selector=selector,
                                      context=context)
diagnosis
"""),
    ("md", """
## 8. Mitigate: the recommended (or chosen) action

The plan shows the change, the equivalent `kubectl` command and how to undo it. With
`dry_run = True` the API server only validates it (`dryRun=All`).
"""),
    ("code", """
plan = rk.k8s.plan_mitigation(mitigation=mitigation, diagnosis=diagnosis, revision_number=revision,
                              context=context)
plan
"""),
    ("code", "result = rk.apply(plan, dry_run=dry_run)\nresult.outcome"),
    ("md", "## 9. Verify: rollout available, restarts stopped\n\nWaits only after a change was applied; "
           "otherwise checks once."),
    ("code", """
rk.k8s.verify_rollout(namespace=namespace, deployment=diagnosis.deployment or deployment,
                      timeout_s=verify_timeout_s if result.applied else 0, context=context)
"""),
]

MITIGATION = [
    ("md", f"""
# Kubernetes mitigation

Guarded Kubernetes mitigations: rollback, scale, restart, delete pod, cordon, drain.

**When to use**: you already know the fix — roll a bad deploy back, add replicas, restart pods that
hold bad state, delete a stuck pod, take a bad node out of service — and want it guarded and recorded.

**What it may change** (only with `dry_run = False`), by `action`: `status` changes nothing;
`rollback` patches the deployment's pod template to `revision` (0: the previous one); `scale` sets
`replicas`; `restart` rolls every pod; `delete_pod` deletes `pod` (its controller recreates it);
`cordon` / `uncordon` mark `node` (un)schedulable; `drain` cordons `node` and evicts its pods through
the Eviction API (DaemonSet and mirror pods stay; PodDisruptionBudgets are respected), refused when
more than `max_pods` pods would be evicted.

**How to undo**: the `undo` line of the plan — rollback to the former revision, scale back to the
former count, `kubectl uncordon` after cordon/drain (evicted pods do not move back); a restart or a
deleted pod cannot be undone.

**Permissions needed**:
{PERMISSIONS}
"""),
    ("params", """
action = "status"  # status, rollback, scale, restart, delete_pod, cordon, uncordon or drain
namespace = "payments"  # namespace of the deployment or pod
deployment = "api"  # deployment for rollback, scale, restart
replicas = -1  # scale: the new replica count; -1: not set
revision = 0  # rollback: the revision to return to; 0: the one before the current
pod = ""  # delete_pod: the pod to delete
node = ""  # cordon, uncordon, drain: the node; empty: status of every node
max_pods = 10  # drain: refuse to evict more pods than this (blast radius)
verify_timeout_s = 180  # after a deployment change: wait this long for the rollout
context = ""  # kubeconfig context; empty: the current context
dry_run = True  # True: show and record the plan, change nothing
"""),
    ("code", "import runbook_kit as rk"),
    ("md", "## 1. Check pod status"),
    ("code", "rk.k8s.pod_status(namespace=namespace, deployment=deployment, context=context)"),
    ("md", "## 2. Check the deployment and its rollout history"),
    ("code", "rk.k8s.deployment_status(namespace=namespace, deployment=deployment, context=context)"),
    ("code", "rk.k8s.rollout_history(namespace=namespace, deployment=deployment, context=context)"),
    ("md", "## 3. Check node status\n\nReady, cordoned, pressure flags, requests against allocatable."),
    ("code", "rk.k8s.node_status(node=node, context=context)"),
    ("md", "## 4. Mitigate: the chosen action\n\nThe plan names every object it touches and the "
           "equivalent `kubectl` command."),
    ("code", """
plan = rk.k8s.plan_action(action=action, namespace=namespace, deployment=deployment, replicas=replicas,
                          revision_number=revision, pod=pod, node=node, max_pods=max_pods, context=context)
plan
"""),
    ("code", "result = rk.apply(plan, dry_run=dry_run)\nresult.outcome"),
    ("md", "## 5. Verify\n\nA deployment change is verified (rollout available, no restarts); a node "
           "change shows the node again."),
    ("code", """
deployment_changed = result.applied and action in ("rollback", "scale", "restart")
rk.k8s.verify_rollout(namespace=namespace, deployment=deployment,
                      timeout_s=verify_timeout_s if deployment_changed else 0, context=context)
"""),
    ("code", "rk.k8s.node_status(node=node, context=context)"),
]


if __name__ == "__main__":
    for name, spec in (("pod_crashloop", CRASHLOOP), ("k8s_mitigation", MITIGATION)):
        print(write(name, spec))
