"""Structured entries in the incident record: findings, actions, events.

A runbook cell calls `rk.finding(...)`, `rk.action(...)` or `rk.event(...)`. Each writes one entry
as a display output with a custom MIME type (`application/vnd.runbook-kit.entry+json`) plus an HTML
and a plain-text rendering, so it reads well in JupyterLab and in the HTML export, and survives in
the `.ipynb` as data. The runner reads the entries back from the executed notebook (`read_entries`)
and copies them into notebook metadata, `incident.json` and the summary cell at the top.

The cell output is the source of truth because a kernel cannot write notebook metadata, and
because an interactive JupyterLab session saves outputs just like a headless run does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import json
from collections.abc import Iterable, Mapping
from typing import Any

from runbook_kit.redact import redact

__all__ = [
    "MIME",
    "SEVERITIES",
    "Entry",
    "action",
    "entries_this_session",
    "event",
    "finding",
    "read_entries",
    "summary",
    "summary_markdown",
]

MIME = "application/vnd.runbook-kit.entry+json"
SEVERITIES = ("info", "low", "medium", "high", "critical")
_ICONS = {"info": "ℹ️", "low": "🟢", "medium": "🟡", "high": "🟠", "critical": "🔴"}
_OUTCOME_ICONS = {"dry-run": "🧪", "applied": "✅", "failed": "❌", "refused": "⛔", "skipped": "⏭️"}
_MAX_ROWS = 50

_session: list[Entry] = []


@dataclasses.dataclass(frozen=True)
class Entry:
    """One line of the incident record."""

    kind: str  # finding | action | event
    title: str
    severity: str = "info"
    details: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    ts: str = ""
    outcome: str | None = None  # actions: dry-run | applied | failed | refused | skipped
    command: str | None = None  # actions: the equivalent kubectl / aws / SQL command

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Entry:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})

    def _ipython_display_(self) -> None:
        """Already shown when recorded; a cell ending in `rk.finding(...)` must not show it twice."""

    def one_line(self) -> str:
        if self.kind == "action":
            return f"[action:{self.outcome}] {self.title}"
        return f"[{self.kind}:{self.severity}] {self.title}"


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _jsonable(value: Any) -> Any:
    """DataFrames become row lists (cut to 50 rows), timestamps ISO strings, the rest JSON types."""
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # a pandas DataFrame
        rows = value.head(_MAX_ROWS).to_dict(orient="records")
        return {"rows": _jsonable(rows), "total_rows": len(value)}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if hasattr(value, "isoformat"):  # pandas Timestamp
        return value.isoformat()
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if value != value else value  # NaN is not JSON
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    return str(value)


def _emit(entry: Entry) -> Entry:
    entry = Entry.from_json(redact(entry.to_json()))
    _session.append(entry)
    bundle = {MIME: entry.to_json(), "text/html": _html(entry), "text/plain": entry.one_line()}
    try:
        from IPython import get_ipython

        in_kernel = get_ipython() is not None
    except ImportError:
        in_kernel = False
    if in_kernel:
        from IPython.display import display

        display(bundle, raw=True)
    else:
        print(entry.one_line())
    return entry


def finding(title: str, *, severity: str = "info", **details: Any) -> Entry:
    """Record what the runbook found: `rk.finding("3 pods OOMKilled", severity="high", pods=df)`."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, not {severity!r}")
    return _emit(Entry("finding", title, severity, _jsonable(details), _now()))


def event(title: str, **details: Any) -> Entry:
    """Record a timeline event: a page sent, an escalation, a status update."""
    return _emit(Entry("event", title, "info", _jsonable(details), _now()))


def action(
    title: str, *, outcome: str, command: str | None = None, severity: str = "info", **details: Any
) -> Entry:
    """Record a change made (or planned, refused, failed). The guard calls this for every plan."""
    return _emit(Entry("action", title, severity, _jsonable(details), _now(), outcome, command))


def summary(*, runbook: str = "interactive", incident: str = "") -> Any:
    """The findings and actions recorded so far in this kernel, as Markdown (for interactive use).

    Headless runs get this at the top of the record automatically.
    """
    import os

    text = summary_markdown(_session, status="running", runbook=os.environ.get("RUNBOOK_NAME", runbook),
                            incident=incident or os.environ.get("RUNBOOK_INCIDENT", "(none)"))
    try:
        from IPython.display import Markdown

        return Markdown(text)
    except ImportError:  # pragma: no cover
        return text


def entries_this_session() -> list[Entry]:
    """Entries recorded by this process (the kernel), in order."""
    return list(_session)


def read_entries(nb: Mapping[str, Any]) -> list[Entry]:
    """The entries of an executed notebook (a JSON dict or nbformat node), in cell order."""
    found: list[Entry] = []
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) or []:
            data = output.get("data") or {}
            if MIME in data:
                payload = data[MIME]
                if isinstance(payload, str):
                    payload = json.loads(payload)
                found.append(Entry.from_json(payload))
    return found


def _html(entry: Entry) -> str:
    esc = html.escape
    if entry.kind == "action":
        icon = _OUTCOME_ICONS.get(entry.outcome or "", "•")
        head = f"{icon} <b>Action ({esc(entry.outcome or '')})</b>: {esc(entry.title)}"
    else:
        icon = _ICONS.get(entry.severity, "•")
        head = f"{icon} <b>{esc(entry.kind.capitalize())} ({esc(entry.severity)})</b>: {esc(entry.title)}"
    parts = [f'<div class="runbook-kit-entry runbook-kit-{esc(entry.kind)}">{head}']
    if entry.command:
        parts.append(f"<pre>{esc(entry.command)}</pre>")
    scalars = {k: v for k, v in entry.details.items() if not isinstance(v, dict | list)}
    if scalars:
        parts.append("<ul>" + "".join(f"<li>{esc(k)}: {esc(str(v))}</li>" for k, v in scalars.items())
                     + "</ul>")
    parts.append("</div>")
    return "".join(parts)


def summary_markdown(
    entries: Iterable[Entry], *, status: str, runbook: str, incident: str, failure: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> str:
    """The summary shown at the top of the record: status, failure banner, findings, actions."""
    entries = list(entries)
    badge = {"succeeded": "✅ succeeded", "failed": "❌ FAILED", "aborted": "⛔ ABORTED",
             "running": "⏳ running"}.get(status, status)
    lines = [f"# Incident record: `{runbook}` — {badge}", ""]
    if failure:
        lines += [f"> **{failure}**", ""]
    lines += [f"- **Incident**: `{incident}`"]
    lines += [f"- **{k}**: {v}" for k, v in (extra or {}).items()]
    findings = [e for e in entries if e.kind == "finding"]
    findings.sort(key=lambda e: -SEVERITIES.index(e.severity) if e.severity in SEVERITIES else 0)
    lines += ["", "## Findings", ""]
    lines += [f"- {_ICONS.get(e.severity, '•')} **{e.severity}**: {e.title}" for e in findings] or ["- none"]
    actions = [e for e in entries if e.kind == "action"]
    lines += ["", "## Actions", ""]
    lines += [
        f"- {_OUTCOME_ICONS.get(e.outcome or '', '•')} **{e.outcome}**: {e.title}"
        + (f" — `{e.command}`" if e.command else "")
        for e in actions
    ] or ["- none"]
    return "\n".join(lines) + "\n"
