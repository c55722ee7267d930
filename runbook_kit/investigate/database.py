"""Is it the database? RDS CPU and connections when latency rose, against the hour before.

A slow database makes every API slow, so it has to be ruled in or out before blaming a deploy. The
question is not "is the database busy now" — a latency incident often *causes* a connection pile-up
(requests wait longer, pools grow) — but "did the database change when latency did". So the metrics are
compared at the onset (the `onset_minutes` from the spike start) against a baseline (the
`before_minutes` before it); what happened later is reported, not judged, since it may be a consequence.

Normal at the onset means: CPU peak under `cpu_limit_pct` and average CPU no more than `growth` times
the baseline (+10 points), average connections no more than `growth` times the baseline (+5). Metrics
come from `runbook_kit.aws.rds.rds_metrics`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from runbook_kit import record
from runbook_kit.aws.rds import rds_metrics

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from runbook_kit.aws.alb import Spike

__all__ = ["COLUMNS", "assess_database", "diagnose_database"]

COLUMNS = ["metric", "baseline", "at_onset", "onset_max", "later", "change_pct", "normal"]
_SLACK = {"CPUUtilization": 10.0, "DatabaseConnections": 5.0}


def assess_database(
    frame: pd.DataFrame,
    *,
    onset: Any,
    before_minutes: float = 60,
    onset_minutes: float = 15,
    cpu_limit_pct: float = 80.0,
    growth: float = 1.25,
) -> pd.DataFrame:
    """Per metric: baseline, at_onset, onset_max, later, change_pct, normal (pure: an rds_metrics frame)."""
    import pandas as pd

    onset = pd.Timestamp(onset)
    begin, settle = onset - pd.Timedelta(minutes=before_minutes), onset + pd.Timedelta(minutes=onset_minutes)
    rows = []
    for metric in ("CPUUtilization", "DatabaseConnections"):
        part = frame[frame["metric"] == metric]
        avg, peak = part[part["stat"] == "Average"], part[part["stat"] == "Maximum"]

        def mean(p: pd.DataFrame, lo: Any, hi: Any) -> float:
            sel = p[(p["timestamp"] >= lo) & (p["timestamp"] < hi)]["value"]
            return float(sel.mean()) if len(sel) else float("nan")

        base, at = mean(avg, begin, onset), mean(avg, onset, settle)
        onset_peak = peak[(peak["timestamp"] >= onset) & (peak["timestamp"] < settle)]["value"]
        onset_max = float(onset_peak.max()) if len(onset_peak) else at
        later = mean(avg, settle, pd.Timestamp.max.tz_localize("UTC"))
        normal = bool(at == at and base == base and at <= base * growth + _SLACK[metric])
        if metric == "CPUUtilization":
            normal = normal and onset_max < cpu_limit_pct
        rows.append(
            {
                "metric": metric,
                "baseline": round(base, 1),
                "at_onset": round(at, 1),
                "onset_max": round(onset_max, 1),
                "later": round(later, 1),
                "change_pct": round(100 * (at - base) / base, 1) if base else float("nan"),
                "normal": normal,
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def diagnose_database(
    *,
    db_instance_id: str | None,
    spike: Spike,
    before_minutes: float = 60,
    onset_minutes: float = 15,
    cpu_limit_pct: float = 80.0,
    growth: float = 1.25,
    cloudwatch: Any | None = None,
) -> pd.DataFrame:
    """RDS CPU and connections at the spike onset vs the hour before; a finding rules the DB in or out."""
    import pandas as pd

    if not db_instance_id:
        record.finding(
            "No RDS instance given (db_instance_id not set): the database was not checked", severity="low"
        )
        return pd.DataFrame(columns=COLUMNS)
    now = dt.datetime.now(dt.UTC)
    if spike.detected and spike.start is not None and not spike.started_before_window:
        onset, what = pd.Timestamp(spike.start), "when latency rose"
    else:
        onset, what = pd.Timestamp(now) - pd.Timedelta(minutes=onset_minutes), "in the last minutes"
    minutes = (now - (onset - pd.Timedelta(minutes=before_minutes))).total_seconds() / 60 + 1
    frame = rds_metrics(
        db_instance_id=db_instance_id,
        minutes=minutes,
        metrics=("CPUUtilization", "DatabaseConnections"),
        cloudwatch=cloudwatch,
    )
    judged = assess_database(
        frame,
        onset=onset,
        before_minutes=before_minutes,
        onset_minutes=onset_minutes,
        cpu_limit_pct=cpu_limit_pct,
        growth=growth,
    )
    by = judged.set_index("metric")
    cpu, conns = by.loc["CPUUtilization"], by.loc["DatabaseConnections"]
    details = dict(db_instance_id=db_instance_id, onset=onset, metrics=judged)
    if judged[["baseline", "at_onset"]].isna().any().any():
        record.finding(
            f"No RDS metrics for {db_instance_id} around {onset:%H:%M} UTC: the database is not ruled out",
            severity="medium",
            ruled_out=False,
            **details,
        )
        return judged
    if bool(judged["normal"].all()):
        later = ""
        if conns["later"] > conns["baseline"] * growth + _SLACK["DatabaseConnections"]:
            later = (
                f"; connections rose later (to {conns['later']:.0f} on average), after the spike began — "
                "a consequence or a separate issue (see db_connection_exhaustion)"
            )
        record.finding(
            f"Database {db_instance_id} is not the cause: CPU {cpu['at_onset']:.0f}% "
            f"(peak {cpu['onset_max']:.0f}%) "
            f"and {conns['at_onset']:.0f} connections {what}, as before ({cpu['baseline']:.0f}%, "
            f"{conns['baseline']:.0f}){later}",
            severity="info",
            ruled_out=True,
            **details,
        )
    else:
        changed = ", ".join(
            f"{m} {r['baseline']:.0f} → {r['at_onset']:.0f}" for m, r in by.iterrows() if not r["normal"]
        )
        record.finding(
            f"Database {db_instance_id} changed {what}: {changed}",
            severity="high",
            ruled_out=False,
            **details,
        )
    return judged
