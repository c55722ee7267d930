"""Why a Job failed (pure, on the API's JSON) and its record finalized from that, with a real runner
killed the ways a kubelet kills it (SIGTERM at a deadline or an eviction; SIGKILL on OOM or node loss)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runbook_kit.jobs import outcome
from runbook_kit.store import LocalStore


def failed_job(reason: str, message: str = "", deadline: int = 60) -> dict:
    return {
        "metadata": {"name": "rb-x-1", "namespace": "runbooks"},
        "spec": {"activeDeadlineSeconds": deadline},
        "status": {
            "conditions": [{"type": "Failed", "status": "True", "reason": reason, "message": message}]
        },
    }


def pod(conditions=(), terminated=None, waiting=None) -> dict:
    state = {"terminated": terminated} if terminated else {"waiting": waiting} if waiting else {"running": {}}
    return {
        "metadata": {"name": "rb-x-1-abcde"},
        "status": {
            "phase": "Failed",
            "conditions": list(conditions),
            "containerStatuses": [{"name": "runbook", "state": state}],
        },
    }


def test_job_state_from_conditions():
    assert outcome.job_state({"status": {}}) == "running"
    assert (
        outcome.job_state({"status": {"conditions": [{"type": "Complete", "status": "True"}]}}) == "succeeded"
    )
    assert outcome.job_state(failed_job("BackoffLimitExceeded")) == "failed"
    assert outcome.job_state({"status": {"conditions": [{"type": "Failed", "status": "False"}]}}) == "running"
    assert outcome.cause_of({"status": {}}, []) is None


def test_deadline_names_the_deadline():
    assert (
        outcome.cause_of(failed_job("DeadlineExceeded", deadline=90), [])
        == "the Job exceeded its activeDeadlineSeconds (90 s)"
    )


def test_deadline_while_the_image_cannot_be_pulled_says_both():
    stuck = pod(waiting={"reason": "ImagePullBackOff", "message": 'Back-off pulling image "nope:1"'})
    cause = outcome.cause_of(failed_job("DeadlineExceeded"), [stuck])
    assert cause is not None and cause.startswith("the Job exceeded its activeDeadlineSeconds (60 s) while ")
    assert "ImagePullBackOff" in cause
    assert outcome.start_problem([stuck]) is not None
    assert outcome.start_problem([pod()]) is None


def test_eviction_of_a_mutating_run_is_named_and_not_rerun():
    evicted = pod(
        conditions=[{"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"}],
        terminated={"exitCode": 143, "reason": "Error"},
    )
    cause = outcome.cause_of(
        failed_job(
            "PodFailurePolicy",
            "Pod runbooks/rb-x-1-abcde has condition DisruptionTarget matching FailJob rule at index 0",
        ),
        [evicted],
    )
    assert cause == (
        "the pod was evicted (DisruptionTarget: EvictionByEvictionAPI); a run that may mutate is not re-run"
    )


def test_node_loss_oom_and_exit_codes():
    lost = pod(
        conditions=[{"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager"}]
    )
    assert "node was lost" in outcome.cause_of(failed_job("PodFailurePolicy"), [lost])
    oom = pod(terminated={"exitCode": 137, "reason": "OOMKilled"})
    assert (
        outcome.cause_of(failed_job("BackoffLimitExceeded"), [oom])
        == "the runner's container ran out of memory (OOMKilled, exit code 137)"
    )
    plain = pod(terminated={"exitCode": 1, "reason": "Error"})
    assert (
        outcome.cause_of(failed_job("BackoffLimitExceeded"), [plain])
        == "the runner's container exited with code 1"
    )
    lost_record = pod(terminated={"exitCode": 4, "reason": "Error"})
    assert "fallback folder, gone with the pod" in outcome.cause_of(
        failed_job("BackoffLimitExceeded"), [lost_record]
    )
    assert outcome.runner_started([lost_record]) and not outcome.runner_started(
        [pod(waiting={"reason": "x"})]
    )
    assert "Odd: it broke" in outcome.cause_of(failed_job("Odd", "it broke"), [])


# --- finalizing a real record -----------------------------------------------------------------

SLOW = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "cells": [
        {
            "cell_type": "code",
            "id": "p",
            "metadata": {"tags": ["parameters"]},
            "outputs": [],
            "execution_count": None,
            "source": "dry_run = True\n",
        },
        {
            "cell_type": "code",
            "id": "a",
            "metadata": {},
            "outputs": [],
            "execution_count": None,
            "source": "import runbook_kit as rk\nrk.record.action('scaled api to 4', outcome='applied')\n",
        },
        {"cell_type": "markdown", "id": "m", "metadata": {}, "source": "## Wait for the rollout\n"},
        {
            "cell_type": "code",
            "id": "s",
            "metadata": {},
            "outputs": [],
            "execution_count": None,
            "source": "import time\nprint('waiting', flush=True)\ntime.sleep(60)\n",
        },
    ],
}


def _slow_cell(nb: dict) -> int:
    """The index of the slow cell in a record (the runner adds cells before it)."""
    return next(i for i, c in enumerate(nb["cells"]) if "".join(c["source"]).startswith("import time"))


def _killed_run(tmp_path: Path, sig: int) -> LocalStore:
    """A real `runbook run` whose runner gets `sig` while its slow cell runs, as a Job's pod would."""
    books = tmp_path / "books"
    books.mkdir()
    (books / "slow_job.ipynb").write_text(json.dumps(SLOW))
    store = tmp_path / "store"
    env = {
        **os.environ,
        "RUNBOOK_PATH": str(books),
        "RUNBOOK_JOB": "rb-slow-job-inc-1-0123456789",
        "RUNBOOK_JOB_NAMESPACE": "runbooks",
        "RUNBOOK_POD": "rb-slow-job-inc-1-0123456789-abcde",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runbook_kit.cli",
            "run",
            "slow_job",
            "--incident",
            "INC-1",
            "--store",
            str(store),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    local = LocalStore(str(store))
    while time.monotonic() < deadline:  # until the record shows the slow cell running
        raw = local.read("INC-1/incident.json")
        runs = json.loads(raw)["runs"] if raw else []
        if runs and runs[0].get("actions"):
            body = local.read(f"{runs[0]['record_id']}.ipynb")
            nb = json.loads(body) if body else None
            if nb and nb["cells"][_slow_cell(nb)]["metadata"].get("papermill", {}).get("status") == "running":
                break
        time.sleep(0.2)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    return local


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_runner_s_record_is_finalized_failed_naming_the_cause_and_the_cell(tmp_path, sig):
    store = _killed_run(tmp_path, sig)
    before = json.loads(store.read("INC-1/incident.json"))["runs"][0]
    assert before["status"] == ("aborted" if sig == signal.SIGTERM else "running")
    job = failed_job("DeadlineExceeded", deadline=60)
    job["metadata"]["name"] = "rb-slow-job-inc-1-0123456789"
    run = outcome.finalize(
        store,
        incident="INC-1",
        job=job,
        cause="the Job exceeded its activeDeadlineSeconds (60 s)",
        runbook="slow_job",
    )
    assert run["status"] == "failed"
    assert re.match(r"cell \d+: `import time` — the Job exceeded its activeDeadlineSeconds", run["failure"])
    assert [a["title"] for a in run["actions"]] == ["scaled api to 4"]  # kept
    index = json.loads(store.read("INC-1/incident.json"))["runs"]
    assert len(index) == 1 and index[0]["status"] == "failed" and index[0]["failure"] == run["failure"]
    nb = json.loads(store.read(f"{run['record_id']}.ipynb"))
    meta = nb["metadata"]["runbook_kit"]
    assert meta["status"] == "failed" and meta["job_failure"].startswith("the Job exceeded")
    assert "activeDeadlineSeconds" in "".join(nb["cells"][0]["source"])  # the summary on top says it
    errors = [
        o
        for c in nb["cells"]
        if c["cell_type"] == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert any(o["ename"] == "JobFailed" for o in errors)
    assert store.read(f"{run['record_id']}.html") is not None
    assert "the runner recorded: aborted" in run["failure"] if sig == signal.SIGTERM else True
    # a second finalize (another follower) changes nothing more
    again = outcome.finalize(store, incident="INC-1", job=job, cause="x", runbook="slow_job")
    assert again["failure"] == run["failure"] and "job_failure" not in again


def test_a_job_whose_runner_never_started_still_gets_a_run_in_the_index(tmp_path):
    store = LocalStore(str(tmp_path / "store"))
    job = failed_job("DeadlineExceeded")
    run = outcome.finalize(
        store,
        incident="INC-2",
        job=job,
        cause="the pod could not start (ErrImagePull)",
        runbook="pod_crashloop",
        runner_started=False,
    )
    index = json.loads(store.read("INC-2/incident.json"))["runs"]
    assert index == [{k: v for k, v in run.items() if k != "job_failure"}]
    assert run["status"] == "failed" and "did not start" in run["failure"]
    assert run["runner"]["job"] == "rb-x-1"
