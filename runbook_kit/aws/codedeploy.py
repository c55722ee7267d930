"""CodeDeploy deployments of an application as a DataFrame: what was released, when, and how it ended.

A deploy is the most frequent cause of a regression, and CodeDeploy knows every one: its id (what a
rollback names), status, create and complete times, who started it (`creator`: user, autoscaling,
codeDeployRollback...) and the description the pipeline wrote. ListDeployments needs a deployment group
whenever an application is named, so without `group` every group of the application is listed;
BatchGetDeployments reads the details 25 ids at a time. An unknown application is a NotFound, not an
empty table: an empty table would read as "no deploy happened".
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from runbook_kit import clients, record
from runbook_kit.errors import NotFound, backend_call

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["COLUMNS", "deployments"]

COLUMNS = [
    "deployment_id",
    "application",
    "group",
    "status",
    "created",
    "completed",
    "creator",
    "description",
]
_BATCH = 25


def _groups(codedeploy: Any, application: str) -> list[str]:
    with backend_call("aws", f"deploy get-application {application}"):
        codedeploy.get_application(applicationName=application)
    names: list[str] = []
    with backend_call("aws", f"deploy list-deployment-groups {application}"):
        for page in codedeploy.get_paginator("list_deployment_groups").paginate(applicationName=application):
            names += page.get("deploymentGroups", [])
    return names


@record.read_step("CodeDeploy deployments of {application}", columns=COLUMNS,
                  fix="codedeploy:ListDeploymentGroups, ListDeployments, BatchGetDeployments")
def deployments(
    *,
    application: str,
    group: str = "",
    minutes: float = 1440,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    codedeploy: Any | None = None,
) -> pd.DataFrame:
    """Deployments created in the window (default: the last 24 h), newest first."""
    import pandas as pd

    if not application:
        raise NotFound("aws", "deploy list-deployments", "no CodeDeploy application given")
    codedeploy = codedeploy or clients.aws("codedeploy")
    end = end or dt.datetime.now(dt.UTC)
    start = start or end - dt.timedelta(minutes=minutes)
    groups = [group] if group else _groups(codedeploy, application)
    ids: list[str] = []
    for name in groups:
        with backend_call("aws", f"deploy list-deployments {application}/{name}"):
            for page in codedeploy.get_paginator("list_deployments").paginate(
                applicationName=application,
                deploymentGroupName=name,
                createTimeRange={"start": start, "end": end},
            ):
                ids += page.get("deployments", [])
    rows = []
    for offset in range(0, len(ids), _BATCH):
        with backend_call("aws", f"deploy batch-get-deployments {application}"):
            infos = codedeploy.batch_get_deployments(deploymentIds=ids[offset : offset + _BATCH])
        for info in infos.get("deploymentsInfo", []):
            rows.append(
                {
                    "deployment_id": info.get("deploymentId"),
                    "application": info.get("applicationName"),
                    "group": info.get("deploymentGroupName"),
                    "status": info.get("status"),
                    "created": info.get("createTime"),
                    "completed": info.get("completeTime"),
                    "creator": info.get("creator", ""),
                    "description": info.get("description", ""),
                }
            )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for column in ("created", "completed"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame.sort_values("created", ascending=False, kind="stable").reset_index(drop=True)
