"""Connections by state and by application, as one matplotlib Figure.

Two bars answer the first two questions of the runbook at a glance: are the slots held by active
work or by idle sessions, and by whom. matplotlib is imported here, lazily, with the Agg backend
when no display is set, so `import runbook_kit` stays cheap and headless runs never need a GUI.
"""

from __future__ import annotations

from typing import Any

from runbook_kit.pg.snapshot import ConnectionSnapshot, connection_snapshot

__all__ = ["plot_connections"]

_COLORS = {"active": "#4c72b0", "idle": "#bbbbbb", "idle in transaction": "#dd8452",
           "idle in transaction (aborted)": "#c44e52", "hidden": "#8172b2"}


def plot_connections(snapshot: ConnectionSnapshot | None = None, *, dsn: str = "", top: int = 10) -> Any:
    """A Figure: connections by state (left) and by application, stacked by state (right)."""
    from matplotlib.figure import Figure

    snap = snapshot if snapshot is not None else connection_snapshot(dsn=dsn)
    by_state = snap.by("state")["connections"]
    by_app = snap.by("application_name").head(top).drop(columns="connections")
    fig = Figure(figsize=(11, 4), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 2])
    left.bar(by_state.index, by_state.values, color=[_COLORS.get(s, "#55a868") for s in by_state.index])
    left.axhline(snap.available, color="red", linestyle="--", label=f"usable limit ({snap.available})")
    left.set_title(f"Connections by state: {snap.used} of {snap.available} used")
    left.tick_params(axis="x", labelrotation=20)
    left.legend(loc="upper right")
    bottom = None
    labels = [str(i) for i in by_app.index]
    for state in by_app.columns:
        values = by_app[state].to_numpy()
        right.barh(labels, values, left=bottom, label=state, color=_COLORS.get(state, "#55a868"))
        bottom = values if bottom is None else bottom + values
    right.invert_yaxis()
    right.set_title(f"Top {len(labels)} applications by connections")
    right.legend(loc="lower right", fontsize="small")
    return fig
