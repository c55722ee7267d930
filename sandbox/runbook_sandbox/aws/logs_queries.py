"""CloudWatch Logs Insights API over moto's stored log events: StartQuery, GetQueryResults,
StopQuery, DescribeQueries.

moto stores log events faithfully but runs only a sliver of the query language; the sandbox reads
the same events out of moto's in-process logs backend and evaluates the query with
`runbook_sandbox.aws.insights`. Queries complete synchronously (status `Complete` on the first
GetQueryResults), which is a legal timeline of the real API, so runbooks that poll still work.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from runbook_sandbox.aws.cloudtrail import ApiError
from runbook_sandbox.aws.insights import QueryError, run_query

__all__ = ["QueryBook"]


class QueryBook:
    """The queries of one sandbox (thread-safe)."""

    def __init__(self) -> None:
        self._queries: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def start_query(self, backend: Any, request: dict[str, Any]) -> dict[str, Any]:
        names = list(request.get("logGroupNames") or [])
        if request.get("logGroupName"):
            names.append(request["logGroupName"])
        names += [
            i.rsplit(":log-group:", 1)[-1].removesuffix(":*")
            for i in request.get("logGroupIdentifiers") or []
        ]
        if not names:
            raise ApiError(
                "InvalidParameterException", "Specify logGroupName, logGroupNames or logGroupIdentifiers."
            )
        for name in names:
            if name not in backend.groups:
                raise ApiError("ResourceNotFoundException", f"Log group '{name}' does not exist.")
        start_ms, end_ms = int(request["startTime"]) * 1000, int(request["endTime"]) * 1000 + 999
        if start_ms > end_ms:
            raise ApiError("InvalidParameterException", "startTime must be before endTime.")
        text = request["queryString"]
        records = []
        for name in names:
            for stream_name, stream in backend.groups[name].streams.items():
                for event in stream.events:
                    if start_ms <= event.timestamp <= end_ms:
                        records.append(
                            {
                                "@timestamp": event.timestamp,
                                "@message": event.message,
                                "@ingestionTime": event.ingestion_time,
                                "@logStream": stream_name,
                                "@log": f"123456789012:{name}",
                                "@ptr": _ptr(name, stream_name, event.event_id),
                            }
                        )
        records.sort(key=lambda r: r["@timestamp"])
        try:
            results, statistics = run_query(text, records)
        except QueryError as exc:
            raise ApiError("MalformedQueryException", str(exc)) from None
        if request.get("limit"):
            results = results[: int(request["limit"])]
        query_id = str(uuid.uuid4())
        with self._lock:
            self._queries[query_id] = {
                "queryId": query_id,
                "queryString": text,
                "status": "Complete",
                "results": results,
                "statistics": statistics,
                "createTime": int(time.time() * 1000),
                "logGroupName": names[0],
            }
        return {"queryId": query_id}

    def _get(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            query = self._queries.get(request.get("queryId", ""))
        if query is None:
            raise ApiError("ResourceNotFoundException", "Query does not exist.")
        return query

    def get_query_results(self, request: dict[str, Any]) -> dict[str, Any]:
        query = self._get(request)
        return {
            "queryLanguage": "CWLI",
            "results": query["results"],
            "statistics": query["statistics"],
            "status": query["status"],
        }

    def stop_query(self, request: dict[str, Any]) -> dict[str, Any]:
        self._get(request)
        return {"success": False}  # already Complete: nothing to stop, as the real API answers

    def describe_queries(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            queries = list(self._queries.values())
        if request.get("logGroupName"):
            queries = [q for q in queries if q["logGroupName"] == request["logGroupName"]]
        if request.get("status"):
            queries = [q for q in queries if q["status"] == request["status"]]
        queries.sort(key=lambda q: q["createTime"], reverse=True)
        limit = int(request.get("maxResults") or 1000)
        keys = ("queryId", "queryString", "status", "createTime", "logGroupName")
        return {"queries": [{"queryLanguage": "CWLI", **{k: q[k] for k in keys}} for q in queries[:limit]]}


def _ptr(group: str, stream: str, event_id: int) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{group}/{stream}/{event_id}").hex
