"""CloudWatch metrics as tidy DataFrames, percentiles included, and a plot of them.

One helper for every runbook that needs a metric over a window (RDS connections here, load balancer
latency p99 in the latency runbook): GetMetricData, not GetMetricStatistics, because it fetches
many metrics and statistics in one paginated call and accepts percentiles (`p99`, `p99.9`,
`tm99`) next to the plain statistics. The frame is long — one row per (timestamp, metric, stat) — so
it concatenates, filters and pivots without knowing in advance which metrics were asked for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from runbook_kit import clients
from runbook_kit.errors import backend_call

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["COLUMNS", "metric_frame", "plot_metrics"]

COLUMNS = ["timestamp", "metric", "stat", "value"]
_MAX_QUERIES = 500  # GetMetricData limit per request


def _window(start: dt.datetime | None, end: dt.datetime | None,
            minutes: float) -> tuple[dt.datetime, dt.datetime]:
    end = end or dt.datetime.now(dt.UTC)
    start = start or end - dt.timedelta(minutes=minutes)
    return start, end


def metric_frame(
    *, namespace: str, metrics: Sequence[str], dimensions: Mapping[str, str],
    stats: Sequence[str] = ("Average",), minutes: float = 180, start: dt.datetime | None = None,
    end: dt.datetime | None = None, period: int = 60, cloudwatch: Any | None = None,
) -> pd.DataFrame:
    """Every (metric, stat) over the window: timestamp (UTC), metric, stat, value; in the order asked."""
    import pandas as pd

    cloudwatch = cloudwatch or clients.aws("cloudwatch")
    start, end = _window(start, end, minutes)
    dims = [{"Name": k, "Value": v} for k, v in dimensions.items()]
    labels: dict[str, tuple[str, str]] = {}
    queries = []
    for i, metric in enumerate(metrics):
        for j, stat in enumerate(stats):
            qid = f"m{i}s{j}"
            labels[qid] = (metric, stat)
            queries.append({"Id": qid, "ReturnData": True, "MetricStat": {
                "Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": dims},
                "Period": period, "Stat": stat}})
    rows: list[tuple[Any, str, str, float]] = []
    paginator = cloudwatch.get_paginator("get_metric_data")
    for offset in range(0, len(queries), _MAX_QUERIES):
        batch = queries[offset: offset + _MAX_QUERIES]
        with backend_call("aws", f"cloudwatch get-metric-data {namespace}"):
            for page in paginator.paginate(MetricDataQueries=batch, StartTime=start, EndTime=end,
                                           ScanBy="TimestampAscending"):
                for result in page.get("MetricDataResults", []):
                    metric, stat = labels[result["Id"]]
                    points = zip(result.get("Timestamps", []), result.get("Values", []), strict=False)
                    rows += [(t, metric, stat, float(v)) for t, v in points]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame["value"] = frame["value"].astype(float)
    order = {(m, s): i for i, (m, s) in enumerate(labels.values())}  # as asked, then by time
    frame["_order"] = [order[(m, s)] for m, s in zip(frame["metric"], frame["stat"], strict=True)]
    return frame.sort_values(["_order", "timestamp"]).drop(columns="_order").reset_index(drop=True)


def plot_metrics(frame: pd.DataFrame, *, title: str = "", units: Mapping[str, str] | None = None) -> Any:
    """A Figure with one panel per metric and one line per statistic (matplotlib, imported lazily)."""
    from matplotlib.figure import Figure

    metrics = list(dict.fromkeys(frame["metric"])) or ["(no data)"]
    fig = Figure(figsize=(11, 2.6 * len(metrics)), layout="constrained")
    axes = fig.subplots(len(metrics), 1, sharex=True, squeeze=False)[:, 0]
    for ax, metric in zip(axes, metrics, strict=True):
        part = frame[frame["metric"] == metric]
        for stat, series in part.groupby("stat", sort=False):
            ax.plot(series["timestamp"], series["value"], label=str(stat))
        unit = (units or {}).get(metric, "")
        ax.set_title(f"{metric}{f' ({unit})' if unit else ''}", loc="left")
        if part.empty:
            ax.text(0.5, 0.5, "no datapoints in the window", ha="center", va="center", transform=ax.transAxes)
        else:
            ax.legend(loc="upper left", fontsize="small")
    if title:
        fig.suptitle(title)
    return fig
