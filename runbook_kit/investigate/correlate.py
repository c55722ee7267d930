"""Which change started the spike? The change closest before the spike start, within a tolerance.

Why these rules, in this order:

* A cause precedes its effect, so only changes from `tolerance_minutes` before the spike start are
  candidates — plus a little `slack` after it, because a one-minute metric bin is stamped with its
  *start*: a deploy at 10:20:40 shows first in the bin stamped 10:20.
* One release is several events: CI registers a task definition, creates a CodeDeploy deployment,
  updates the service, and Kubernetes rolls out a new ReplicaSet, all within a minute or two. Changes
  less than `group_minutes` apart are one burst; the burst nearest before the spike wins, and inside it
  the most specific release event (a deploy, then a rollout, then any other write) is named as the
  cause, with the rest of the burst as corroborating evidence. Otherwise the API call that happened to
  land last (an UpdateService 20 s after the deploy) would be blamed instead of the deploy.
* No change inside the tolerance is itself a finding: look at traffic, dependencies, the database.

`find_cause` is pure (plain DataFrames); `diagnose_cause` records the finding.
"""

from __future__ import annotations

import dataclasses
import html
from typing import TYPE_CHECKING, Any

from runbook_kit import record
from runbook_kit.investigate.changes import KIND_PRIORITY

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from runbook_kit.aws.alb import Spike

__all__ = ["Correlation", "diagnose_cause", "find_cause"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Correlation:
    """The likely cause (a row of the change frame, as a dict) and the evidence around it."""

    spike_start: Any
    cause: dict[str, Any] | None
    related: list[dict[str, Any]]  # the rest of the cause's burst of changes
    candidates: pd.DataFrame  # every change in the tolerance window, with offset_min and burst
    tolerance_minutes: float
    why: str = ""

    @property
    def offset_min(self) -> float | None:
        return None if self.cause is None else float(self.cause["offset_min"])

    def members(self, source: str) -> list[dict[str, Any]]:
        """The cause and its burst from one source (`codedeploy`, `kubernetes`, `cloudtrail`)."""
        every = ([self.cause] if self.cause else []) + self.related
        return [c for c in every if c["source"] == source]

    def _repr_html_(self) -> str:
        head = (
            f"<b>Likely cause</b>: {html.escape(str(self.cause['change']))}"
            if self.cause
            else f"<b>No likely cause</b>: {html.escape(self.why)}"
        )
        table = (
            self.candidates.to_html(index=False) if len(self.candidates) else "<p>no change in the window</p>"
        )
        return f"{head}{table}"


def _bursts(times: list[Any], gap_minutes: float) -> list[int]:
    """Burst number of each time (sorted ascending): a new burst after a gap longer than `gap_minutes`."""
    ids, current = [], 0
    for i, t in enumerate(times):
        if i and (t - times[i - 1]).total_seconds() / 60 > gap_minutes:
            current += 1
        ids.append(current)
    return ids


def find_cause(
    changes: pd.DataFrame,
    *,
    start: Any,
    tolerance_minutes: float = 30,
    slack_minutes: float = 2,
    group_minutes: float = 5,
) -> Correlation:
    """Rank the changes around `start` (a UTC timestamp) and name the likely cause (pure)."""
    import pandas as pd

    start = pd.Timestamp(start)
    start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    offsets = (changes["time"] - start).dt.total_seconds() / 60
    window = changes[(offsets >= -tolerance_minutes) & (offsets <= slack_minutes)].copy()
    window["offset_min"] = offsets[window.index].round(2)
    window = window.sort_values("time", kind="stable").reset_index(drop=True)
    window["burst"] = _bursts(list(window["time"]), group_minutes)
    window["likely_cause"] = False
    if window.empty:
        before = changes[offsets < -tolerance_minutes]
        nearest = (
            f"; the nearest earlier change is {before.sort_values('time').iloc[-1]['change']} "
            f"{-offsets[before.index].max():.0f} min before"
            if len(before)
            else ""
        )
        return Correlation(
            spike_start=start,
            cause=None,
            related=[],
            candidates=window,
            tolerance_minutes=tolerance_minutes,
            why=f"no change in the {tolerance_minutes:g} min before the spike{nearest}",
        )
    burst = window[window["burst"] == window["burst"].max()].copy()
    burst["_priority"] = burst["kind"].map(KIND_PRIORITY).fillna(len(KIND_PRIORITY))
    burst["_distance"] = burst["offset_min"].abs()
    chosen = burst.sort_values(["_priority", "_distance"], kind="stable").index[0]
    window.loc[chosen, "likely_cause"] = True
    cause = _plain(window.loc[chosen].to_dict())
    related = [_plain(window.loc[i].to_dict()) for i in burst.index if i != chosen]
    return Correlation(
        spike_start=start,
        cause=cause,
        related=related,
        candidates=window,
        tolerance_minutes=tolerance_minutes,
        why=f"closest burst of changes before the spike ({len(burst)} events); "
        f"a {cause['kind']} is the most specific of them",
    )


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd

    return {k: (None if v is pd.NA or (isinstance(v, float) and v != v) else v) for k, v in row.items()}


def diagnose_cause(
    *,
    spike: Spike,
    changes: pd.DataFrame,
    tolerance_minutes: float = 30,
    slack_minutes: float = 2,
    group_minutes: float = 5,
) -> Correlation:
    """Name the change closest before the spike start as the likely cause, in a finding with the evidence."""
    import pandas as pd

    if not spike.detected or spike.start is None:
        record.finding("No spike detected: nothing to correlate with changes", severity="info", why=spike.why)
        return Correlation(
            spike_start=None,
            cause=None,
            related=[],
            candidates=changes.iloc[:0],
            tolerance_minutes=tolerance_minutes,
            why="no spike",
        )
    result = find_cause(
        changes,
        start=spike.start,
        tolerance_minutes=tolerance_minutes,
        slack_minutes=slack_minutes,
        group_minutes=group_minutes,
    )
    shown = result.candidates[["time", "offset_min", "source", "kind", "change", "who", "likely_cause"]]
    if spike.started_before_window:
        record.finding(
            "The spike started before the window: its start, and so its cause, may be earlier; "
            "widen window_minutes",
            severity="medium",
            window_start=spike.window_start,
        )
    if result.cause is None:
        record.finding(
            f"No change in the {tolerance_minutes:g} min before the spike at {spike.start:%H:%M} UTC: "
            "look at traffic, dependencies and the database",
            severity="medium",
            spike_start=spike.start,
            why=result.why,
        )
        return result
    cause = result.cause
    when = pd.Timestamp(cause["time"])
    lead = -float(cause["offset_min"])
    relation = f"{lead:.1f} min before" if lead >= 0 else f"{-lead:.1f} min after (same minute bin as)"
    evidence: dict[str, Any] = {
        "source": cause["source"],
        "kind": cause["kind"],
        "ref": cause["ref"],
        "target": cause["target"],
        "who": cause["who"],
        "change_time": when,
        "spike_start": spike.start,
        "minutes_before_spike": round(lead, 2),
        "related": [f"{r['time']:%H:%M:%S} {r['source']}: {r['change']}" for r in result.related],
        "candidates": shown,
    }
    deploys = result.members("codedeploy")
    rollouts = result.members("kubernetes")
    if deploys:
        evidence["deployment_id"] = deploys[0]["ref"]
    if rollouts:
        evidence["k8s_revision"] = rollouts[0]["revision"]
        evidence["k8s_previous_revision"] = rollouts[0]["previous_revision"]
    record.finding(
        f"Likely cause: {cause['change']} at {when:%H:%M:%S} UTC, {relation} the p99 spike",
        severity="high",
        **evidence,
    )
    return result
