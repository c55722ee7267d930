"""Where incident records live: a local folder (default) or `s3://bucket/prefix`.

Layout, the same for every backend:

    <store>/<incident-id>/<UTC-timestamp>-<runbook>.ipynb   the executed, redacted notebook
    <store>/<incident-id>/<UTC-timestamp>-<runbook>.html    a self-contained HTML export
    <store>/<incident-id>/incident.json                      runs, parameters, status, findings, actions

A store is picked by the location's scheme (papermill's idea of an I/O registry); adding `gs://`
later is one class. S3 goes through `runbook_kit.clients`, so it honours the same credentials,
endpoint (the sandbox's moto server) and timeouts as every other AWS call.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import random
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from runbook_kit.errors import Conflict, NotFound, ParameterError, RunbookError, backend_call

__all__ = [
    "FallbackStore",
    "LocalStore",
    "S3Store",
    "Store",
    "StoreUnwritable",
    "default_fallback",
    "open_store",
    "run_basename",
    "safe_key",
]


class StoreUnwritable(RunbookError):
    """Neither the store nor its fallback could take the record."""


# A key is "<incident>/<file>": path segments of letters, digits, '.', '_', '-' (no '..', '?', '#',
# no leading '/'); the same rule as incident ids, so a key means the same thing in a folder and on S3.
_SEGMENT = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9._-]{0,254}$")


def safe_key(key: str) -> str:
    """The key itself when every segment is plain, else ParameterError (never normalised silently)."""
    parts = key.split("/")
    if not key or any(not _SEGMENT.fullmatch(p) or ".." in p or p == "." for p in parts):
        raise ParameterError(f"refusing a store key with an unsafe path: {key!r}")
    return key


class Store(Protocol):
    @property
    def location(self) -> str: ...

    def url(self, key: str) -> str: ...
    def write(self, key: str, data: bytes) -> str: ...
    def read(self, key: str) -> bytes | None: ...
    def update_json(self, key: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]: ...
    def incident_keys(self, name: str) -> list[str]: ...
    def records(self, incident: str) -> list[str]: ...


def run_basename(runbook: str, started: dt.datetime) -> str:
    return f"{started.astimezone(dt.UTC).strftime('%Y%m%dT%H%M%S.%fZ')}-{runbook}"


class LocalStore:
    def __init__(self, location: str) -> None:
        self.location = location
        self.root = Path(location).expanduser().resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / safe_key(key)).resolve()
        if self.root not in path.parents:
            raise ParameterError(f"refusing to write outside the store: {key!r}")
        return path

    def url(self, key: str) -> str:
        return str(self._path(key))

    def write(self, key: str, data: bytes) -> str:
        """Atomic: a reader (or a crash) never sees half a record."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return str(path)

    def read(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def incident_keys(self, name: str) -> list[str]:
        """`<incident>/<name>` for every incident folder that holds a file `name` (e.g. incident.json)."""
        return sorted(f"{p.parent.name}/{p.name}" for p in self.root.glob(f"*/{name}") if p.is_file())

    def records(self, incident: str) -> list[str]:
        """`<incident>/<record>` (no extension) of every run record (.ipynb) of the incident."""
        folder = self._path(f"{incident}/incident.json").parent
        return sorted(f"{incident}/{p.stem}" for p in folder.glob("*.ipynb") if p.is_file())

    @contextlib.contextmanager
    def _lock(self, key: str) -> Iterator[None]:
        """An flock on `.<name>.lock` beside the key: opened without following a symlink, never truncated."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = path.parent / f".{path.name}.lock"
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(lock, flags, 0o644)
        except OSError as exc:  # ELOOP: a symlink was planted where the lock belongs
            raise ParameterError(f"refusing the lock file {str(lock)!r}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def update_json(self, key: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        with self._lock(key):
            raw = self.read(key)
            data = change(json.loads(raw) if raw else {})
            self.write(key, json.dumps(data, indent=2, sort_keys=False).encode())
            return data


class S3Store:
    """Records on S3. incident.json updates are compare-and-swap: a conditional put (`If-Match` the
    ETag read, or `If-None-Match: *` for a new file) retried on 412, so concurrent runs and commands
    on several machines (20 Jobs of one incident) lose no update.

    Retries back off exponentially with full jitter (a random wait in [0, min(cap, base·2^attempt)]),
    so colliding writers spread out instead of colliding again in step; at most MAX_ATTEMPTS tries
    (about 10 s of waiting in all). When they run out, update_json raises Conflict: a run catches it,
    says so, and its record (its own object, never contended) is written all the same; the next
    reader of the incident adds the missing entry from the record (recovery.reconcile_index)."""

    MAX_ATTEMPTS = 20
    BACKOFF_BASE, BACKOFF_CAP = 0.05, 1.0  # seconds

    def __init__(self, location: str) -> None:
        self.location = location
        rest = location[len("s3://"):]
        self.bucket, _, prefix = rest.partition("/")
        if not self.bucket:
            raise ParameterError(f"store {location!r}: expected s3://bucket/prefix")
        self.prefix = prefix.strip("/")
        if self.prefix:
            try:
                safe_key(self.prefix)
            except ParameterError:
                raise ParameterError(
                    f"store {location!r}: the prefix may hold only letters, digits, '.', '_', '-' and '/' "
                    "(no '..', '?', '#', empty segments)") from None

    def _key(self, key: str) -> str:
        key = safe_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def _client(self) -> Any:
        from runbook_kit import clients

        return clients.aws("s3")

    def write(self, key: str, data: bytes, **condition: str) -> str:
        content_type = ("text/html" if key.endswith(".html") else "text/markdown" if key.endswith(".md")
                        else "application/json")
        with backend_call("aws", f"write {self.url(key)}"):
            self._client().put_object(Bucket=self.bucket, Key=self._key(key), Body=data,
                                      ContentType=content_type, **condition)
        return self.url(key)

    def _read_versioned(self, key: str) -> tuple[bytes | None, str | None]:
        client = self._client()
        try:
            with backend_call("aws", f"read {self.url(key)}"):
                obj = client.get_object(Bucket=self.bucket, Key=self._key(key))
                return bytes(obj["Body"].read()), str(obj["ETag"])
        except NotFound:
            return None, None

    def read(self, key: str) -> bytes | None:
        return self._read_versioned(key)[0]

    def incident_keys(self, name: str) -> list[str]:
        """`<incident>/<name>` for every incident under the prefix that holds an object `name`."""
        prefix = f"{self.prefix}/" if self.prefix else ""
        keys: list[str] = []
        with backend_call("aws", f"list s3://{self.bucket}/{prefix}"):
            paginator = self._client().get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    rest = str(obj["Key"])[len(prefix):]
                    if rest.count("/") == 1 and rest.endswith(f"/{name}"):
                        keys.append(rest)
        return sorted(keys)

    def records(self, incident: str) -> list[str]:
        """`<incident>/<record>` (no extension) of every run record (.ipynb) of the incident."""
        prefix = self._key(f"{incident}/incident.json")[: -len("incident.json")]
        keys: list[str] = []
        with backend_call("aws", f"list s3://{self.bucket}/{prefix}"):
            paginator = self._client().get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    name = str(obj["Key"])[len(prefix):]
                    if "/" not in name and name.endswith(".ipynb"):
                        keys.append(f"{incident}/{name.removesuffix('.ipynb')}")
        return sorted(keys)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry `attempt` (0-based): full jitter under an exponential bound."""
        return min(self.BACKOFF_CAP, self.BACKOFF_BASE * 2 ** attempt) * random.random()  # noqa: S311

    def update_json(self, key: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        for attempt in range(self.MAX_ATTEMPTS):
            raw, etag = self._read_versioned(key)
            data = change(json.loads(raw) if raw else {})
            condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            try:
                self.write(key, json.dumps(data, indent=2).encode(), **condition)
                return data
            except Conflict:  # someone wrote in between: read again and re-apply the change
                time.sleep(self.backoff(attempt))
        raise Conflict("aws", f"update {self.url(key)}",
                       f"still contended after {self.MAX_ATTEMPTS} attempts")


class FallbackStore:
    """`primary` until a write to it fails, then `fallback` for the rest of the run (a record is never lost).

    `fell_back` says why the switch happened (None while on the primary). Reads go to the store in use.
    Both failing raises StoreUnwritable with one line naming both.
    """

    def __init__(self, primary: Store, fallback: Store) -> None:
        self.primary, self.fallback = primary, fallback
        self.current: Store = primary
        self.fell_back: str | None = None

    @property
    def location(self) -> str:
        return self.current.location

    def url(self, key: str) -> str:
        return self.current.url(key)

    def _attempt(self, call: Callable[[Store], Any]) -> Any:
        if self.current is self.primary:
            try:
                return call(self.primary)
            except Exception as exc:
                self.fell_back = f"{type(exc).__name__}: {exc}"[:300]
                self.current = self.fallback
        try:
            return call(self.fallback)
        except Exception as exc:
            raise StoreUnwritable(
                f"the record could not be written to {self.primary.location} ({self.fell_back}) nor to the "
                f"fallback {self.fallback.location} ({type(exc).__name__}: {exc})"[:600]) from exc

    def write(self, key: str, data: bytes) -> str:
        return str(self._attempt(lambda store: store.write(key, data)))

    def read(self, key: str) -> bytes | None:
        return self.current.read(key)

    def update_json(self, key: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Contention (Conflict: the store answered, others kept winning) is raised as it is: the
        store is reachable, and moving the index to the fallback would split it in two."""
        if self.current is self.primary:
            try:
                return dict(self.primary.update_json(key, change))
            except Conflict:
                raise
            except Exception as exc:
                self.fell_back = f"{type(exc).__name__}: {exc}"[:300]
                self.current = self.fallback
        return dict(self._attempt(lambda store: store.update_json(key, change)))

    def incident_keys(self, name: str) -> list[str]:
        return self.current.incident_keys(name)

    def records(self, incident: str) -> list[str]:
        return self.current.records(incident)


def default_fallback() -> str:
    """Where a record goes when its store cannot be written: $RUNBOOK_FALLBACK_STORE or a local folder."""
    return os.path.expanduser(os.environ.get("RUNBOOK_FALLBACK_STORE", "~/.local/state/runbook_kit/unsent"))


_SCHEMES: dict[str, Callable[[str], Store]] = {"s3://": S3Store}


def open_store(location: str | None = None) -> Store:
    """The store for a location (default: settings' store, i.e. $RUNBOOK_STORE or ./incidents)."""
    if location is None:
        from runbook_kit import settings

        location = settings.get().store
    for prefix, cls in _SCHEMES.items():
        if location.startswith(prefix):
            return cls(location)
    if "://" in location:
        raise ParameterError(f"store {location!r}: unsupported scheme (use a folder or s3://bucket/prefix)")
    return LocalStore(location)
