"""The object store: plain dicts, one monotonic resourceVersion, copy-on-write.

Objects are kept as the JSON dicts clients see, never as models, so a 10,000-pod list is a sort and
a `json.dumps`, not a deserialisation. Stored dicts are never mutated in place: writers build a new
dict and `put` it, so a handler can serialise a list outside the lock while the controller keeps
writing. Each write bumps one counter (the resourceVersion of the object and of the next list) and
is appended to a bounded history that `watch` streams from.
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import json
import pickle
import threading
import uuid
from collections.abc import Callable
from typing import Any

from runbook_sandbox.k8s.resources import STORED, of_plural
from runbook_sandbox.k8s.status import already_exists, bad_request, conflict, not_found

Key = tuple[str, str]  # (namespace or "", name)
HISTORY = 20000


def clone(obj: Any) -> Any:
    """A deep copy of JSON-shaped data (pickle round trip: several times faster than copy.deepcopy)."""
    return pickle.loads(pickle.dumps(obj, pickle.HIGHEST_PROTOCOL))


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


class Store:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._rv = 1000
        self._objects: dict[str, dict[Key, dict[str, Any]]] = {plural: {} for plural in STORED}
        self._sorted: dict[str, dict[str | None, list[Key]]] = {plural: {} for plural in STORED}
        self._encoded: dict[int, tuple[dict[str, Any], bytes]] = {}
        self.history: collections.deque[tuple[int, str, str, dict[str, Any]]] = collections.deque(
            maxlen=HISTORY
        )

    @property
    def resource_version(self) -> str:
        return str(self._rv)

    def _bump(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _record(self, kind: str, plural: str, obj: dict[str, Any]) -> None:
        self.history.append((self._rv, kind, plural, obj))
        self.changed.notify_all()

    # --- reads ------------------------------------------------------------------------------

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self._objects[plural].get((namespace, name))

    def require(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        obj = self.get(plural, namespace, name)
        if obj is None:
            r = of_plural(plural)
            raise not_found(plural=plural, group=r.group, name=name)
        return obj

    def items(self, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Objects in key order (namespace, name); `namespace=None` means all namespaces."""
        with self.lock:
            table = self._objects[plural]
            return [table[k] for k in self._keys(plural, namespace)]

    def _keys(self, plural: str, namespace: str | None) -> list[Key]:
        """Sorted keys of one namespace (or all), cached until an object is added or removed."""
        cache = self._sorted[plural]
        keys = cache.get(namespace)
        if keys is None:
            table = self._objects[plural]
            keys = sorted(table) if namespace is None else sorted(k for k in table if k[0] == namespace)
            cache[namespace] = keys
        return keys

    def encoded(self, obj: dict[str, Any]) -> bytes:
        """The object's JSON, cached: stored objects never change, so each is serialised once."""
        hit = self._encoded.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        data = json.dumps(obj, separators=(",", ":")).encode()
        with self.lock:
            if len(self._encoded) > 200_000:
                self._encoded.clear()
            self._encoded[id(obj)] = (obj, data)
        return data

    def _forget(self, plural: str, old: dict[str, Any] | None, *, added_or_removed: bool) -> None:
        if old is not None:
            self._encoded.pop(id(old), None)
        if added_or_removed:
            self._sorted[plural].clear()

    def values(self, plural: str) -> list[dict[str, Any]]:
        """Objects in no particular order (cheaper than `items` when order does not matter)."""
        with self.lock:
            return list(self._objects[plural].values())

    def page(
        self,
        plural: str,
        *,
        namespace: str | None,
        predicate: Callable[[dict[str, Any]], bool] | None,
        limit: int,
        token: str | None,
    ) -> tuple[list[dict[str, Any]], str, str, int | None]:
        """(items, list resourceVersion, continue token or "", remaining count)."""
        with self.lock:
            rv = self.resource_version
            table = self._objects[plural]
            keys = self._keys(plural, namespace)
            start = 0
            if token:
                after = _decode_token(token)
                import bisect

                start = bisect.bisect_right(keys, after)
            out: list[dict[str, Any]] = []
            index = start
            while index < len(keys) and (limit <= 0 or len(out) < limit):
                obj = table[keys[index]]
                if predicate is None or predicate(obj):
                    out.append(obj)
                index += 1
            more = index < len(keys)
            if limit > 0 and more and predicate is not None:
                # only promise a next page when one really holds a match
                more = any(predicate(table[k]) for k in keys[index:])
            remaining = len(keys) - index if more and predicate is None else None
            next_token = _encode_token(rv, keys[index - 1]) if more and out else ""
            return out, rv, next_token, remaining

    # --- writes -----------------------------------------------------------------------------

    def stamp(self, obj: dict[str, Any], *, created: dt.datetime | None = None) -> dict[str, Any]:
        """Fill uid and creationTimestamp of a new object (does not store it)."""
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", iso(created or now()))
        return obj

    def create(
        self, plural: str, obj: dict[str, Any], *, dry_run: bool = False, created: dt.datetime | None = None
    ) -> dict[str, Any]:
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        with self.lock:
            if key in self._objects[plural]:
                r = of_plural(plural)
                raise already_exists(plural=plural, group=r.group, name=meta["name"])
            self.stamp(obj, created=created)
            if dry_run:
                return obj
            meta["resourceVersion"] = self._bump()
            self._objects[plural][key] = obj
            self._forget(plural, None, added_or_removed=True)
            self._record("ADDED", plural, obj)
            return obj

    def replace(
        self, plural: str, obj: dict[str, Any], *, expect_rv: str | None = None, dry_run: bool = False
    ) -> dict[str, Any]:
        """Store a new version of an existing object (generation bumps when `spec` changed)."""
        obj = dict(obj)
        meta = obj["metadata"] = dict(obj["metadata"])
        key = (meta.get("namespace", ""), meta["name"])
        with self.lock:
            current = self._objects[plural].get(key)
            r = of_plural(plural)
            if current is None:
                raise not_found(plural=plural, group=r.group, name=meta["name"])
            if expect_rv and expect_rv != current["metadata"]["resourceVersion"]:
                raise conflict(plural=plural, group=r.group, name=meta["name"])
            for fixed in ("uid", "creationTimestamp"):
                meta[fixed] = current["metadata"][fixed]
            if "generation" in current["metadata"]:
                generation = current["metadata"]["generation"]
                if obj.get("spec") != current.get("spec"):
                    generation += 1
                meta["generation"] = generation
            if dry_run:
                meta["resourceVersion"] = current["metadata"]["resourceVersion"]
                return obj
            meta["resourceVersion"] = self._bump()
            self._objects[plural][key] = obj
            self._forget(plural, current, added_or_removed=False)
            self._record("MODIFIED", plural, obj)
            return obj

    def delete(self, plural: str, namespace: str, name: str, *, dry_run: bool = False) -> dict[str, Any]:
        with self.lock:
            obj = self.require(plural, namespace, name)
            if dry_run:
                return obj
            del self._objects[plural][(namespace, name)]
            self._forget(plural, obj, added_or_removed=True)
            self._bump()
            self._record("DELETED", plural, obj)
            return obj

    def count(self, plural: str) -> int:
        return len(self._objects[plural])


def _encode_token(rv: str, key: Key) -> str:
    raw = json.dumps({"v": "sandbox/1", "rv": rv, "start": list(key)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> Key:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        return (str(data["start"][0]), str(data["start"][1]))
    except (ValueError, KeyError, IndexError, TypeError):
        raise bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
        ) from None
