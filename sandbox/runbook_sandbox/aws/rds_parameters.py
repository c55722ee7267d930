"""RDS `DescribeDBParameters` with the real service's fields and filters.

moto returns only the parameters a caller modified, as `{ParameterName, ParameterValue,
ApplyMethod}`, and ignores the `Source` filter. A runbook that asks "is max_connections set by us or
the engine default, is it static (needs a reboot)?" reads `Source`, `ApplyType`, `IsModifiable`,
`DataType`; with moto it would get None and draw no conclusion. This answers from moto's stored
group (the user-set values) merged with a catalog of the PostgreSQL parameters runbooks look at,
described as the real `postgres16` family describes them.
"""

from __future__ import annotations

from typing import Any

from runbook_sandbox.aws.cloudtrail import ApiError

__all__ = ["POSTGRES_PARAMETERS", "describe_db_parameters"]


def _p(
    name: str,
    value: str | None,
    apply_type: str,
    data_type: str,
    allowed: str,
    description: str,
    source: str = "engine-default",
) -> dict[str, Any]:
    out = {
        "ParameterName": name,
        "Description": description,
        "Source": source,
        "ApplyType": apply_type,
        "DataType": data_type,
        "AllowedValues": allowed,
        "IsModifiable": True,
        "ApplyMethod": "pending-reboot",
    }
    if value is not None:
        out["ParameterValue"] = value
    return out


POSTGRES_PARAMETERS: dict[str, dict[str, Any]] = {
    p["ParameterName"]: p
    for p in [
        _p(
            "max_connections",
            "LEAST({DBInstanceClassMemory/9531392},5000)",
            "static",
            "integer",
            "6-8388607",
            "Sets the maximum number of concurrent connections.",
        ),
        _p(
            "shared_buffers",
            "{DBInstanceClassMemory/32768}",
            "static",
            "integer",
            "16-1073741823",
            "(8kB) Sets the number of shared memory buffers used by the server.",
        ),
        _p(
            "shared_preload_libraries",
            "pg_stat_statements",
            "static",
            "list",
            "auto_explain,orafce,pg_cron,pg_hint_plan,pg_similarity,pg_stat_statements,pg_tle,pglogical",
            "Lists shared libraries to preload into server.",
        ),
        _p(
            "work_mem",
            None,
            "dynamic",
            "integer",
            "64-2147483647",
            "(kB) Sets the maximum memory to be used for query workspaces.",
        ),
        _p(
            "maintenance_work_mem",
            "GREATEST({DBInstanceClassMemory*1024/63963136},65536)",
            "dynamic",
            "integer",
            "1024-2147483647",
            "(kB) Sets the maximum memory to be used for maintenance operations.",
        ),
        _p(
            "idle_in_transaction_session_timeout",
            "86400000",
            "dynamic",
            "integer",
            "0-2147483647",
            "(ms) Sets the maximum allowed duration of any idling transaction.",
        ),
        _p(
            "idle_session_timeout",
            None,
            "dynamic",
            "integer",
            "0-2147483647",
            "(ms) Sets the maximum allowed idle time between queries, when not in a transaction.",
        ),
        _p(
            "statement_timeout",
            None,
            "dynamic",
            "integer",
            "0-2147483647",
            "(ms) Sets the maximum allowed duration of any statement.",
        ),
        _p(
            "lock_timeout",
            None,
            "dynamic",
            "integer",
            "0-2147483647",
            "(ms) Sets the maximum allowed duration of any wait for a lock.",
        ),
        _p(
            "log_min_duration_statement",
            None,
            "dynamic",
            "integer",
            "-1-2147483647",
            "(ms) Sets the minimum execution time above which statements will be logged.",
        ),
        _p(
            "tcp_keepalives_idle",
            "300",
            "dynamic",
            "integer",
            "0-2147483647",
            "(s) Time between issuing TCP keepalives.",
        ),
        _p("rds.force_ssl", "1", "dynamic", "boolean", "0,1", "Force SSL connections.", source="system"),
        _p("autovacuum", "1", "dynamic", "boolean", "0,1", "Starts the autovacuum subprocess."),
    ]
}


def describe_db_parameters(backend: Any, request: dict[str, Any]) -> dict[str, Any]:
    name = str(request.get("DBParameterGroupName", ""))
    group = backend.db_parameter_groups.get(name.lower()) or backend.db_parameter_groups.get(name)
    if group is None:
        raise ApiError("DBParameterGroupNotFound", f"DBParameterGroup not found: {name}", status=404)
    merged = (
        {k: dict(v) for k, v in POSTGRES_PARAMETERS.items()}
        if (group.family or "").startswith("postgres")
        else {}
    )
    for pname, stored in group.parameters.items():
        entry = merged.setdefault(pname, _p(pname, None, "dynamic", "string", "", ""))
        entry.update({k: v for k, v in stored.items() if v is not None})
        entry["Source"] = "user"
    parameters = sorted(merged.values(), key=lambda p: p["ParameterName"])
    if request.get("Source"):
        parameters = [p for p in parameters if p["Source"] == request["Source"]]
    size = int(request.get("MaxRecords") or 100)
    if not 20 <= size <= 100:
        raise ApiError("InvalidParameterValue", "MaxRecords must be between 20 and 100.")
    start = int(request.get("Marker") or 0)
    page = parameters[start : start + size]
    out: dict[str, Any] = {"Parameters": page}
    if start + size < len(parameters):
        out["Marker"] = str(start + size)
    return out
