"""CloudWatch Logs Insights as DataFrames: start a query, poll it with a bounded timeout, read rows.

Why a helper and not `logs.start_query` in a notebook: Insights is asynchronous (StartQuery returns an
id; GetQueryResults says Scheduled/Running until the query is Complete), results arrive as lists of
`{"field", "value"}` pairs with every value a *string*, and a query over a busy log group can run for
minutes. At 3 a.m. a runbook must neither hang on it nor quietly show a partial table as if it were
the answer, so the poll is bounded: on timeout the query is stopped, whatever rows it had are
returned, and a finding says the table is partial and why.

Values come back typed: `@timestamp`, `bin(...)` and other time fields as UTC timestamps, columns
whose every value is numeric as numbers, `@ptr` dropped (an opaque pointer, noise on screen).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from runbook_kit import clients, record
from runbook_kit.errors import BackendError, backend_call

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "ERROR_TIMELINE_QUERY", "TOP_ERRORS_QUERY", "diagnose_errors", "error_timeline", "insights_query",
    "top_errors",
]

ERROR_TIMELINE_QUERY = (
    "fields @timestamp, @message | filter @message like /{pattern}/ "
    "| stats count(*) as errors by bin({bin}) as bin | sort bin asc"
)
# the text after the level and an optional [component], up to a request/trace id or the end of the line:
# per-request ids would make every message unique and the count meaningless
TOP_ERRORS_QUERY = (
    r"fields @message | filter @message like /{pattern}/ "
    r"| parse @message /{pattern}\s+(\[(?<component>[^\]]*)\]\s*)?(?<error>[^\n]*?)\s*"
    r"(request_id=|trace_id=|\n|$)/ "
    r"| stats count(*) as count by component, error | sort count desc | limit {limit}"
)
_DONE = {"Complete", "Failed", "Cancelled", "Timeout", "Unknown"}
_TIME_FIELD = re.compile(r"^(@timestamp|@ingestionTime|bin\(.*\)|bin|time|timestamp)$")


def _window(
    start: dt.datetime | None, end: dt.datetime | None, minutes: float
) -> tuple[dt.datetime, dt.datetime]:
    end = end or dt.datetime.now(dt.UTC)
    return start or end - dt.timedelta(minutes=minutes), end


def _frame(rows: list[list[dict[str, str]]]) -> pd.DataFrame:
    import pandas as pd

    records = [{f["field"]: f.get("value") for f in row if f.get("field") != "@ptr"} for row in rows]
    columns = list(dict.fromkeys(k for r in records for k in r))
    frame = pd.DataFrame(records, columns=columns)
    for column in columns:
        if _TIME_FIELD.match(column):
            frame[column] = pd.to_datetime(frame[column], utc=True, errors="coerce")
            continue
        numbers = pd.to_numeric(frame[column], errors="coerce")
        if len(frame) and numbers.notna().sum() == frame[column].notna().sum():
            frame[column] = numbers
    return frame


@record.read_step("Logs Insights results from {log_group}", columns=[],
                  fix="logs:StartQuery, logs:GetQueryResults, logs:StopQuery on the log group")
def insights_query(
    *,
    log_group: str | Sequence[str],
    query: str,
    minutes: float = 180,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    timeout_s: float = 60.0,
    poll_s: float = 1.0,
    logs: Any | None = None,
) -> pd.DataFrame:
    """Run one Logs Insights query over the window and return its rows (partial, with a finding, on timeout).

    `frame.attrs` carries `status`, `query_id` and the service's `statistics` (records matched/scanned).
    """
    logs = logs or clients.aws("logs")
    groups = [log_group] if isinstance(log_group, str) else list(log_group)
    start, end = _window(start, end, minutes)
    names = ", ".join(groups)
    with backend_call("aws", f"logs start-query on {names}"):
        query_id = logs.start_query(
            logGroupNames=groups,
            queryString=query,
            startTime=int(start.timestamp()),
            endTime=int(end.timestamp()),
        )["queryId"]
    deadline = time.monotonic() + timeout_s
    while True:
        with backend_call("aws", f"logs get-query-results on {names}"):
            response = logs.get_query_results(queryId=query_id)
        status = response.get("status", "Unknown")
        if status in _DONE or time.monotonic() >= deadline:
            break
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
    if status in {"Failed", "Cancelled", "Unknown"}:
        raise BackendError("aws", f"logs insights query on {names}", f"the query ended {status}: {query}")
    frame = _frame(response.get("results") or [])
    if status not in _DONE or status == "Timeout":
        if status not in _DONE:
            with backend_call("aws", f"logs stop-query on {names}"):
                logs.stop_query(queryId=query_id)
        who = "the service" if status == "Timeout" else f"the runbook after {timeout_s:g} s"
        record.finding(
            f"Logs Insights query on {names} timed out ({who}): the table is partial ({len(frame)} rows)",
            severity="medium",
            query=query,
            status=status,
            rows=len(frame),
            hint="narrow the window or the log groups, or raise timeout_s",
        )
    frame.attrs.update(status=status, query_id=query_id, statistics=dict(response.get("statistics") or {}))
    return frame


def error_timeline(
    *,
    log_group: str,
    minutes: float = 180,
    pattern: str = "ERROR",
    bin_size: str = "5m",
    timeout_s: float = 60.0,
    logs: Any | None = None,
) -> pd.DataFrame:
    """Error lines per time bin (`stats count(*) by bin(5m)`): bin (UTC), errors; empty bins omitted."""
    import pandas as pd

    query = ERROR_TIMELINE_QUERY.format(pattern=pattern, bin=bin_size)
    frame = insights_query(log_group=log_group, query=query, minutes=minutes, timeout_s=timeout_s, logs=logs)
    gap = frame.attrs.get("gap")
    if frame.empty:
        frame = pd.DataFrame({"bin": pd.Series(dtype="datetime64[ns, UTC]"), "errors": pd.Series(dtype=int)})
    frame = frame.reset_index(drop=True)
    if gap:
        frame.attrs["gap"] = gap
    return frame


def top_errors(
    *,
    log_group: str,
    minutes: float = 180,
    pattern: str = "ERROR",
    limit: int = 10,
    timeout_s: float = 60.0,
    logs: Any | None = None,
) -> pd.DataFrame:
    """The most frequent error messages (request ids stripped): component, error, count."""
    query = TOP_ERRORS_QUERY.format(pattern=pattern, limit=int(limit))
    frame = insights_query(log_group=log_group, query=query, minutes=minutes, timeout_s=timeout_s, logs=logs)
    gap = frame.attrs.get("gap")
    for column in ("component", "error", "count"):
        if column not in frame:
            frame[column] = [] if frame.empty else None
    frame = frame[["component", "error", "count"]].reset_index(drop=True)
    if gap:  # the logs could not be read: later steps must not read "no errors" from this
        frame.attrs["gap"] = gap
    return frame


def diagnose_errors(
    *,
    log_group: str,
    minutes: float = 180,
    pattern: str = "ERROR",
    limit: int = 10,
    timeout_s: float = 60.0,
    logs: Any | None = None,
) -> pd.DataFrame:
    """`top_errors`, and a finding naming the most frequent one (or saying there is none)."""
    frame = top_errors(log_group=log_group, minutes=minutes, pattern=pattern, limit=limit,
                       timeout_s=timeout_s, logs=logs)
    if record.missing(frame):  # the gap is recorded; "no errors" would be a false finding
        return frame
    if frame.empty:
        record.finding(
            f"No {pattern} lines in {log_group} in the last {minutes:g} min",
            severity="info",
            log_group=log_group,
        )
    else:
        top = frame.iloc[0]
        record.finding(
            f"Top error in {log_group}: {top['error']} ({int(top['count'])} times in {minutes:g} min)",
            severity="medium",
            log_group=log_group,
            errors=frame,
        )
    return frame
