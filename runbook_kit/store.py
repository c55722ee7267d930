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
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from runbook_kit.errors import Conflict, NotFound, ParameterError, backend_call

__all__ = ["LocalStore", "S3Store", "Store", "open_store", "run_basename"]


class Store(Protocol):
    location: str

    def url(self, key: str) -> str: ...
    def write(self, key: str, data: bytes) -> str: ...
    def read(self, key: str) -> bytes | None: ...
    def update_json(self, key: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]: ...


def run_basename(runbook: str, started: dt.datetime) -> str:
    return f"{started.astimezone(dt.UTC).strftime('%Y%m%dT%H%M%S.%fZ')}-{runbook}"


class LocalStore:
    def __init__(self, location: str) -> None:
        self.location = location
        self.root = Path(location).expanduser().resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
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

    @contextlib.contextmanager
    def _lock(self, key: str) -> Iterator[None]:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.parent / f".{path.name}.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    def update_json(self, key: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        with self._lock(key):
            raw = self.read(key)
            data = change(json.loads(raw) if raw else {})
            self.write(key, json.dumps(data, indent=2, sort_keys=False).encode())
            return data


class S3Store:
    """Records on S3. incident.json updates are compare-and-swap: a conditional put (`If-Match` the
    ETag read, or `If-None-Match: *` for a new file) retried on 412, so concurrent runs and commands
    on several machines lose no update."""

    MAX_ATTEMPTS = 20

    def __init__(self, location: str) -> None:
        self.location = location
        rest = location[len("s3://"):]
        self.bucket, _, prefix = rest.partition("/")
        if not self.bucket:
            raise ParameterError(f"store {location!r}: expected s3://bucket/prefix")
        self.prefix = prefix.strip("/")

    def _key(self, key: str) -> str:
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

    def update_json(self, key: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        for attempt in range(self.MAX_ATTEMPTS):
            raw, etag = self._read_versioned(key)
            data = change(json.loads(raw) if raw else {})
            condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            try:
                self.write(key, json.dumps(data, indent=2).encode(), **condition)
                return data
            except Conflict:  # someone wrote in between: read again and re-apply the change
                time.sleep(min(0.05 * 2 ** attempt, 1.0) * random.random())  # noqa: S311
        raise Conflict("aws", f"update {self.url(key)}",
                       f"still contended after {self.MAX_ATTEMPTS} attempts")


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
