"""CloudWatch percentiles computed from the raw values moto stores.

moto answers `GetMetricData` with `Stat="p99"` with HTTP 500 and `GetMetricStatistics` with
`ExtendedStatistics` with datapoints that lack the percentile. Latency runbooks live on p99, so the
sandbox computes statistics itself, from the individual values `PutMetricData` stored (moto keeps
one datum per value, `Counts` expanded), bucketed by period on epoch boundaries like CloudWatch.

Percentiles are nearest-rank over the samples of a bucket. A metric matches only with exactly the
requested dimensions, as in CloudWatch (moto matches on a subset).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

from runbook_sandbox.aws.cloudtrail import ApiError
from runbook_sandbox.aws.insights import percentile

__all__ = ["get_metric_data", "get_metric_statistics", "is_percentile"]

_PCT = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$")


def is_percentile(stat: str) -> bool:
    return bool(_PCT.match(stat or ""))


def _naive_utc(value: Any, name: str) -> dt.datetime:
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, tz=dt.UTC).replace(tzinfo=None)
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ApiError("InvalidParameterValue", f"{name} is not a timestamp") from None
    return parsed.astimezone(dt.UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def _samples(
    backend: Any, metric: dict[str, Any], start: dt.datetime, end: dt.datetime, unit: str | None
) -> dict[int, list[float]]:
    """Values per second-of-epoch timestamp, for one metric with exactly these dimensions."""
    wanted = {(d["Name"], d["Value"]) for d in metric.get("Dimensions") or []}
    out: dict[int, list[float]] = {}
    for datum in backend.get_all_metrics():
        if datum.namespace != metric["Namespace"] or datum.name != metric["MetricName"]:
            continue
        if not hasattr(datum, "value") or not start <= datum.timestamp < end:
            continue
        if {(d.name, d.value) for d in datum.dimensions} != wanted:
            continue
        if unit and datum.unit != unit:
            continue
        second = int(datum.timestamp.replace(tzinfo=dt.UTC).timestamp())
        out.setdefault(second, []).append(float(datum.value))
    return out


def _buckets(samples: dict[int, list[float]], period: int) -> dict[int, list[float]]:
    out: dict[int, list[float]] = {}
    for second, values in samples.items():
        out.setdefault(second // period * period, []).extend(values)
    return out


def _stat(stat: str, values: list[float]) -> float:
    if stat == "SampleCount":
        return float(len(values))
    if stat == "Sum":
        return sum(values)
    if stat == "Average":
        return sum(values) / len(values)
    if stat == "Minimum":
        return min(values)
    if stat == "Maximum":
        return max(values)
    if is_percentile(stat):
        return percentile(sorted(values), float(stat[1:]))
    raise ApiError("InvalidParameterValue", f"The statistic {stat} is not supported by the sandbox.")


def get_metric_data(backend: Any, request: dict[str, Any]) -> dict[str, Any] | None:
    """Answer GetMetricData when a query asks for a percentile (None: let moto answer)."""
    queries: Iterable[dict[str, Any]] = request.get("MetricDataQueries") or []
    queries = list(queries)
    if not any(is_percentile((q.get("MetricStat") or {}).get("Stat", "")) for q in queries):
        return None
    if any("MetricStat" not in q for q in queries):
        raise ApiError(
            "InvalidParameterCombination",
            "The sandbox computes percentiles for MetricStat queries only, not expressions.",
        )
    start = _naive_utc(request["StartTime"], "StartTime")
    end = _naive_utc(request["EndTime"], "EndTime")
    descending = request.get("ScanBy", "TimestampDescending") == "TimestampDescending"
    results = []
    for query in queries:
        if query.get("ReturnData") is False:
            continue
        metric_stat = query["MetricStat"]
        period = int(metric_stat["Period"])
        buckets = _buckets(
            _samples(backend, metric_stat["Metric"], start, end, metric_stat.get("Unit")), period
        )
        seconds = sorted(buckets, reverse=descending)
        results.append(
            {
                "Id": query["Id"],
                "Label": query.get("Label") or metric_stat["Metric"]["MetricName"],
                "Timestamps": [float(s) for s in seconds],
                "Values": [_stat(metric_stat["Stat"], buckets[s]) for s in seconds],
                "StatusCode": "Complete",
                "Messages": [],
            }
        )
    return {"MetricDataResults": results, "Messages": []}


def get_metric_statistics(backend: Any, request: dict[str, Any]) -> dict[str, Any] | None:
    """Answer GetMetricStatistics when ExtendedStatistics are asked for (None: let moto answer)."""
    extended = request.get("ExtendedStatistics") or []
    if not extended:
        return None
    for stat in extended:
        if not is_percentile(stat):
            raise ApiError("InvalidParameterValue", f"The extended statistic {stat} is not supported.")
    metric = {
        "Namespace": request["Namespace"],
        "MetricName": request["MetricName"],
        "Dimensions": request.get("Dimensions") or [],
    }
    start = _naive_utc(request["StartTime"], "StartTime")
    end = _naive_utc(request["EndTime"], "EndTime")
    period = int(request["Period"])
    unit = request.get("Unit")
    buckets = _buckets(_samples(backend, metric, start, end, unit), period)
    datapoints = []
    for second in sorted(buckets):
        values = buckets[second]
        point: dict[str, Any] = {"Timestamp": float(second), "Unit": unit or "None"}
        for stat in request.get("Statistics") or []:
            point[stat] = _stat(stat, values)
        point["ExtendedStatistics"] = {stat: _stat(stat, values) for stat in extended}
        datapoints.append(point)
    return {"Label": request["MetricName"], "Datapoints": datapoints}
