"""RUNBOOK_READ_ONLY against the whole sandbox: no write reaches any server, by any path a notebook has.

The witnesses are the servers, not the kit: the Kubernetes API server's request log, the AWS
sandbox's CloudTrail (every successful write call to moto is recorded as a management event), and
PostgreSQL's own pg_stat_statements and pg_stat_activity.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import urllib.request
from typing import Any

import boto3
import psycopg
import pytest

from runbook_kit.runner import run_notebook
from runbook_sandbox.scenarios import runbook_parameters

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]


def k8s_writes(info: Any, since: int) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{info.k8s_url}/_sandbox/requests", timeout=10) as response:
        log = json.load(response)[since:]
    return [r for r in log if r["method"] not in ("GET", "HEAD") and not r.get("dry_run")]


def k8s_log_length(info: Any) -> int:
    with urllib.request.urlopen(f"{info.k8s_url}/_sandbox/requests", timeout=10) as response:
        return len(json.load(response))


def aws_writes(info: Any, since: dt.datetime) -> list[str]:
    trail = boto3.client("cloudtrail", endpoint_url=info.aws_endpoint, region_name="us-east-1",
                         aws_access_key_id="testing", aws_secret_access_key="testing")
    events = trail.lookup_events(
        LookupAttributes=[{"AttributeKey": "ReadOnly", "AttributeValue": "false"}],
        StartTime=since, EndTime=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))["Events"]
    return [e["EventName"] for e in events]


def pg_signals(info: Any) -> list[tuple[str, int]]:
    with psycopg.connect(info.pg_dsn, connect_timeout=5, autocommit=True) as conn:
        return conn.execute(
            "SELECT query, calls FROM pg_stat_statements WHERE query ~* "
            "'pg_(terminate|cancel)_backend|default_transaction_read_only|update|insert|delete|alter'"
            " AND query !~* 'pg_stat_statements'").fetchall()


def pg_client_pids(info: Any) -> set[int]:
    with psycopg.connect(info.pg_dsn, connect_timeout=5, autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' "
                            "AND application_name <> 'runbook_kit' AND pid <> pg_backend_pid()").fetchall()
    return {r[0] for r in rows}


def reset_pg_statements(info: Any) -> None:
    with psycopg.connect(info.pg_dsn, connect_timeout=5, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")


_RAW_CLIENTS = r"""
import os
import runbook_kit as rk
from runbook_kit import clients

def attempt(label, fn):
    try:
        fn()
    except rk.UnsafeActionRefused as exc:
        print("REFUSED", label, "|", exc)
    except Exception as exc:
        print("ERROR", label, "|", type(exc).__name__, exc)
    else:
        print("SENT", label)

rds = clients.aws("rds")
attempt("rds reboot", lambda: rds.reboot_db_instance(DBInstanceIdentifier="orders-db"))
attempt("rds modify", lambda: rds.modify_db_parameter_group(DBParameterGroupName="orders-db-params",
        Parameters=[{"ParameterName": "max_connections", "ParameterValue": "500",
                     "ApplyMethod": "pending-reboot"}]))
attempt("s3 put", lambda: clients.aws("s3").put_object(Bucket="anything", Key="k", Body=b"x"))
attempt("rds describe", lambda: rds.describe_db_instances())
apps = clients.apps_v1()
body = {"spec": {"replicas": 7}}
attempt("k8s scale", lambda: apps.patch_namespaced_deployment_scale("api", "payments", body))
attempt("k8s scale dry run",
        lambda: apps.patch_namespaced_deployment_scale("api", "payments", body, dry_run="All"))
attempt("k8s delete pod", lambda: clients.core_v1().delete_collection_namespaced_pod("payments"))
attempt("k8s list pods", lambda: clients.core_v1().list_namespaced_pod("payments"))
conn = clients.pg_connect()
attempt("pg terminate", lambda: conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"))
attempt("pg read-write off", lambda: conn.execute("SET default_transaction_read_only = off"))
attempt("pg create", lambda: conn.execute("CREATE TABLE runbook_read_only_probe (x int)"))
attempt("pg read-write txn", lambda: setattr(conn, "read_only", False))
attempt("pg select", lambda: conn.execute("SELECT count(*) FROM pg_stat_activity").fetchone())
"""


def test_raw_clients_refuse_every_write_on_a_read_only_machine(fresh_sandbox, tmp_path):
    info = fresh_sandbox("all")
    k8s_before, start = k8s_log_length(info), dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    reset_pg_statements(info)
    script = tmp_path / "cell.py"
    script.write_text(_RAW_CLIENTS)
    env = {**os.environ, **info.env, "RUNBOOK_READ_ONLY": "yes"}
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    lines = {}
    for line in out.splitlines():
        word, _, rest = line.partition(" ")
        lines[rest.split(" | ")[0]] = word
    refused = {"rds reboot", "rds modify", "s3 put", "k8s scale", "k8s delete pod", "pg terminate",
               "pg read-write off", "pg read-write txn"}
    assert {k for k, v in lines.items() if v == "REFUSED"} == refused, out
    assert "SENT rds describe" in out and "SENT k8s scale dry run" in out and "SENT k8s list pods" in out
    assert "SENT pg select" in out
    assert "cannot execute CREATE TABLE in a read-only transaction" in out, out  # the server refuses
    assert k8s_writes(info, k8s_before) == []
    assert aws_writes(info, start) == []
    assert [q for q, _ in pg_signals(info) if "runbook_read_only_probe" not in q] == []


MUTATING_RUNS = [
    ("pod_crashloop", {"mitigation": "restart"}),
    ("k8s_mitigation", {"action": "scale", "replicas": 5}),
    ("db_mitigation", {"action": "terminate_idle", "max_targets": 50}),
    ("db_connection_exhaustion", {"raise_limit": True, "allow_reboot": True}),
    ("api_latency_spike", {}),
]


def test_every_runbook_on_a_read_only_machine_sends_no_write(fresh_sandbox, tmp_path):
    info = fresh_sandbox("all")
    k8s_before, start = k8s_log_length(info), dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    sessions_before = pg_client_pids(info)
    reset_pg_statements(info)
    env = {**info.env, "RUNBOOK_READ_ONLY": "1"}
    for name, parameters in MUTATING_RUNS:
        result = run_notebook(name, parameters=runbook_parameters(name, **parameters, dry_run=False),
                              incident="INC-RO",
                              store=str(tmp_path / "store"), env=env, timeout=600)
        actions = [e for e in result.entries if e.kind == "action"]
        assert actions, (name, result.failure)
        assert not [e for e in actions if e.outcome == "applied"], name
        refused = [e for e in actions if e.outcome == "refused"]
        assert refused or all(e.outcome == "skipped" for e in actions), (name, actions)
        assert all("RUNBOOK_READ_ONLY=1 is set" in e.details["why"] for e in refused), (name, refused)
    for name in ("pod_crashloop", "k8s_mitigation", "db_mitigation", "db_connection_exhaustion",
                 "api_latency_spike"):  # the everyday case: dry runs on a read-only machine just work
        result = run_notebook(name, parameters=runbook_parameters(name), incident="INC-RO",
                              store=str(tmp_path / "store"), env=env, timeout=600)
        assert result.status == "succeeded", (name, result.failure)
    assert k8s_writes(info, k8s_before) == []
    assert aws_writes(info, start) == []
    assert pg_signals(info) == []
    assert sessions_before <= pg_client_pids(info), "every planted session is still there"
