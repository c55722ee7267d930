"""Application Load Balancer latency and errors per minute, spike detection, a plot, and verification.

The load balancer sees every request, so its `TargetResponseTime` p99 is the latency users feel and
the usual alarm of an "API latency spike". `alb_metrics` turns CloudWatch's long frame (via
`runbook_kit.aws.cloudwatch.metric_frame`) into one row per minute: avg and p99 in milliseconds,
requests, target 5xx and the 5xx rate.

Spike detection answers "since when?", the question that correlation with changes needs. A threshold
on the raw series would call one slow minute a spike, and a baseline taken from "the first hour"
breaks when the spike is older than that. Instead the series is split into *outside* and *inside*
one contiguous segment (an "epidemic" change-point model: before = after = baseline, inside = spike)
choosing the split that explains the most variance — on log-scaled values, so one huge outlier
cannot outweigh a sustained step. The segment is a spike when its median is at least `min_ratio`
times the baseline median and `min_delta` above it, and lasts `sustain` points or more. That finds a
step's first minute exactly, copes with spikes that already recovered, and says so when the window
starts inside the spike (the start is then unknown, not invented).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
from typing import TYPE_CHECKING, Any

from runbook_kit import record
from runbook_kit.aws.cloudwatch import metric_frame
from runbook_kit.errors import ParameterError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "COLUMNS", "Spike", "alb_metrics", "diagnose_spike", "find_spike", "plot_latency", "verify_latency",
]

COLUMNS = ["timestamp", "avg_ms", "p99_ms", "requests", "target_5xx", "error_rate_pct"]
NAMESPACE = "AWS/ApplicationELB"


def dimension(load_balancer: str) -> str:
    """The `LoadBalancer` dimension (`app/name/id`) from itself or from a load balancer ARN."""
    if not load_balancer:  # a required parameter left unset in an interactive run
        raise ParameterError("load_balancer is not set: give the ALB (`app/<name>/<id>` or its ARN)")
    return load_balancer.split(":loadbalancer/", 1)[1] if ":loadbalancer/" in load_balancer else load_balancer


def _align(moment: dt.datetime, period: int, *, up: bool) -> dt.datetime:
    seconds = moment.timestamp()
    aligned = (seconds // period + (1 if up and seconds % period else 0)) * period
    return dt.datetime.fromtimestamp(aligned, dt.UTC)


def alb_metrics(
    *,
    load_balancer: str,
    minutes: float = 180,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    period: int = 60,
    cloudwatch: Any | None = None,
) -> pd.DataFrame:
    """One row per period: timestamp (UTC), avg_ms, p99_ms, requests, target_5xx, error_rate_pct."""
    import pandas as pd

    # whole periods: CloudWatch rounds an unaligned start down anyway, and every metric of the frame then
    # shares the same timestamps (one row per minute, not two half-empty ones)
    end = _align(end or dt.datetime.now(dt.UTC), period, up=True)
    start = _align(start or end - dt.timedelta(minutes=minutes), period, up=False)

    def fetch(metrics: list[str], stats: list[str]) -> pd.DataFrame:
        return metric_frame(
            namespace=NAMESPACE,
            metrics=metrics,
            stats=stats,
            start=start,
            end=end,
            period=period,
            dimensions={"LoadBalancer": dimension(load_balancer)},
            cloudwatch=cloudwatch,
        )

    long = pd.concat(
        [
            fetch(["TargetResponseTime"], ["Average", "p99"]),
            fetch(["HTTPCode_Target_5XX_Count", "RequestCount"], ["Sum"]),
        ],
        ignore_index=True,
    )
    if long.empty:
        return pd.DataFrame(
            {c: pd.Series(dtype="datetime64[ns, UTC]" if c == "timestamp" else float) for c in COLUMNS}
        )
    long["column"] = long["metric"] + "/" + long["stat"]
    wide = long.pivot_table(index="timestamp", columns="column", values="value", aggfunc="first")

    def col(name: str, scale: float = 1.0) -> pd.Series:
        return wide[name] * scale if name in wide else pd.Series(float("nan"), index=wide.index)

    frame = pd.DataFrame(
        {
            "avg_ms": col("TargetResponseTime/Average", 1000),
            "p99_ms": col("TargetResponseTime/p99", 1000),
            "requests": col("RequestCount/Sum"),
            "target_5xx": col("HTTPCode_Target_5XX_Count/Sum"),
        },
        index=wide.index,
    )
    frame["target_5xx"] = frame["target_5xx"].fillna(0.0)
    frame["error_rate_pct"] = 100 * frame["target_5xx"] / frame["requests"].where(frame["requests"] > 0)
    return frame.reset_index().reindex(columns=COLUMNS).sort_values("timestamp").reset_index(drop=True)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Spike:
    """What the detector found in one series. Times are UTC pandas Timestamps."""

    detected: bool
    metric: str
    baseline: float  # median outside the spike (or of the whole series when none)
    level: float = float("nan")  # median inside the spike
    peak: float = float("nan")
    peak_at: Any = None
    start: Any = None  # first point of the spike
    end: Any = None  # first point back at baseline; None while it lasts
    started_before_window: bool = False
    window_start: Any = None
    window_end: Any = None
    error_rate_pct: float = float("nan")  # 5xx rate inside the spike (when known)
    baseline_error_rate_pct: float = float("nan")
    why: str = ""

    @property
    def magnitude(self) -> float:
        return self.level / self.baseline if self.detected and self.baseline > 0 else float("nan")

    @property
    def ongoing(self) -> bool:
        return self.detected and self.end is None

    def summary(self) -> dict[str, Any]:
        return {
            "detected": self.detected,
            "metric": self.metric,
            "baseline": round(self.baseline, 1),
            "level": round(self.level, 1),
            "peak": round(self.peak, 1),
            "peak_at": self.peak_at,
            "magnitude": round(self.magnitude, 2),
            "start": self.start,
            "end": self.end,
            "ongoing": self.ongoing,
            "started_before_window": self.started_before_window,
            "error_rate_pct": round(self.error_rate_pct, 2),
            "baseline_error_rate_pct": round(self.baseline_error_rate_pct, 2),
            "why": self.why,
        }

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in self.summary().items()
        )
        return f"<b>Spike of {html.escape(self.metric)}</b><table>{rows}</table>"


def find_spike(
    series: pd.Series, *, min_ratio: float = 1.5, min_delta: float = 0.0, sustain: int = 3
) -> Spike:
    """The one sustained upward segment of `series` (index: timestamps) that best explains it (pure)."""
    import numpy as np

    values = series.dropna().sort_index()
    metric = str(series.name or "value")
    ws: Any = values.index[0] if len(values) else None
    we: Any = values.index[-1] if len(values) else None
    if len(values) < 2 * sustain:
        baseline = float(values.median()) if len(values) else float("nan")
        return Spike(
            detected=False,
            metric=metric,
            baseline=baseline,
            window_start=ws,
            window_end=we,
            why=f"{len(values)} datapoints: too few to tell a spike from noise",
        )
    v = values.to_numpy(dtype=float)
    scale = float(np.median(v[v > 0])) if (v > 0).any() else 1.0
    x = np.log1p(np.clip(v, 0, None) / scale)
    n = len(x)
    c = np.concatenate([[0.0], np.cumsum(x)])
    best: tuple[float, int, int] | None = None
    for a in range(0, n - 2 * sustain + 1):
        ends = np.arange(a + sustain, n + 1)
        n_in, n_out = ends - a, n - (ends - a)
        ok = n_out >= sustain
        if not ok.any():
            continue
        ends, n_in, n_out = ends[ok], n_in[ok], n_out[ok]
        s_in = c[ends] - c[a]
        s_out = c[n] - s_in
        up = s_in / n_in > s_out / n_out
        if not up.any():
            continue
        score = np.where(up, s_in**2 / n_in + s_out**2 / n_out, -np.inf)
        i = int(np.argmax(score))
        if best is None or score[i] > best[0]:
            best = (float(score[i]), a, int(ends[i]))
    if best is None:
        return Spike(
            detected=False,
            metric=metric,
            baseline=float(np.median(v)),
            window_start=ws,
            window_end=we,
            why="the series never rises above its own level",
        )
    _, a, b = best
    inside = v[a:b]
    outside = np.concatenate([v[:a], v[b:]])
    baseline, level = float(np.median(outside)), float(np.median(inside))
    if level < min_ratio * baseline or level - baseline < min_delta:
        return Spike(
            detected=False,
            metric=metric,
            baseline=float(np.median(v)),
            window_start=ws,
            window_end=we,
            why=f"the highest sustained segment ({level:.1f}) is within x{min_ratio:g} / "
            f"+{min_delta:g} of the rest ({baseline:.1f})",
        )
    peak_i = a + int(np.argmax(inside))
    return Spike(
        detected=True,
        metric=metric,
        baseline=baseline,
        level=level,
        peak=float(v[peak_i]),
        peak_at=values.index[peak_i],
        start=values.index[a],
        end=values.index[b] if b < n else None,
        started_before_window=a == 0,
        window_start=ws,
        window_end=we,
        why=f"median {level:.1f} for {b - a} points vs {baseline:.1f} outside",
    )


def _rate(frame: pd.DataFrame, mask: Any) -> float:
    part = frame[mask]
    requests = float(part["requests"].sum())
    return 100 * float(part["target_5xx"].sum()) / requests if requests > 0 else float("nan")


def diagnose_spike(
    frame: pd.DataFrame,
    *,
    load_balancer: str = "",
    metric: str = "p99_ms",
    min_ratio: float = 1.5,
    min_delta_ms: float = 50.0,
    sustain: int = 3,
) -> Spike:
    """Find the p99 spike in an `alb_metrics` frame; a finding with baseline, peak, start and 5xx rate."""
    where = f" on {load_balancer}" if load_balancer else ""
    series = frame.set_index("timestamp")[metric] if len(frame) else frame.get(metric, frame.iloc[:, :0])
    if len(frame) == 0 or series.dropna().empty:
        record.finding(
            f"No latency datapoints{where}: check the load balancer name and the window",
            severity="medium",
            load_balancer=load_balancer,
            metric=metric,
        )
        return Spike(detected=False, metric=metric, baseline=float("nan"), why="no datapoints")
    spike = find_spike(series.rename(metric), min_ratio=min_ratio, min_delta=min_delta_ms, sustain=sustain)
    if not spike.detected:
        record.finding(
            f"No latency spike{where}: {metric} steady around {spike.baseline:.0f} ms",
            severity="info",
            metric=metric,
            baseline_ms=round(spike.baseline, 1),
            why=spike.why,
        )
        return spike
    ts = frame["timestamp"]
    inside = (ts >= spike.start) & ((ts < spike.end) if spike.end is not None else True)
    spike = dataclasses.replace(
        spike, error_rate_pct=_rate(frame, inside), baseline_error_rate_pct=_rate(frame, ~inside)
    )
    since = (
        "before the window began (widen it to see the start)"
        if spike.started_before_window
        else f"since {spike.start:%H:%M} UTC"
    )
    state = "ongoing" if spike.ongoing else f"recovered at {spike.end:%H:%M} UTC"
    record.finding(
        f"p99 latency spike{where}: {spike.baseline:.0f} ms → {spike.level:.0f} ms (x{spike.magnitude:.1f}, "
        f"peak {spike.peak:.0f} ms) {since}, {state}; 5xx {spike.error_rate_pct:.1f}% "
        f"(baseline {spike.baseline_error_rate_pct:.2f}%)",
        severity="high",
        load_balancer=load_balancer,
        baseline_p99_ms=round(spike.baseline, 1),
        spike_p99_ms=round(spike.level, 1),
        peak_p99_ms=round(spike.peak, 1),
        peak_at=spike.peak_at,
        started=spike.start,
        started_before_window=spike.started_before_window,
        ended=spike.end,
        magnitude=round(spike.magnitude, 2),
        error_rate_pct=round(spike.error_rate_pct, 2),
        baseline_error_rate_pct=round(spike.baseline_error_rate_pct, 3),
    )
    return spike


def plot_latency(
    frame: pd.DataFrame, *, spike: Spike | None = None, changes: pd.DataFrame | None = None, title: str = ""
) -> Any:
    """p99 and avg latency over the 5xx rate, with the spike start and change events as vertical lines."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 5.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    top.plot(frame["timestamp"], frame["p99_ms"], label="p99", color="tab:red")
    top.plot(frame["timestamp"], frame["avg_ms"], label="avg", color="tab:blue")
    top.set_ylabel("ms")
    bottom.plot(frame["timestamp"], frame["error_rate_pct"], label="target 5xx", color="tab:orange")
    bottom.set_ylabel("5xx %")
    if frame.empty:
        top.text(0.5, 0.5, "no datapoints in the window", ha="center", va="center", transform=top.transAxes)
    if spike is not None and spike.detected and not spike.started_before_window:
        for ax in (top, bottom):
            ax.axvline(spike.start, color="tab:red", linestyle=":", linewidth=1.5)
        top.annotate(
            "spike start",
            (spike.start, 1.0),
            xycoords=("data", "axes fraction"),
            fontsize="small",
            color="tab:red",
            ha="right",
            va="top",
            rotation=90,
        )
    if changes is not None and len(changes):
        lo, hi = (frame["timestamp"].min(), frame["timestamp"].max()) if len(frame) else (None, None)
        for _, change in changes.iterrows():
            if lo is not None and not (lo <= change["time"] <= hi):
                continue
            for ax in (top, bottom):
                ax.axvline(change["time"], color="tab:gray", linestyle="--", linewidth=1)
            top.annotate(
                str(change.get("change", ""))[:40],
                (change["time"], 0.02),
                fontsize="x-small",
                xycoords=("data", "axes fraction"),
                rotation=90,
                ha="right",
                va="bottom",
                color="dimgray",
            )
    top.legend(loc="upper left", fontsize="small")
    fig.suptitle(title or "Load balancer latency and 5xx rate (change events dashed)")
    return fig


def verify_latency(
    *,
    load_balancer: str,
    threshold_ms: float,
    points: int = 5,
    lookback_minutes: float = 30,
    cloudwatch: Any | None = None,
) -> pd.DataFrame:
    """Is p99 back under `threshold_ms`? Judged on the latest `points` minutes with data; a finding."""
    frame = alb_metrics(load_balancer=load_balancer, minutes=lookback_minutes, cloudwatch=cloudwatch)
    recent = frame.dropna(subset=["p99_ms"]).tail(points).reset_index(drop=True)
    if recent.empty:
        record.finding(
            f"Cannot verify: no p99 datapoints for {load_balancer} in the last {lookback_minutes:g} min",
            severity="medium",
            load_balancer=load_balancer,
            threshold_ms=threshold_ms,
        )
        return recent
    worst = float(recent["p99_ms"].max())
    span = f"{recent['timestamp'].iloc[0]:%H:%M}–{recent['timestamp'].iloc[-1]:%H:%M} UTC"
    details = dict(
        load_balancer=load_balancer,
        threshold_ms=threshold_ms,
        worst_p99_ms=round(worst, 1),
        median_p99_ms=round(float(recent["p99_ms"].median()), 1),
        minutes=span,
        latest=recent,
    )
    if worst <= threshold_ms:
        record.finding(
            f"Latency recovered: p99 at most {worst:.0f} ms over {span}, under {threshold_ms:g} ms",
            severity="info",
            **details,
        )
    else:
        record.finding(
            f"Latency not recovered: p99 up to {worst:.0f} ms over {span}, over {threshold_ms:g} ms",
            severity="high",
            **details,
        )
    return recent
