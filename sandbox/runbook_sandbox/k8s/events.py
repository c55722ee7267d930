"""core/v1 Events, aggregated like the real event recorder: one object per (object, reason, message)
whose `count` and `lastTimestamp` grow, so `kubectl describe` shows `BackOff (x12 over 25m)`.

Events older than an hour are dropped, like the API server's default event TTL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from runbook_sandbox.k8s.store import Store, iso, parse_time

TTL = dt.timedelta(hours=1)


def involved(obj: dict[str, Any], *, field_path: str = "") -> dict[str, Any]:
    meta = obj["metadata"]
    ref = {
        "kind": obj["kind"],
        "namespace": meta.get("namespace", ""),
        "name": meta["name"],
        "uid": meta["uid"],
        "apiVersion": obj["apiVersion"],
        "resourceVersion": meta.get("resourceVersion", ""),
    }
    if field_path:
        ref["fieldPath"] = field_path
    return ref


def record(
    store: Store,
    obj: dict[str, Any],
    *,
    reason: str,
    type_: str = "Normal",
    message: str,
    component: str,
    host: str = "",
    field_path: str = "",
    count: int | None = None,
    first: dt.datetime,
    last: dt.datetime | None = None,
    now: dt.datetime,
) -> None:
    """Create or update the aggregated event; `count=None` adds one occurrence."""
    last = last or first
    if now - last > TTL:
        return
    meta = obj["metadata"]
    namespace = meta.get("namespace") or "default"
    key = hashlib.sha256(f"{meta['uid']}/{reason}/{field_path}/{message}".encode()).hexdigest()[:16]
    name = f"{meta['name']}.{key}"
    with store.lock:
        current = store.get("events", namespace, name)
        if current is not None:
            new_count = current["count"] + 1 if count is None else count
            if new_count == current["count"] and current["lastTimestamp"] == iso(last):
                return
            updated = dict(current, count=new_count, lastTimestamp=iso(last))
            updated["metadata"] = dict(current["metadata"])
            store.replace("events", updated)
            return
        source = {"component": component}
        if host:
            source["host"] = host
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": involved(obj, field_path=field_path),
            "reason": reason,
            "message": message,
            "source": source,
            "firstTimestamp": iso(first),
            "lastTimestamp": iso(last),
            "count": 1 if count is None else count,
            "type": type_,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": host or component,
        }
        store.create("events", event, created=first)


def expire(store: Store, *, now: dt.datetime) -> None:
    with store.lock:
        for event in store.items("events"):
            last = parse_time(event.get("lastTimestamp")) or now
            if now - last > TTL:
                store.delete("events", event["metadata"]["namespace"], event["metadata"]["name"])
