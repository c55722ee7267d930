"""RDS for the database runbooks: instance status, the max_connections parameter, metrics, and the
two instance-level mitigations (raise max_connections, reboot) as guarded plans.

Why plans that explain themselves: `max_connections` is a *static* parameter on RDS PostgreSQL, so
ModifyDBParameterGroup can only stage it (ApplyMethod=pending-reboot) and the new value takes effect
at the next reboot — which drops every connection, the healthy ones too. The reboot plan is therefore
"nothing to do" unless the instance really has a change pending a reboot, and says why: a reboot does
not fix a leak (the leaking application reconnects and leaks again) and costs minutes of downtime.

Which instance: `db_instance_id` when given ("" says "not on RDS"); when None (not set) it is read
from the database's DSN when its host is an RDS endpoint (`<id>.<hash>.<region>.rds.amazonaws.com`),
else the database is taken as self-managed. No instance name is ever guessed.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from typing import TYPE_CHECKING, Any

from runbook_kit import clients, record, settings
from runbook_kit.aws.cloudwatch import COLUMNS as METRIC_COLUMNS
from runbook_kit.aws.cloudwatch import metric_frame, plot_metrics
from runbook_kit.errors import NotFound, backend_call
from runbook_kit.guard import Plan
from runbook_kit.plans import plan_no_change

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "RDS_METRICS",
    "instance_from_dsn",
    "instance_status",
    "parameters",
    "plan_max_connections",
    "plan_reboot",
    "plot_rds_metrics",
    "rds_metrics",
]

RDS_METRICS = ("DatabaseConnections", "CPUUtilization", "FreeableMemory")
_UNITS = {"DatabaseConnections": "count", "CPUUtilization": "%", "FreeableMemory": "bytes"}
_STATUS_COLUMNS = ["db_instance_id", "status", "instance_class", "engine", "engine_version", "multi_az",
                   "endpoint", "parameter_group", "parameter_apply_status", "pending_modifications",
                   "created"]
_PARAMETER_COLUMNS = ["parameter_group", "name", "value", "apply_type", "source", "modifiable",
                      "group_apply_status"]
_NOT_RDS = ("no RDS instance (db_instance_id is empty, or not set and the DSN host is no RDS endpoint): "
            "a self-managed PostgreSQL")
_RDS_ENDPOINT = re.compile(
    r"^(?P<id>[a-z][a-z0-9-]{0,62})\.[a-z0-9]+\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)\.rds\.amazonaws\.com(?:\.cn)?\.?$",
    re.IGNORECASE,
)


def _dsn_host(dsn: str) -> str:
    conninfo = settings.get().database(dsn or None) or ""
    if "://" in conninfo:
        netloc = urllib.parse.urlsplit(conninfo).netloc.rpartition("@")[2]
        return netloc.split(",")[0].rsplit(":", 1)[0] if not netloc.startswith("[") else ""
    found = re.search(r"(?:^|\s)host\s*=\s*'?([^'\s,]+)", conninfo)
    return found.group(1) if found else os.environ.get("PGHOST", "").split(",")[0]


def instance_from_dsn(dsn: str = "") -> str:
    """The RDS instance id in the DSN's host (`<id>.<hash>.<region>.rds.amazonaws.com`), else "".

    `dsn` is a DSN, a name from runbook.yaml or "" for the default (RUNBOOK_DSN, DATABASE_URL, PGHOST).
    """
    found = _RDS_ENDPOINT.match(_dsn_host(dsn).strip())
    return found.group("id").lower() if found else ""


def _resolve(db_instance_id: str | None, dsn: str) -> str:
    return db_instance_id if db_instance_id is not None else instance_from_dsn(dsn)


def _empty(columns: list[str]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(columns=columns)


def _not_rds_plan(action: str, command: str, reason: str) -> Plan:
    """A no-op plan for a database that is not on RDS, saying what to do there instead."""
    return plan_no_change(action=action, target="a self-managed PostgreSQL", backend="postgres",
                          command=command, reason=f"{_NOT_RDS}; {reason}")


def _unread_plan(action: str, db_instance_id: str, gaps: list[str]) -> Plan:
    """A plan that cannot be made: what it depends on could not be read. The guard refuses it."""
    return Plan(action=action, target=f"RDS instance {db_instance_id}", backend="aws",
                command="(not planned: the RDS state it depends on could not be read)",
                execute=lambda dry_run: None, missing_evidence=gaps,
                reason="planned without reading the instance would be guessing")


def _instance(db_instance_id: str, rds: Any) -> dict[str, Any]:
    with backend_call("aws", f"rds describe-db-instances {db_instance_id}"):
        found = rds.describe_db_instances(DBInstanceIdentifier=db_instance_id)["DBInstances"]
    if not found:
        raise NotFound("aws", f"rds describe-db-instances {db_instance_id}", "no such instance")
    return dict(found[0])


@record.read_step("RDS instance {db_instance_id}", fix="rds:DescribeDBInstances", columns=_STATUS_COLUMNS)
def instance_status(
    *, db_instance_id: str | None = None, dsn: str = "", rds: Any | None = None
) -> pd.DataFrame:
    """One row: status, class, engine, endpoint, parameter group and its apply status, pending changes."""
    import pandas as pd

    db_instance_id = _resolve(db_instance_id, dsn)
    if not db_instance_id:
        return _empty(_STATUS_COLUMNS)
    db = _instance(db_instance_id, rds or clients.aws("rds"))
    groups = db.get("DBParameterGroups") or [{}]
    endpoint = db.get("Endpoint") or {}
    return pd.DataFrame([{
        "db_instance_id": db.get("DBInstanceIdentifier"), "status": db.get("DBInstanceStatus"),
        "instance_class": db.get("DBInstanceClass"), "engine": db.get("Engine"),
        "engine_version": db.get("EngineVersion"), "multi_az": db.get("MultiAZ"),
        "endpoint": f"{endpoint.get('Address', '')}:{endpoint.get('Port', '')}".strip(":"),
        "parameter_group": groups[0].get("DBParameterGroupName"),
        "parameter_apply_status": groups[0].get("ParameterApplyStatus"),
        "pending_modifications": db.get("PendingModifiedValues") or {},
        "created": pd.Timestamp(db["InstanceCreateTime"]) if db.get("InstanceCreateTime") else None,
    }])


@record.read_step("RDS parameters of {db_instance_id}", columns=_PARAMETER_COLUMNS,
                  fix="rds:DescribeDBInstances, rds:DescribeDBParameters")
def parameters(*, db_instance_id: str | None = None, dsn: str = "",
               names: tuple[str, ...] = ("max_connections",), rds: Any | None = None) -> pd.DataFrame:
    """The instance's parameter group values for `names` (paginated DescribeDBParameters)."""
    import pandas as pd

    db_instance_id = _resolve(db_instance_id, dsn)
    if not db_instance_id:
        return _empty(_PARAMETER_COLUMNS)
    rds = rds or clients.aws("rds")
    db = _instance(db_instance_id, rds)
    group = (db.get("DBParameterGroups") or [{}])[0]
    name = group.get("DBParameterGroupName", "")
    rows = []
    with backend_call("aws", f"rds describe-db-parameters {name}"):
        for page in rds.get_paginator("describe_db_parameters").paginate(DBParameterGroupName=name):
            for p in page.get("Parameters", []):
                if p.get("ParameterName") in names:
                    rows.append({"parameter_group": name, "name": p["ParameterName"],
                                 "value": p.get("ParameterValue"), "apply_type": p.get("ApplyType"),
                                 "source": p.get("Source"), "modifiable": p.get("IsModifiable"),
                                 "group_apply_status": group.get("ParameterApplyStatus")})
    found = {r["name"] for r in rows}
    rows += [{"parameter_group": name, "name": n, "value": None, "apply_type": "static",
              "source": "engine-default", "modifiable": True,
              "group_apply_status": group.get("ParameterApplyStatus")}
             for n in names if n not in found]
    return pd.DataFrame(rows)


@record.read_step("RDS metrics of {db_instance_id}", fix="cloudwatch:GetMetricData", columns=METRIC_COLUMNS)
def rds_metrics(*, db_instance_id: str, minutes: float = 180, period: int = 60,
                metrics: tuple[str, ...] = RDS_METRICS, stats: tuple[str, ...] = ("Average", "Maximum"),
                cloudwatch: Any | None = None) -> pd.DataFrame:
    """DatabaseConnections, CPUUtilization and FreeableMemory over the window (a tidy frame)."""
    if not db_instance_id:
        return _empty(METRIC_COLUMNS)
    return metric_frame(namespace="AWS/RDS", metrics=metrics,
                        dimensions={"DBInstanceIdentifier": db_instance_id}, stats=stats,
                        minutes=minutes, period=period, cloudwatch=cloudwatch)


def plot_rds_metrics(frame: pd.DataFrame | None = None, *, db_instance_id: str | None = None, dsn: str = "",
                     minutes: float = 180, period: int = 60, cloudwatch: Any | None = None) -> Any:
    """One panel per RDS metric (a matplotlib Figure); fetches `rds_metrics` when no frame is given."""
    db_instance_id = _resolve(db_instance_id, dsn)
    if frame is None:
        frame = rds_metrics(db_instance_id=db_instance_id, minutes=minutes, period=period,
                            cloudwatch=cloudwatch)
    title = f"RDS {db_instance_id}: last {minutes:g} min" if db_instance_id else _NOT_RDS
    return plot_metrics(frame, title=title, units=_UNITS)


def plan_max_connections(
    *, db_instance_id: str | None = None, dsn: str = "", value: int | None = None,
    recommendation: Any | None = None, max_targets: int = 1, rds: Any | None = None,
) -> Plan:
    """Stage a new max_connections in the instance's parameter group (applies at the next reboot).

    `value` wins; else `recommendation` (runbook_kit.pg.assess_max_connections) decides, and a
    "do not raise" recommendation makes the plan a no-op that says why.
    """
    db_instance_id = _resolve(db_instance_id, dsn)
    if not db_instance_id:
        new = value or (recommendation.recommended if recommendation is not None else 0)
        return _not_rds_plan("set max_connections", f"ALTER SYSTEM SET max_connections = {new or 'N'};",
                             "run the command as a superuser, then restart PostgreSQL")
    frame = parameters(db_instance_id=db_instance_id, rds=rds)
    if record.missing(frame):
        return _unread_plan("set max_connections", db_instance_id, record.missing(frame))
    rds = rds or clients.aws("rds")
    current = frame.iloc[0]
    group, apply_type = str(current["parameter_group"]), str(current["apply_type"] or "static")
    old = current["value"]
    reason = ""
    if value is None and recommendation is not None:
        reason = str(recommendation.why)
        value = int(recommendation.recommended) if recommendation.raise_limit else 0
    method = "pending-reboot" if apply_type == "static" else "immediate"
    command = (f"aws rds modify-db-parameter-group --db-parameter-group-name {group} --parameters "
               f"\"ParameterName=max_connections,ParameterValue={value or old},ApplyMethod={method}\"")
    undo = (f"aws rds modify-db-parameter-group --db-parameter-group-name {group} --parameters "
            f"\"ParameterName=max_connections,ParameterValue={old},ApplyMethod={method}\""
            if old else f"aws rds reset-db-parameter-group --db-parameter-group-name {group} --parameters "
            f"\"ParameterName=max_connections,ApplyMethod={method}\"")
    if group.startswith("default."):
        reason += ("; the instance uses a default parameter group, which cannot be modified: create a custom "
                   "group, set max_connections there and attach it (that also needs a reboot)")
    changes: dict[str, Any] = {"parameter_group": group, "parameter": "max_connections",
                               "from": old, "to": value or old, "apply_method": method}
    noop = not value or bool(old and str(old).isdigit() and int(old) == value)
    if noop:
        reason = reason or f"max_connections is already {old}"

    def execute(dry_run: bool) -> Any:
        with backend_call("aws", f"rds modify-db-parameter-group {group}"):
            return rds.modify_db_parameter_group(DBParameterGroupName=group, Parameters=[{
                "ParameterName": "max_connections", "ParameterValue": str(value), "ApplyMethod": method}])

    def observe() -> dict[str, Any]:
        row = parameters(db_instance_id=db_instance_id, rds=rds).iloc[0]
        return {"max_connections": row["value"], "group_apply_status": row["group_apply_status"]}

    targets = [] if noop else [f"{group}/max_connections"]
    return Plan(action="set max_connections", target=f"parameter group {group} of {db_instance_id}",
                backend="aws", command=command, execute=execute, observe=observe, changes=changes,
                targets=targets, max_targets=max_targets, reason=reason.strip("; "), nothing_to_do=noop,
                undo=f"{undo} (then reboot, as for the change)")


def plan_reboot(*, db_instance_id: str | None = None, dsn: str = "", force: bool = False,
                rds: Any | None = None) -> Plan:
    """Reboot the instance — a no-op plan unless a change is pending a reboot (or `force`)."""
    db_instance_id = _resolve(db_instance_id, dsn)
    if not db_instance_id:
        return _not_rds_plan("reboot", "(no change)", "restart PostgreSQL only to apply a static setting")
    db: dict[str, Any] = {}
    client: Any = rds
    with record.degrade(f"RDS instance {db_instance_id}", fix="rds:DescribeDBInstances") as step:
        client = rds or clients.aws("rds")
        db = _instance(db_instance_id, client)
    if step.gap:
        return _unread_plan("reboot", db_instance_id, [f"{step.gap['what']}: {step.gap['why']}"])
    pending = [g.get("DBParameterGroupName") for g in db.get("DBParameterGroups") or []
               if g.get("ParameterApplyStatus") == "pending-reboot"]
    required = bool(pending) or force
    if pending:
        reason = f"parameter group {', '.join(map(str, pending))} has changes pending a reboot"
    elif force:
        reason = "forced by the operator"
    else:
        reason = ("not required: no parameter change is pending a reboot. A reboot drops every connection "
                  "(minutes of downtime, a failover on Multi-AZ) and does not fix a leak — the leaking "
                  "application reconnects and leaks again; terminate its idle sessions instead")
    changes: dict[str, Any] = {"status": db.get("DBInstanceStatus"), "multi_az": db.get("MultiAZ"),
                               "pending_reboot": pending}
    command = f"aws rds reboot-db-instance --db-instance-identifier {db_instance_id}"

    def execute(dry_run: bool) -> Any:
        with backend_call("aws", f"rds reboot-db-instance {db_instance_id}"):
            return client.reboot_db_instance(DBInstanceIdentifier=db_instance_id)

    def observe() -> dict[str, Any]:
        row = instance_status(db_instance_id=db_instance_id, rds=client).iloc[0]
        return {"status": row["status"], "parameter_apply_status": row["parameter_apply_status"]}

    return Plan(action="reboot", target=f"RDS instance {db_instance_id}", backend="aws", command=command,
                execute=execute, observe=observe, changes=changes,
                targets=[db_instance_id] if required else [], max_targets=1, reason=reason,
                nothing_to_do=not required,
                undo="A reboot cannot be undone; connections come back as clients reconnect")
