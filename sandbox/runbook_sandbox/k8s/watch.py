"""`?watch=true`: newline-delimited JSON events, streamed from the store's write history.

kubectl's `rollout status`, `delete --wait` and the python client's `watch.Watch` read these. From
resourceVersion 0 a watch starts with an ADDED event per existing object, otherwise with every
change after the given version still in the history; then it follows new writes until
`timeoutSeconds` (at most 300 s) and ends, and the client re-lists or re-watches like it would
against a real API server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from runbook_sandbox.k8s.store import Store

MAX_SECONDS = 300.0


def _since(
    store: Store, plural: str, rv: int, wanted: Callable[[dict[str, Any]], bool]
) -> list[tuple[str, Any]]:
    """Changes after `rv`, oldest first (the history is scanned from its newest end)."""
    out = []
    for version, kind, kind_plural, obj in reversed(store.history):
        if version <= rv:
            break
        if kind_plural == plural and wanted(obj):
            out.append((kind, obj))
    out.reverse()
    return out


def stream(
    store: Store,
    *,
    plural: str,
    namespace: str | None,
    predicate: Callable[[dict[str, Any]], bool] | None,
    since: int,
    timeout: float,
) -> Iterator[bytes]:
    deadline = time.monotonic() + min(timeout, MAX_SECONDS)

    def wanted(obj: dict[str, Any]) -> bool:
        in_namespace = namespace is None or obj["metadata"].get("namespace") == namespace
        return in_namespace and (predicate is None or predicate(obj))

    with store.lock:
        if since == 0:
            backlog = [("ADDED", o) for o in store.items(plural, namespace) if wanted(o)]
        else:
            backlog = _since(store, plural, since, wanted)
        seen = int(store.resource_version)
    for kind, obj in backlog:
        yield json.dumps({"type": kind, "object": obj}).encode() + b"\n"
    while time.monotonic() < deadline:
        with store.lock:
            store.changed.wait(timeout=min(0.5, max(0.0, deadline - time.monotonic())))
            fresh = _since(store, plural, seen, wanted)
            seen = int(store.resource_version)
        for kind, obj in fresh:
            yield json.dumps({"type": kind, "object": obj}).encode() + b"\n"
