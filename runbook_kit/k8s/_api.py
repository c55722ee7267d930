"""The seam between the k8s helpers and the Kubernetes client: raw JSON, pagination, errors.

Why raw JSON: the official client's model deserialisation (`V1Pod.from_dict` over every nested
field) costs seconds per thousand pods, and runbooks only read a few fields. Lists are requested
with `_preload_content=False`, parsed with `json.loads`, and walked page by page with
`limit`/`continue` so a 10,000-pod namespace never arrives as one giant response. Every call runs
inside `backend_call`, so only the kit's errors leave this package. Clients come from
`runbook_kit.clients` only (the import-linter contract); `context` is passed through.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from runbook_kit import clients
from runbook_kit.errors import NotFound, backend_call

PAGE_SIZE = 500
REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
HASH_LABEL = "pod-template-hash"


def ctx(context: str) -> str | None:
    return context or None


def core(context: str = "", client: Any | None = None) -> Any:
    return client or clients.core_v1(context=ctx(context))


def apps(context: str = "", client: Any | None = None) -> Any:
    return client or clients.apps_v1(context=ctx(context))


def policy(context: str = "", client: Any | None = None) -> Any:
    return client or clients.policy_v1(context=ctx(context))


def custom(context: str = "", client: Any | None = None) -> Any:
    return client or clients.custom_objects(context=ctx(context))


def _decode(response: Any) -> Any:
    data = getattr(response, "data", response)
    if isinstance(data, bytes | str):
        return json.loads(data)
    return data


def list_items(
    call: Callable[..., Any], *args: Any, op: str, page_size: int = PAGE_SIZE, **kwargs: Any
) -> list[dict[str, Any]]:
    """Every item of a list call, page by page, parsed from raw JSON."""
    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        extra = {"_continue": token} if token else {}
        with backend_call("k8s", op):
            doc = _decode(call(*args, limit=page_size, _preload_content=False, **extra, **kwargs))
        items.extend(doc.get("items") or [])
        token = (doc.get("metadata") or {}).get("continue") or None
        if not token:
            return items


def read(call: Callable[..., Any], *args: Any, op: str, **kwargs: Any) -> dict[str, Any]:
    """One object as a plain dict (raw JSON, no model classes)."""
    with backend_call("k8s", op):
        return dict(_decode(call(*args, _preload_content=False, **kwargs)))


def write(call: Callable[..., Any], *args: Any, op: str, dry_run: bool, **kwargs: Any) -> dict[str, Any]:
    """A write; `dry_run=True` sends dryRun=All so the server validates without persisting."""
    if dry_run:
        kwargs["dry_run"] = "All"
    with backend_call("k8s", op):
        doc = dict(_decode(call(*args, _preload_content=False, **kwargs)) or {})
    return summary(doc, dry_run=dry_run)


def summary(doc: dict[str, Any], *, dry_run: bool) -> dict[str, Any]:
    """What the record keeps of a write's response: the object's identity, not all of it."""
    meta = doc.get("metadata") or {}
    out = {
        "kind": doc.get("kind", ""),
        "name": meta.get("name", ""),
        "namespace": meta.get("namespace", ""),
        "resourceVersion": meta.get("resourceVersion", ""),
        "generation": meta.get("generation"),
        "server_dry_run": dry_run,
    }
    return {k: v for k, v in out.items() if v not in ("", None)}


def namespace_exists(namespace: str, *, context: str = "", core_api: Any | None = None) -> None:
    """Raise NotFound naming the namespace (a list in a missing namespace is just empty)."""
    api = core(context, core_api)
    read(api.read_namespace, namespace, op=f"read namespace {namespace}")


def read_deployment(api: Any, namespace: str, deployment: str, *, context: str = "") -> dict[str, Any]:
    """A deployment; when it is missing because its namespace is, the error names the namespace."""
    try:
        return read(
            api.read_namespaced_deployment,
            deployment,
            namespace,
            op=f"read deployment {namespace}/{deployment}",
        )
    except NotFound:
        namespace_exists(namespace, context=context)
        raise


def require_namespace(namespace: str | None) -> str:
    """The namespace of a live read; unset (None) is a parameter error, never "every namespace"."""
    if namespace is None:
        from runbook_kit.errors import ParameterError

        raise ParameterError("namespace is not set: give the namespace of the workload (or a snapshot)")
    return namespace


def parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def owner(obj: dict[str, Any], kind: str | None = None) -> dict[str, Any] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") and (kind is None or ref.get("kind") == kind):
            return dict(ref)
    return None


def selector_string(match_labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))
