"""Structured entries in the incident record: findings, actions, events, gaps.

A runbook cell calls `rk.finding(...)`, `rk.action(...)` or `rk.event(...)`. Each writes one entry
as a display output with a custom MIME type (`application/vnd.runbook-kit.entry+json`) plus an HTML
and a plain-text rendering, so it reads well in JupyterLab and in the HTML export, and survives in
the `.ipynb` as data. The runner reads the entries back from the executed notebook (`read_entries`)
and copies them into notebook metadata, `incident.json` and the summary cell at the top.

The cell output is the source of truth because a kernel cannot write notebook metadata, and
because an interactive JupyterLab session saves outputs just like a headless run does.

Gaps: partial access degrades, it does not abort. A read step (decorated `@read_step(...)` or run
inside `with degrade(...)`) that fails because its backend is not configured, unreachable, throttled
past its retries or forbidden records a *gap* — what is missing, why (the error's one line), and the
setting or permission that fixes it — and returns an empty result of its usual shape marked missing
(`df.attrs["gap"]`), so the run goes on and later steps can tell (`missing(df)`). `NotFound` stays an
error: the user named something that does not exist. A run whose entries hold gaps completes as
`completed-with-gaps` (`status_of`), shown ⚠️ in the summary with a Gaps section.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import html
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from runbook_kit.errors import BackendError, Forbidden, NotConfigured, Throttled, Unavailable
from runbook_kit.redact import redact

__all__ = [
    "DEGRADING",
    "GAPS_STATUS",
    "MIME",
    "SEVERITIES",
    "Entry",
    "action",
    "begin_run",
    "degrade",
    "entries_this_session",
    "event",
    "finding",
    "gap",
    "gap_frame",
    "gaps",
    "has_gaps",
    "missing",
    "read_entries",
    "read_step",
    "status_of",
    "summary",
    "summary_markdown",
    "this_run",
]

MIME = "application/vnd.runbook-kit.entry+json"
SEVERITIES = ("info", "low", "medium", "high", "critical")
_ICONS = {"info": "ℹ️", "low": "🟢", "medium": "🟡", "high": "🟠", "critical": "🔴"}
_OUTCOME_ICONS = {"dry-run": "🧪", "applied": "✅", "failed": "❌", "refused": "⛔", "skipped": "⏭️"}
_MAX_ROWS = 50
GAPS_STATUS = "completed-with-gaps"
DEGRADING: tuple[type[BackendError], ...] = (Forbidden, Unavailable, Throttled, NotConfigured)
_GAP_ICON = "⚠️"
_T = TypeVar("_T")

_session: list[Entry] = []
_run: dict[str, str] = {}  # the headless run this kernel executes: set by its injected parameters cell


def begin_run(*, runbook: str, incident: str) -> None:
    """Called by a headless run's injected parameters cell (params.inject): which run this kernel is.

    The one way run-specific values reach a kernel (cold or warm), besides the parameters themselves.
    """
    _run.clear()
    _run.update(runbook=str(runbook), incident=str(incident))


def this_run() -> Mapping[str, str]:
    """{"runbook", "incident"} of the headless run this kernel executes; empty when interactive."""
    return dict(_run)


@dataclasses.dataclass(frozen=True)
class Entry:
    """One line of the incident record."""

    kind: str  # finding | action | event | gap
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
        if self.kind == "gap":
            return f"[gap] {self.title}: {self.details.get('why', '')}"
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


def gap(what: str, *, why: str, fix: str, **details: Any) -> Entry:
    """Record evidence the runbook could not read: `what` is missing, `why` (the error's one line),
    and `fix`, the setting or permission that would let the next run read it."""
    return _emit(Entry("gap", what, "medium", _jsonable({"why": why, "fix": fix, **details}), _now()))


def gap_frame(columns: Sequence[str], *, what: str, why: str, fix: str, **details: Any) -> Any:
    """Record a gap and return an empty DataFrame of `columns` marked missing with it: for a read that
    ran without error but found nothing usable (e.g. no datapoints), so `missing(frame)` tells."""
    import pandas as pd

    gap(what, why=why, fix=fix, **details)
    return _missing_result(pd.DataFrame(columns=list(columns)), {"what": what, "why": why, "fix": fix})


_HINTS: dict[type[BackendError], str] = {
    NotConfigured: "configure access to the backend as the error says; the step then needs",
    Forbidden: "grant",
    Unavailable: "check that the endpoint is reachable from this machine (network, security group, "
                 "endpoint URL); needed",
    Throttled: "retry later, or raise the API quota; needed",
}


def _gap_from(err: BackendError, what: str, fix: str) -> dict[str, str]:
    hint = _HINTS.get(type(err)) or next((h for c, h in _HINTS.items() if isinstance(err, c)), "")
    return {"what": what, "why": str(err), "fix": f"{hint}: {fix}" if fix else hint}


def _missing_result(empty: Any, info: Mapping[str, str]) -> Any:
    if callable(empty):
        empty = empty()
    if empty is None:
        return None
    attrs = getattr(empty, "attrs", None)
    if isinstance(attrs, dict):
        attrs["gap"] = dict(info)
    return empty


class degrade:
    """`with record.degrade("CloudTrail events", fix="cloudtrail:LookupEvents") as step: ...`

    Inside, a Forbidden / Unavailable / Throttled / NotConfigured error is recorded as a gap and
    swallowed; `step.gap` then holds it (else None). Any other error, NotFound included, propagates.
    """

    def __init__(self, what: str, *, fix: str = "") -> None:
        self.what, self.fix = what, fix
        self.gap: dict[str, str] | None = None

    def __enter__(self) -> degrade:
        return self

    def __exit__(self, etype: Any, exc: BaseException | None, tb: Any) -> bool:
        if isinstance(exc, DEGRADING):
            self.gap = _gap_from(exc, self.what, self.fix)
            gap(self.gap["what"], why=self.gap["why"], fix=self.gap["fix"], error=type(exc).__name__)
            return True
        return False


def read_step(
    what: str, *, fix: str = "", columns: Sequence[str] | None = None, empty: Any = None,
) -> Callable[[Callable[..., _T]], Callable[..., _T]]:
    """Decorate a read: on a degrading error, record a gap and return an empty result of its shape.

    The empty result is a DataFrame with `columns` (or what `empty()` builds; None when neither is
    given) whose `attrs["gap"]` says what is missing, so `missing(result)` tells later steps. `what`
    may use the call's keyword arguments: `"RDS metrics of {db_instance_id}"`.
    """

    def decorate(fn: Callable[..., _T]) -> Callable[..., _T]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> _T:
            try:
                return fn(*args, **kwargs)
            except DEGRADING as err:
                try:
                    label = what.format(**kwargs)
                except (KeyError, IndexError, ValueError):
                    label = what
                info = _gap_from(err, label, fix)
                gap(info["what"], why=info["why"], fix=info["fix"], step=fn.__name__,
                    error=type(err).__name__)
                factory = empty
                if factory is None and columns is not None:
                    import pandas as pd

                    def factory() -> Any:
                        return pd.DataFrame(columns=list(columns))
                return _missing_result(factory, info)

        return wrapper

    return decorate


def missing(*evidence: Any) -> list[str]:
    """The gaps among `evidence` (results of read steps): one "what: why" line each."""
    out = []
    for value in evidence:
        info = (getattr(value, "attrs", None) or {}).get("gap") if value is not None else None
        if isinstance(info, Mapping):
            out.append(f"{info.get('what')}: {info.get('why')}")
    return out


def gaps(entries: Iterable[Entry]) -> list[Entry]:
    return [e for e in entries if e.kind == "gap"]


def has_gaps(entries: Iterable[Entry]) -> bool:
    """Whether a run recorded any gap (it then completes as `completed-with-gaps`, exit code 3)."""
    return any(e.kind == "gap" for e in entries)


def status_of(entries: Iterable[Entry], *, succeeded: bool = True) -> str:
    """The status of a run that ended without error: `succeeded` or `completed-with-gaps`."""
    return GAPS_STATUS if succeeded and has_gaps(entries) else "succeeded"


def summary(*, runbook: str = "interactive", incident: str = "") -> Any:
    """The findings and actions recorded so far in this kernel, as Markdown (for interactive use).

    Headless runs get this at the top of the record automatically.
    """
    text = summary_markdown(_session, status="running", runbook=_run.get("runbook", runbook),
                            incident=incident or _run.get("incident", "(none)"))
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
    elif entry.kind == "gap":
        head = f"{_GAP_ICON} <b>Gap</b>: {esc(entry.title)} is missing"
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
    if status == "succeeded" and has_gaps(entries):
        status = GAPS_STATUS
    badge = {"succeeded": "✅ succeeded", "failed": "❌ FAILED", "aborted": "⛔ ABORTED",
             "running": "⏳ running", GAPS_STATUS: f"{_GAP_ICON} completed with gaps"}.get(status, status)
    lines = [f"# Incident record: `{runbook}` — {badge}", ""]
    if failure:
        lines += [f"> **{failure}**", ""]
    lines += [f"- **Incident**: `{incident}`"]
    lines += [f"- **{k}**: {v}" for k, v in (extra or {}).items()]
    findings = [e for e in entries if e.kind == "finding"]
    findings.sort(key=lambda e: -SEVERITIES.index(e.severity) if e.severity in SEVERITIES else 0)
    lines += ["", "## Findings", ""]
    lines += [f"- {_ICONS.get(e.severity, '•')} **{e.severity}**: {e.title}" for e in findings] or ["- none"]
    missing_ = gaps(entries)
    if missing_:
        lines += ["", "## Gaps", "",
                  "Evidence this run could not read (the diagnosis went on without it):", ""]
        lines += [f"- {_GAP_ICON} **{e.title}**: {e.details.get('why', '')}"
                  + (f" — fix: {e.details['fix']}" if e.details.get("fix") else "") for e in missing_]
    actions = [e for e in entries if e.kind == "action"]
    lines += ["", "## Actions", ""]
    for e in actions:
        lines.append(f"- {_OUTCOME_ICONS.get(e.outcome or '', '•')} **{e.outcome}**: {e.title}"
                     + (f" — `{e.command}`" if e.command else ""))
        if e.outcome == "refused" and e.details.get("why"):
            lines.append(f"  - why: {e.details['why']}")
        if e.details.get("excluded_summary"):
            lines.append(f"  - {e.details['excluded_summary']}")
    if not actions:
        lines.append("- none")
    return "\n".join(lines) + "\n"
