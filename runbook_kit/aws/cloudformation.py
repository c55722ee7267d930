"""CloudFormation stack events in a window: infrastructure changes made through stacks.

A stack update is several events (one per resource, then the stack's own `UPDATE_COMPLETE`); the
timeline wants them all, newest first, with the failed ones' reasons. Stacks are every active stack
of the account unless named.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from runbook_kit import clients
from runbook_kit.errors import backend_call

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["COLUMNS", "stack_events"]

COLUMNS = ["time", "stack", "resource", "type", "status", "reason"]
_ACTIVE = [
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "ROLLBACK_COMPLETE",
    "UPDATE_IN_PROGRESS",
    "CREATE_IN_PROGRESS",
    "UPDATE_ROLLBACK_FAILED",
    "UPDATE_FAILED",
]


def stack_events(
    *, stacks: Sequence[str] = (), minutes: float = 240, cloudformation: Any | None = None
) -> pd.DataFrame:
    """Every event of the stacks (all active stacks when none named) within `minutes`, newest first."""
    import pandas as pd

    cloudformation = cloudformation or clients.aws("cloudformation")
    since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)
    names = list(stacks)
    if not names:
        with backend_call("aws", "cloudformation list-stacks"):
            for page in cloudformation.get_paginator("list_stacks").paginate(StackStatusFilter=_ACTIVE):
                names += [s["StackName"] for s in page.get("StackSummaries") or []]
    rows = []
    for name in names:
        with backend_call("aws", f"cloudformation describe-stack-events {name}"):
            for page in cloudformation.get_paginator("describe_stack_events").paginate(StackName=name):
                events = page.get("StackEvents") or []
                rows += [
                    {
                        "time": e["Timestamp"],
                        "stack": name,
                        "resource": e.get("LogicalResourceId"),
                        "type": e.get("ResourceType"),
                        "status": e.get("ResourceStatus"),
                        "reason": e.get("ResourceStatusReason") or "",
                    }
                    for e in events
                ]
                if events and min(e["Timestamp"] for e in events) < since:  # newest first: done
                    break
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    frame = frame[frame["time"] >= pd.Timestamp(since)]
    return frame.sort_values("time", ascending=False, kind="stable").reset_index(drop=True)
