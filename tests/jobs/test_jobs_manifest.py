"""The Job of a run, as data (runbook_kit.jobs.manifest): name, safety fields, arguments, credentials."""

from __future__ import annotations

import re

import pytest

from runbook_kit.errors import ParameterError
from runbook_kit.jobs import manifest
from runbook_kit.jobs.manifest import JobSpec, build_job

DNS = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def spec(**over):
    base = dict(
        runbook="pod_crashloop",
        incident="INC-1234",
        parameters={"namespace": "payments", "dry_run": True},
        image="registry.example/runbook-kit:1.4",
        store="s3://records/prod",
        namespace="runbooks",
        timeout=600.0,
        cell_timeout=120.0,
    )
    return JobSpec(**{**base, **over})


def test_name_is_dns_and_the_same_for_the_same_submission():
    a, b = spec(), spec(parameters={"dry_run": True, "namespace": "payments"})  # order does not matter
    assert a.name == b.name
    assert DNS.match(a.name) and len(a.name) <= 63
    assert a.name.startswith("rb-pod-crashloop-inc-1234-")
    assert spec(parameters={"namespace": "orders", "dry_run": True}).name != a.name
    assert spec(incident="INC-1235").name != a.name
    assert spec(run_id="again").name != a.name


def test_long_or_odd_names_still_make_valid_job_names():
    long = spec(runbook="a_very_long_runbook_name_" * 4, incident="INC.." + "x" * 120)
    assert DNS.match(long.name) and len(long.name) <= 63
    assert manifest.service_account_for("db_connection_exhaustion") == "runbook-db-connection-exhaustion"


def test_typed_and_string_parameters_give_the_same_identity():
    # `-p replicas 3` is coerced to 3 before the name is derived: the same run either way
    assert manifest.job_name(
        runbook="r", incident="i", parameters={"replicas": 3, "dry_run": False}
    ) == manifest.job_name(runbook="r", incident="i", parameters={"dry_run": False, "replicas": 3})
    assert manifest.arg_value(True) == "true" and manifest.arg_value(3) == "3"
    assert manifest.arg_value(["a", "b"]) == '["a","b"]'


def test_parameters_are_an_argument_vector_never_a_shell_string():
    job = build_job(spec(parameters={"namespace": "pay; rm -rf /", "dry_run": True}))
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["runbook"]
    args = container["args"]
    assert args[:2] == ["run", "pod_crashloop"]
    assert args[args.index("-p") + 1 : args.index("-p") + 3] == ["namespace", "pay; rm -rf /"]
    assert args[args.index("--store") + 1] == "s3://records/prod"
    assert args[args.index("--timeout") + 1] == "600"
    assert args[args.index("--cell-timeout") + 1] == "120"


def test_a_mutating_run_is_never_retried_and_fails_on_disruption():
    job = build_job(spec(parameters={"namespace": "payments", "dry_run": False}))
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["podFailurePolicy"]["rules"][0] == {
        "action": "FailJob",
        "onPodConditions": [{"type": "DisruptionTarget"}],
    }
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["metadata"]["labels"]["runbook-kit.io/mutating"] == "true"


def test_a_dry_run_is_not_counted_against_on_disruption():
    job = build_job(spec())
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["podFailurePolicy"]["rules"][0]["action"] == "Ignore"
    assert job["metadata"]["labels"]["runbook-kit.io/mutating"] == "false"


def test_a_runbook_without_dry_run_counts_as_mutating():
    assert manifest.may_mutate({"namespace": "x"})
    assert not manifest.may_mutate({"dry_run": True})
    assert manifest.may_mutate({"dry_run": False})


def test_deadline_ttl_labels_service_account_and_secret_references():
    job = build_job(
        spec(
            ttl_seconds=600,
            startup_seconds=30,
            env_from_secrets=("runbook-slack",),
            started_by="ana",
            episode="42",
        )
    )
    assert job["spec"]["activeDeadlineSeconds"] == 630
    assert job["spec"]["ttlSecondsAfterFinished"] == 600
    labels = job["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "runbook-kit"
    assert labels["runbook-kit.io/incident"] == "INC-1234"
    assert labels["runbook-kit.io/runbook"] == "pod_crashloop"
    assert labels["runbook-kit.io/episode"] == "42"
    assert labels["runbook-kit.io/started-by"] == "ana"
    assert job["spec"]["template"]["metadata"]["labels"] == labels
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "runbook-pod-crashloop"
    container = pod["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "runbook-slack"}}]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["RUNBOOK_JOB"] == job["metadata"]["name"]
    assert "RUNBOOK_READ_ONLY" not in env
    # nothing inline that looks like a credential: only names and references
    assert not any(
        re.search(r"(?i)secret|token|password|key", str(e.get("value", ""))) for e in container["env"]
    )


def test_a_read_only_machine_submits_read_only_jobs():
    job = build_job(spec(parameters={"namespace": "p", "dry_run": False}, read_only=True))
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["RUNBOOK_READ_ONLY"] == "1"
    assert job["metadata"]["labels"]["runbook-kit.io/mutating"] == "false"


@pytest.mark.parametrize(
    ("over", "said"),
    [
        ({"image": ""}, "no image"),
        ({"store": "./incidents"}, "s3://"),
        ({"namespace": "Bad_NS"}, "namespace"),
        ({"service_account": "bad sa"}, "ServiceAccount"),
        ({"env_from_secrets": ("bad/secret",)}, "Secret"),
    ],
)
def test_specs_that_cannot_make_a_safe_job_are_refused(over, said):
    with pytest.raises(ParameterError, match=said):
        build_job(spec(**over))
