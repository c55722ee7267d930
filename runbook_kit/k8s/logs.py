"""Container logs, current and previous, and the error signatures that name a crash's cause.

`kubectl logs --previous` is where a crash-looping container explains itself: the last lines before
an OOM kill show the heap climbing, a panic or traceback names the bug, "connection refused" or a
missing variable names the dependency. The signature table is plain regexes so it is cheap to
extend and to unit-test on text.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pandas as pd

from runbook_kit import record
from runbook_kit.errors import BackendError, Forbidden, Unavailable, backend_call
from runbook_kit.k8s import _api

if TYPE_CHECKING:  # pragma: no cover
    from runbook_kit.k8s.snapshot import WorkloadSnapshot

__all__ = ["SIGNATURES", "container_logs", "log_rows", "log_signatures", "memory_peak_from_logs", "read_log"]

SIGNATURES: dict[str, re.Pattern[str]] = {
    "out of memory": re.compile(
        r"OutOfMemory|out of memory|MemoryError|heap out of memory|gc overhead|"
        r"cannot allocate memory|std::bad_alloc",
        re.I,
    ),
    "panic": re.compile(r"^panic:|goroutine \d+ \[running\]|fatal error:", re.I | re.M),
    "traceback": re.compile(
        r"Traceback \(most recent call last\)|Exception in thread|^\s+at [\w.$]+\(", re.M
    ),
    "connection refused": re.compile(r"connection refused|ECONNREFUSED", re.I),
    "dns failure": re.compile(
        r"no such host|Name or service not known|Temporary failure in name resolution", re.I
    ),
    "missing config": re.compile(
        r"(environment variable|env var|config(uration)?|setting)\S*\s.*"
        r"(not set|missing|required|not found)|KeyError: '[A-Z_]+'|"
        r"no such file or directory",
        re.I,
    ),
    "permission denied": re.compile(r"permission denied|access denied|forbidden", re.I),
}
_MEMORY = re.compile(
    r"(?:heap_used|heap|rss|memory|mem)[_ ]?(?:used)?[_ ]?(?:mib|mb)?\s*[=:]\s*(\d+(?:\.\d+)?)"
    r"\s*(MiB|Mi|MB|M)?\b",
    re.I,
)


def read_log(
    *,
    namespace: str,
    pod: str,
    container: str = "",
    previous: bool = False,
    tail: int = 200,
    timestamps: bool = True,
    context: str = "",
    core: Any | None = None,
) -> str:
    api = _api.core(context, core)
    kwargs: dict[str, Any] = {"previous": previous, "tail_lines": tail, "timestamps": timestamps}
    if container:
        kwargs["container"] = container
    op = f"read {'previous ' if previous else ''}logs of {namespace}/{pod}"
    with backend_call("k8s", op):
        response = api.read_namespaced_pod_log(pod, namespace, _preload_content=False, **kwargs)
        data = response.data
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)


def log_signatures(text: str) -> list[str]:
    """The names of the error signatures present in a log text (pure)."""
    return [name for name, pattern in SIGNATURES.items() if pattern.search(text)]


def memory_peak_from_logs(text: str) -> float | None:
    """The largest memory figure (bytes) the app logged (`heap_used_mib=251`, `rss: 300MB`), if any."""
    values = [float(m.group(1)) for m in _MEMORY.finditer(text)]
    return max(values) * 1024**2 if values else None


def log_rows(text: str) -> pd.DataFrame:
    """Log text (`--timestamps`) as rows of time, line and matched signatures (pure)."""
    rows = []
    for line in text.splitlines():
        ts, _, message = line.partition(" ")
        if not ts[:4].isdigit():
            ts, message = "", line
        rows.append({"time": ts or None, "line": message, "signatures": ", ".join(log_signatures(message))})
    df = pd.DataFrame(rows, columns=["time", "line", "signatures"])
    df["time"] = pd.to_datetime(df["time"], utc=True, format="ISO8601")
    return df


def _snapshot_logs(snap: WorkloadSnapshot, pod: str, container: str, tail: int) -> pd.DataFrame:
    keys = [k for k in snap.logs if k[0] == pod and (not container or k[1] == container)]
    if not keys:
        why = next(
            (f"{c}: {e}" for (p, c), e in snap.log_errors.items() if p == pod), ""
        ) or "not crash-looping, or beyond the pods whose logs the snapshot reads"
        df = log_rows("")
        df.attrs["note"] = f"no previous log of {pod or '(no pod)'} in the snapshot ({why})"
        return df
    frames = [log_rows(snap.logs[k]).assign(container=k[1]) for k in keys]
    return pd.concat(frames, ignore_index=True).groupby("container").tail(tail).reset_index(drop=True)


def container_logs(
    snap: WorkloadSnapshot | None = None,
    /,
    *,
    namespace: str | None = None,
    pod: str = "",
    container: str = "",
    previous: bool = True,
    tail: int = 50,
    context: str = "",
    core: Any | None = None,
) -> pd.DataFrame:
    """A container's log lines (previous instance by default) with timestamps and matched signatures.

    A container that has not restarted has no previous instance: its current log is shown instead,
    and the record says so. Given a `WorkloadSnapshot`, the previous logs it read of `pod` (no API
    call; a `container` column tells the containers apart).
    """
    if snap is not None:
        return _snapshot_logs(snap, pod, container, tail)
    namespace = _api.require_namespace(namespace)
    if not pod:
        record.finding(f"No pod to read logs from in {namespace}", severity="info", namespace=namespace)
        return pd.DataFrame(columns=["time", "line", "signatures"])
    kwargs: dict[str, Any] = {
        "namespace": namespace,
        "pod": pod,
        "container": container,
        "tail": tail,
        "context": context,
    }
    try:
        text = read_log(previous=previous, core=core, **kwargs)
    except (Forbidden, Unavailable):
        raise
    except BackendError as exc:
        if not previous:
            raise
        record.finding(
            f"No previous container for {namespace}/{pod} ({exc.message or exc.reason}): "
            f"showing the current container's log",
            severity="info",
            pod=pod,
        )
        text = read_log(previous=False, core=core, **kwargs)
    return log_rows(text)
