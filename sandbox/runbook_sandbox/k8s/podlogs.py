"""pods/log for Job pods: the captured output of their processes (runtime.py), served like the kubelet's.

The log file holds CRI lines (`<RFC3339Nano> <stream> F <text>`); the query parameters behave as for
the other pods (container, previous, tailLines, timestamps, sinceSeconds, sinceTime, limitBytes), and
`follow=true` streams new lines as the process writes them, ending when it has ended and every line
is sent (what `kubectl logs -f job/NAME` reads).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runbook_sandbox.k8s import logs
from runbook_sandbox.k8s.runtime import Container, Runtime
from runbook_sandbox.k8s.status import bad_request
from runbook_sandbox.k8s.store import now

Line = tuple[dt.datetime, str]
POLL = 0.05


def _parse(raw: str) -> Line | None:
    stamp, _, rest = raw.partition(" ")
    _, _, rest = rest.partition(" ")  # stream
    _, _, text = rest.partition(" ")  # F (full line)
    try:
        moment = dt.datetime.fromisoformat(stamp[:26] + "+00:00")
    except ValueError:
        return None
    return moment, text.rstrip("\n")


def _lines(path: Path, offset: int) -> tuple[list[Line], int]:
    """Complete lines from byte `offset` on, and the offset after the last complete line."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return [], offset
    end = data.rfind(b"\n") + 1
    out = [line for line in (_parse(r) for r in data[:end].decode(errors="replace").splitlines()) if line]
    return out, offset + end


def _container(pod: dict[str, Any], query: dict[str, str]) -> str:
    name = pod["metadata"]["name"]
    containers = [c["name"] for c in pod["spec"]["containers"]]
    container = query.get("container")
    if not container:
        if len(containers) > 1:
            raise bad_request(
                f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
            )
        return containers[0]
    if container not in containers:
        raise bad_request(f"container {container} is not valid for pod {name}")
    return container


def read(runtime: Runtime, pod: dict[str, Any], query: dict[str, str]) -> tuple[str, Iterator[bytes] | None]:
    """(text, None), or ("", stream) when following."""
    name = pod["metadata"]["name"]
    container = _container(pod, query)
    if logs.parse_bool(query, "previous"):
        raise bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
    box = runtime.get(pod["metadata"]["uid"], container)
    if box is None:
        reason = "ContainerCreating"
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            if cs["name"] == container and "waiting" in cs.get("state", {}):
                reason = cs["state"]["waiting"].get("reason", reason)
        raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: {reason}')
    lines, offset = _lines(box.log, 0)
    text = logs.render(lines, {k: v for k, v in query.items() if k != "limitBytes"}, at=now())
    if not logs.parse_bool(query, "follow"):
        if "limitBytes" in query:
            text = text.encode()[: int(query["limitBytes"])].decode(errors="ignore")
        return text, None
    return "", _follow(box, text, offset, query)


def _follow(box: Container, first: str, offset: int, query: dict[str, str]) -> Iterator[bytes]:
    with_ts = {"timestamps": query["timestamps"]} if "timestamps" in query else {}
    budget = int(query["limitBytes"]) if "limitBytes" in query else None
    pending = first.encode()
    while True:
        if pending:
            if budget is not None:
                pending = pending[:budget]
                budget -= len(pending)
            yield pending
            if budget is not None and budget <= 0:
                return
        ended = box.done.is_set()  # read once more after the end: the last lines land before `done`
        lines, offset = _lines(box.log, offset)
        pending = logs.render(lines, with_ts, at=now()).encode() if lines else b""
        if ended and not pending:
            return
        if not pending:
            time.sleep(POLL)
