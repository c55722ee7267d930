"""Plots for the record: restarts per pod, and memory usage against the limit.

matplotlib is imported lazily and only through `matplotlib.figure.Figure` (no pyplot), so no GUI
backend is ever selected, headless runs need no display, and `import runbook_kit` stays cheap; the
kernel shows the returned Figure as PNG (runbook_kit/_ipython.py).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["plot_memory", "plot_restarts"]

MAX_BARS = 40


def _figure(height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(9, max(2.5, height)), layout="constrained")


def plot_restarts(pods: pd.DataFrame, *, title: str = "") -> Any:
    """Restarts per pod against its age (pods from `pod_status`); crash-looping pods in red."""
    fig = _figure(4)
    ax = fig.add_subplot()
    df = pods.head(2000)
    if df.empty:
        ax.text(0.5, 0.5, "no pods", ha="center", va="center", transform=ax.transAxes)
        return fig
    crashing = df["status"].isin(["CrashLoopBackOff", "OOMKilled", "Error"]) | (df["restarts"] > 0)
    for mask, color, label in ((~crashing, "tab:green", "stable"), (crashing, "tab:red", "restarting")):
        part = df[mask]
        if not part.empty:
            ax.scatter(part["created"], part["restarts"], color=color, label=f"{label} ({len(part)})", s=25)
    for _, row in df[crashing].head(10).iterrows():
        ax.annotate(
            row["pod"],
            (row["created"], row["restarts"]),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    ax.set_xlabel("pod created (UTC)")
    ax.set_ylabel("restarts")
    ax.set_title(title or "Restarts per pod by creation time")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return fig


def plot_memory(resources: pd.DataFrame, *, title: str = "") -> Any:
    """Memory usage vs limit per container (from `container_resources`); says so when metrics are missing."""
    df = resources.head(MAX_BARS)
    fig = _figure(0.3 * len(df) + 1.5)
    ax = fig.add_subplot()
    labels = [f"{p}/{c}" for p, c in zip(df["pod"], df["container"], strict=True)]
    ax.barh(labels, df["memory_limit_mib"].fillna(0), color="lightgray", label="limit")
    usage = pd.to_numeric(df["memory_usage_mib"], errors="coerce")
    if usage.notna().any():
        ax.barh(labels, usage.fillna(0), color="tab:blue", height=0.5, label="usage")
    else:
        ax.text(
            0.5,
            0.5,
            "metrics.k8s.io unavailable: limits only",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
    ax.set_xlabel("MiB")
    ax.set_title(title or "Memory usage vs limit")
    ax.legend(loc="lower right")
    return fig
