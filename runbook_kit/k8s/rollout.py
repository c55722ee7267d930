"""Rollout history: one row per ReplicaSet revision, and what changed between the two latest.

A Deployment keeps its history as ReplicaSets (owner = the deployment, annotation
`deployment.kubernetes.io/revision`); `kubectl rollout history` reads the same thing. The diff of
the two latest revisions (image, resources, env, command, probes per container) is usually the
cause of a crash loop that starts right after a deploy, so it is computed here, on plain dicts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from runbook_kit import record
from runbook_kit.k8s import _api
from runbook_kit.k8s._api import CHANGE_CAUSE, HASH_LABEL, REVISION

if TYPE_CHECKING:  # pragma: no cover
    from runbook_kit.k8s.snapshot import WorkloadSnapshot

__all__ = ["history_rows", "replicasets_of", "revision", "revision_diff", "rollout_history", "template_diff"]


def revision(obj: dict[str, Any]) -> int:
    return int(((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION, 0) or 0)


def replicasets_of(
    *,
    namespace: str,
    deployment: str,
    context: str = "",
    apps: Any | None = None,
    dep: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The deployment's ReplicaSets (owned by its uid), oldest revision first."""
    api = _api.apps(context, apps)
    if deployment and dep is None:
        dep = _api.read_deployment(api, namespace, deployment, context=context)
    kwargs: dict[str, Any] = {}
    if dep:
        labels = ((dep.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if labels:
            kwargs["label_selector"] = _api.selector_string(labels)
    items = _api.list_items(
        api.list_namespaced_replica_set, namespace, op=f"list replicasets in {namespace}", **kwargs
    )
    if dep:
        uid = dep["metadata"].get("uid")
        items = [rs for rs in items if (_api.owner(rs, "Deployment") or {}).get("uid") == uid]
    return sorted(items, key=revision)


def _containers(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c.get("name", ""): c for c in ((template.get("spec") or {}).get("containers") or [])}


def _resources(c: dict[str, Any]) -> str:
    res = c.get("resources") or {}
    parts = [
        f"{kind}.{k}={v}" for kind in ("requests", "limits") for k, v in sorted((res.get(kind) or {}).items())
    ]
    return " ".join(parts)


def template_diff(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, str]]:
    """Differences between two pod templates, per container and field (pure)."""
    changes: list[dict[str, str]] = []
    a, b = _containers(old), _containers(new)
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b:
            changes.append(
                {
                    "container": name,
                    "field": "container",
                    "old": "present" if name in a else "",
                    "new": "present" if name in b else "",
                }
            )
            continue
        ca, cb = a[name], b[name]
        for kind in ("requests", "limits"):
            ra = (ca.get("resources") or {}).get(kind) or {}
            rb = (cb.get("resources") or {}).get(kind) or {}
            for key in sorted(set(ra) | set(rb)):
                if ra.get(key) != rb.get(key):
                    changes.append(
                        {
                            "container": name,
                            "field": f"{kind}.{key}",
                            "old": str(ra.get(key, "")),
                            "new": str(rb.get(key, "")),
                        }
                    )
        for field in ("image", "command", "args", "livenessProbe", "readinessProbe", "startupProbe"):
            if ca.get(field) != cb.get(field):
                changes.append(
                    {
                        "container": name,
                        "field": field,
                        "old": str(ca.get(field, "")),
                        "new": str(cb.get(field, "")),
                    }
                )
        env_a = {e.get("name"): e for e in ca.get("env") or []}
        env_b = {e.get("name"): e for e in cb.get("env") or []}
        for key in sorted(set(env_a) | set(env_b)):
            if env_a.get(key) != env_b.get(key):
                changes.append(
                    {
                        "container": name,
                        "field": f"env.{key}",
                        "old": "set" if key in env_a else "",
                        "new": "set" if key in env_b else "",
                    }
                )
    return changes


COLUMNS_ROLLOUT_HISTORY = [
    "revision",
    "replicaset",
    "created",
    "change_cause",
    "images",
    "resources",
    "replicas",
    "ready",
    "template_hash",
]
COLUMNS_REVISION_DIFF = ["from_revision", "to_revision", "container", "field", "old", "new"]


def _no_deployment(namespace: str, columns: list[str]) -> pd.DataFrame:
    record.finding(
        f"No deployment given in {namespace}: rollout history not read", severity="info", namespace=namespace
    )
    return pd.DataFrame(columns=columns)


def _replicasets(
    snap: WorkloadSnapshot | None, namespace: str | None, deployment: str, context: str, apps: Any
) -> list[dict[str, Any]] | None:
    """The snapshot's replica sets, or a live read; None when there is no deployment to read."""
    if snap is not None:
        return [dict(rs) for rs in snap.replicasets] if snap.deployment else None
    namespace = _api.require_namespace(namespace)
    if not deployment:
        return None
    return replicasets_of(namespace=namespace, deployment=deployment, context=context, apps=apps)


def rollout_history(
    snap: WorkloadSnapshot | None = None,
    /,
    *,
    namespace: str | None = None,
    deployment: str = "",
    context: str = "",
    apps: Any | None = None,
) -> pd.DataFrame:
    """`kubectl rollout history` with the image and resources of every revision, and its time.

    Given a `WorkloadSnapshot`, the replica sets it read (no API call); otherwise a live read.
    """
    rss = _replicasets(snap, namespace, deployment, context, apps)
    if rss is None:
        return _no_deployment(snap.namespace if snap else str(namespace), COLUMNS_ROLLOUT_HISTORY)
    return history_rows(rss)


def history_rows(rss: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per revision of a deployment's replica sets (pure)."""
    rows = []
    for rs in rss:
        template = (rs.get("spec") or {}).get("template") or {}
        containers = list(_containers(template).values())
        rows.append(
            {
                "revision": revision(rs),
                "replicaset": rs["metadata"]["name"],
                "created": rs["metadata"].get("creationTimestamp"),
                "change_cause": (rs["metadata"].get("annotations") or {}).get(CHANGE_CAUSE, ""),
                "images": ", ".join(c.get("image", "") for c in containers),
                "resources": "; ".join(f"{c.get('name')}: {_resources(c)}" for c in containers),
                "replicas": (rs.get("spec") or {}).get("replicas", 0),
                "ready": (rs.get("status") or {}).get("readyReplicas", 0),
                "template_hash": (rs["metadata"].get("labels") or {}).get(HASH_LABEL, ""),
            }
        )
    df = pd.DataFrame(rows, columns=COLUMNS_ROLLOUT_HISTORY)
    df["created"] = pd.to_datetime(df["created"], utc=True, format="ISO8601")
    return df


def revision_diff(
    snap: WorkloadSnapshot | None = None,
    /,
    *,
    namespace: str | None = None,
    deployment: str = "",
    context: str = "",
    apps: Any | None = None,
) -> pd.DataFrame:
    """What differs between the two latest revisions (one row per container field).

    Given a `WorkloadSnapshot`, the replica sets it read (no API call); otherwise a live read.
    """
    rss = _replicasets(snap, namespace, deployment, context, apps)
    if rss is None:
        return _no_deployment(snap.namespace if snap else str(namespace), COLUMNS_REVISION_DIFF)
    columns = COLUMNS_REVISION_DIFF
    if len(rss) < 2:
        return pd.DataFrame(columns=columns)
    old, new = rss[-2], rss[-1]
    rows = [
        {"from_revision": revision(old), "to_revision": revision(new), **change}
        for change in template_diff(old["spec"]["template"], new["spec"]["template"])
    ]
    return pd.DataFrame(rows, columns=columns)
