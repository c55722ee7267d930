"""ConfigMap and Secret changes in a namespace: names and times only, never values.

Kubernetes keeps no history of a ConfigMap, but every write leaves its time in `managedFields`
(which manager, which operation, when); the newest of those, else the creation time, is when the
object last changed. Secrets are read the same way and only their name, type and times leave this
module: the data is dropped as soon as the JSON is parsed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from runbook_kit.k8s import _api

__all__ = ["COLUMNS", "config_changes", "config_rows"]

COLUMNS = ["time", "kind", "namespace", "name", "manager", "operation", "created"]


def config_rows(objects: list[tuple[str, dict[str, Any]]]) -> pd.DataFrame:
    """(kind, object) pairs -> one row per object with its last change (pure; values never read)."""
    rows = []
    for kind, obj in objects:
        meta = obj.get("metadata") or {}
        fields = [f for f in meta.get("managedFields") or [] if f.get("time")]
        last = max(fields, key=lambda f: str(f["time"])) if fields else {}
        rows.append(
            {
                "time": last.get("time") or meta.get("creationTimestamp"),
                "kind": kind,
                "namespace": meta.get("namespace"),
                "name": meta.get("name"),
                "manager": last.get("manager", ""),
                "operation": last.get("operation", "Create" if not last else ""),
                "created": meta.get("creationTimestamp"),
            }
        )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for column in ("time", "created"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame.sort_values("time", ascending=False, kind="stable").reset_index(drop=True)


def config_changes(
    *, namespace: str, minutes: float = 240, context: str = "", core: Any | None = None
) -> pd.DataFrame:
    """ConfigMaps and Secrets of the namespace changed within `minutes`, newest first (names, times)."""
    api = _api.core(context, core)
    objects: list[tuple[str, dict[str, Any]]] = []
    for kind, call in (("ConfigMap", api.list_namespaced_config_map), ("Secret", api.list_namespaced_secret)):
        for obj in _api.list_items(call, namespace, op=f"list {kind.lower()}s in {namespace}"):
            objects.append(
                (kind, {"metadata": obj.get("metadata") or {}})
            )  # data and stringData dropped here
    frame = config_rows(objects)
    since = pd.Timestamp(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes))
    return frame[frame["time"] >= since].reset_index(drop=True)
