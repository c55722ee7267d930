"""Deployment and ReplicaSet arithmetic shared by the controller, the seeds and eviction.

Kept apart from the controller loop so the rules that decide what a runbook sees (template hashes,
revision numbers, the rolling-update budget, PodDisruptionBudget health) are small pure functions
over dicts.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from runbook_sandbox.k8s.selectors import selector_from_match
from runbook_sandbox.k8s.store import clone

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's rand.SafeEncodeString alphabet


def safe_encode(data: bytes, length: int) -> str:
    return "".join(_SAFE[b % len(_SAFE)] for b in data[:length])


def template_hash(template: dict[str, Any]) -> str:
    clean = strip_hash(template)
    digest = hashlib.sha256(json.dumps(clean, sort_keys=True).encode()).digest()
    return safe_encode(digest, 10)


def strip_hash(template: dict[str, Any]) -> dict[str, Any]:
    clean = clone(template)
    labels = (clean.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(HASH_LABEL, None)
    return clean


def same_template(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return strip_hash(a) == strip_hash(b)


def revision(obj: dict[str, Any]) -> int:
    try:
        return int((obj["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def controller_uid(obj: dict[str, Any]) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref["uid"])
    return None


def owner_ref(owner: dict[str, Any], *, kind: str, api_version: str) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def scaled(value: Any, total: int, *, round_up: bool) -> int:
    """An IntOrString (`25%`, `1`) resolved against `total`."""
    if value is None:
        return 0
    if isinstance(value, str) and value.endswith("%"):
        exact = int(value[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value)


def rolling_budget(deployment: dict[str, Any]) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) in pods."""
    desired = int(deployment["spec"].get("replicas", 1))
    rolling = (deployment["spec"].get("strategy") or {}).get("rollingUpdate") or {}
    surge = scaled(rolling.get("maxSurge", "25%"), desired, round_up=True)
    unavailable = scaled(rolling.get("maxUnavailable", "25%"), desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def new_replicaset(deployment: dict[str, Any], *, revision_number: int) -> dict[str, Any]:
    meta, spec = deployment["metadata"], deployment["spec"]
    pod_hash = template_hash(spec["template"])
    template = clone(spec["template"])
    template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pod_hash
    selector = clone(spec["selector"])
    selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
    desired = int(spec.get("replicas", 1))
    surge, _ = rolling_budget(deployment)
    annotations = {
        "deployment.kubernetes.io/desired-replicas": str(desired),
        "deployment.kubernetes.io/max-replicas": str(desired + surge),
        REVISION: str(revision_number),
    }
    if CHANGE_CAUSE in (meta.get("annotations") or {}):
        annotations[CHANGE_CAUSE] = meta["annotations"][CHANGE_CAUSE]
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{meta['name']}-{pod_hash}",
            "namespace": meta["namespace"],
            "labels": dict(template["metadata"]["labels"]),
            "annotations": annotations,
            "ownerReferences": [owner_ref(deployment, kind="Deployment", api_version="apps/v1")],
            "generation": 1,
        },
        "spec": {
            "replicas": 0,
            "minReadySeconds": spec.get("minReadySeconds", 0),
            "selector": selector,
            "template": template,
        },
        "status": {"replicas": 0, "observedGeneration": 1},
    }


def pdb_health(pdb: dict[str, Any], pods: list[dict[str, Any]], *, is_ready: Any) -> dict[str, int]:
    """currentHealthy/desiredHealthy/expectedPods/disruptionsAllowed for the pods a PDB selects."""
    spec = pdb.get("spec") or {}
    matches = selector_from_match(spec.get("selector"))
    selected = [p for p in pods if p["metadata"]["namespace"] == pdb["metadata"]["namespace"] and matches(p)]
    expected = len(selected)
    healthy = sum(1 for p in selected if is_ready(p))
    if "minAvailable" in spec:
        desired = scaled(spec["minAvailable"], expected, round_up=True)
    else:
        desired = expected - scaled(spec.get("maxUnavailable", 0), expected, round_up=True)
    return {
        "currentHealthy": healthy,
        "desiredHealthy": max(desired, 0),
        "expectedPods": expected,
        "disruptionsAllowed": max(0, healthy - max(desired, 0)),
    }
