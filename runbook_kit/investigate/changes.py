"""Change events from every source in one frame: CodeDeploy deploys, CloudTrail writes, Kubernetes rollouts.

Correlation needs one timeline, not three tables with three vocabularies. Each source is normalised to
the same columns — time (UTC), source, kind, change (one readable line), who, target, ref (what a
rollback or a revert names: deployment id, revision, CloudTrail event id) and revision/previous_revision
for Kubernetes rollouts — so that `find_cause` can rank them without knowing where they came from.

CodeDeploy's own `creator` is a category (`user`, `autoscaling`, `codeDeployRollback`), not a person;
when the CloudTrail frame holds the CreateDeployment call with the same deployment id, its user is the
"who" of the deploy. Pure functions over DataFrames: the sources are fetched by their own helpers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["COLUMNS", "KIND_PRIORITY", "change_events"]

COLUMNS = ["time", "source", "kind", "change", "who", "target", "ref", "revision", "previous_revision"]
# within one burst of changes, the most specific release event names the cause
KIND_PRIORITY = {"deploy": 0, "rollout": 1, "write": 2}


def _deploy_users(trail: pd.DataFrame | None) -> dict[str, str]:
    if trail is None or trail.empty:
        return {}
    users = {}
    for _, row in trail[trail["event"] == "CreateDeployment"].iterrows():
        deployment_id = (row.get("parameters") or {}).get("deploymentId")
        if deployment_id:
            users[str(deployment_id)] = str(row["user"])
    return users


def _from_deploys(deploys: pd.DataFrame, users: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for _, d in deploys.iterrows():
        description = f": {d['description']}" if d.get("description") else ""
        rows.append(
            {
                "time": d["created"],
                "source": "codedeploy",
                "kind": "deploy",
                "change": f"CodeDeploy deployment {d['deployment_id']} of {d['application']}/{d['group']} "
                f"({d['status']}){description}",
                "who": users.get(str(d["deployment_id"]), str(d.get("creator") or "")),
                "target": f"{d['application']}/{d['group']}",
                "ref": str(d["deployment_id"]),
            }
        )
    return rows


def _from_trail(trail: pd.DataFrame) -> list[dict[str, Any]]:
    writes = trail[~trail["read_only"].astype(bool)]
    rows = []
    for _, e in writes.iterrows():
        on = f" on {e['resources']}" if e["resources"] else ""
        rows.append(
            {
                "time": e["time"],
                "source": "cloudtrail",
                "kind": "write",
                "change": f"{e['event']} ({e['source']}){on}",
                "who": str(e["user"]),
                "target": str(e["resources"]),
                "ref": str(e["event_id"]),
            }
        )
    return rows


def _from_rollouts(rollouts: pd.DataFrame, namespace: str, deployment: str) -> list[dict[str, Any]]:
    rows = []
    previous = None
    for _, r in rollouts.sort_values("revision").iterrows():
        what = r.get("change_cause") or r.get("images") or ""
        rev = int(r["revision"])
        rows.append(
            {
                "time": r["created"],
                "source": "kubernetes",
                "kind": "rollout",
                "change": f"rollout of deployment/{deployment} in {namespace} to revision {rev}"
                f"{f': {what}' if what else ''}",
                "who": "",
                "target": f"deployment/{deployment} in {namespace}",
                "ref": str(rev),
                "revision": rev,
                "previous_revision": previous,
            }
        )
        previous = rev
    return rows


def change_events(
    *,
    deploys: pd.DataFrame | None = None,
    trail: pd.DataFrame | None = None,
    rollouts: pd.DataFrame | None = None,
    namespace: str = "",
    deployment: str = "",
) -> pd.DataFrame:
    """Every change in one frame, newest first (pass the frames of codedeploy.deployments,
    cloudtrail.lookup_events and k8s.rollout_history; any may be None or empty)."""
    import pandas as pd

    rows: list[dict[str, Any]] = []
    if deploys is not None and not deploys.empty:
        rows += _from_deploys(deploys, _deploy_users(trail))
    if trail is not None and not trail.empty:
        rows += _from_trail(trail)
    if rollouts is not None and not rollouts.empty:
        rows += _from_rollouts(rollouts, namespace, deployment)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    for column in ("revision", "previous_revision"):
        frame[column] = frame[column].astype("Int64")
    return frame.sort_values("time", ascending=False, kind="stable").reset_index(drop=True)
