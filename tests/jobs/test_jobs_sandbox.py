"""`runbook run --on kubernetes` against the incident sandbox: the Job, its logs, its record on S3, the
summary and exit code of a local run; one Job per submission; eviction and deadline named in the record."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
import threading
import time

import pytest
from jobs_harness import new_incident, use_jobs_env

from runbook_sandbox.scenarios import runbook_parameters

pytestmark = pytest.mark.slow


def _summary(stderr: str) -> list[str]:
    """What `runbook run` prints of the run itself (the Job's own lines and the pod's log set aside)."""
    return [
        ln
        for ln in stderr.splitlines()
        if not ln.startswith("[job/") and not ln.startswith("runbook: submitted job/")
    ]


def _params(runbook: str) -> list[str]:
    return [arg for k, v in runbook_parameters(runbook).items() for arg in ("-p", k, str(v))]


def test_pod_crashloop_as_a_job_prints_what_a_local_run_prints(jobs_env):
    incident = new_incident()
    on_k8s = jobs_env.run(
        "run",
        "pod_crashloop",
        *_params("pod_crashloop"),
        "--incident",
        incident,
        "--store",
        jobs_env.store,
        "--on",
        "kubernetes",
    )
    local = jobs_env.run(
        "run",
        "pod_crashloop",
        *_params("pod_crashloop"),
        "--incident",
        new_incident(),
        "--store",
        jobs_env.store,
    )
    assert on_k8s.returncode == local.returncode == 0, on_k8s.stderr + local.stderr
    assert _summary(on_k8s.stderr) == _summary(local.stderr)
    # the pod's log streamed, prefixed by its Job
    job_lines = [ln for ln in on_k8s.stderr.splitlines() if ln.startswith("[job/rb-pod-crashloop-")]
    assert any("runbook: succeeded" in ln for ln in job_lines)
    # the record is on S3, where stdout says, and names its Job
    record = on_k8s.stdout.strip().splitlines()[-1]
    assert record.startswith(f"{jobs_env.store}/{incident}/") and record.endswith("-pod_crashloop.ipynb")
    run = jobs_env.incident(incident)["runs"][0]
    assert run["notebook"] == record and run["status"] == "succeeded"
    job_name = run["runner"]["job"]
    assert run["runner"]["image"] == "runbook-kit:test" and run["runner"]["namespace"] == "default"
    batch, _, _ = jobs_env.k8s()
    job = batch.read_namespaced_job(job_name, "default")
    assert job.status.succeeded == 1
    assert job.metadata.labels["runbook-kit.io/incident"] == incident
    if shutil.which("kubectl"):
        shown = subprocess.run(
            ["kubectl", "get", "jobs", "-n", "default"],
            env=jobs_env.env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert job_name in shown.stdout


def test_exit_codes_are_those_of_a_local_run(jobs_env):
    incident = new_incident()
    failed = jobs_env.run(
        "run",
        "hello_job",
        "-p",
        "fail",
        "true",
        "--incident",
        incident,
        "--store",
        jobs_env.store,
        "--on",
        "kubernetes",
    )
    local = jobs_env.run(
        "run", "hello_job", "-p", "fail", "true", "--incident", incident, "--store", jobs_env.store
    )
    assert failed.returncode == local.returncode == 1
    assert _summary(failed.stderr) == _summary(local.stderr)
    assert _summary(failed.stderr)[-1].startswith("runbook: failed: cell 6")


def test_the_same_submission_twice_is_one_job(jobs_env):
    incident = new_incident()
    args = (
        "run",
        "hello_job",
        "-p",
        "sleep",
        "2",
        "--incident",
        incident,
        "--store",
        jobs_env.store,
        "--on",
        "kubernetes",
    )
    results = [None, None]

    def submit(i):
        results[i] = jobs_env.run(*args)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    assert sum("attaching to it, not running it again" in r.stderr for r in results) == 1
    assert results[0].stdout == results[1].stdout  # the same record
    batch, _, _ = jobs_env.k8s()
    jobs = batch.list_namespaced_job("default", label_selector=f"runbook-kit.io/incident={incident}").items
    assert len(jobs) == 1
    assert len(jobs_env.incident(incident)["runs"]) == 1
    # a deliberate second run of the same thing: --run-id
    again = jobs_env.run(*args, "--run-id", "second-look")
    assert again.returncode == 0, again.stderr
    assert (
        len(batch.list_namespaced_job("default", label_selector=f"runbook-kit.io/incident={incident}").items)
        == 2
    )
    assert len(jobs_env.incident(incident)["runs"]) == 2


def _wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError("timed out waiting")


def test_an_evicted_mutating_run_is_not_rerun_and_its_record_names_the_eviction(jobs_env):
    incident = new_incident()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runbook_kit.cli",
            "run",
            "hello_job",
            "-p",
            "dry_run",
            "false",
            "-p",
            "sleep",
            "60",
            "--incident",
            incident,
            "--store",
            jobs_env.store,
            "--on",
            "kubernetes",
        ],
        env=jobs_env.env,
        cwd=jobs_env.home,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        batch, core, _ = jobs_env.k8s()

        def acting_pod():
            try:
                runs = jobs_env.incident(incident)["runs"]
            except Exception:
                return None
            return runs and runs[0].get("actions") and runs[0]["runner"]["pod"]

        pod = _wait_for(acting_pod)
        core.create_namespaced_pod_eviction(
            pod,
            "default",
            {
                "apiVersion": "policy/v1",
                "kind": "Eviction",
                "metadata": {"name": pod, "namespace": "default"},
            },
        )
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    assert "the pod was evicted (DisruptionTarget: EvictionByEvictionAPI)" in err
    runs = jobs_env.incident(incident)["runs"]
    assert len(runs) == 1
    run = runs[0]
    assert run["status"] == "failed"
    assert "the pod was evicted (DisruptionTarget: EvictionByEvictionAPI)" in run["failure"]
    assert run["failure"].startswith("cell 5:")  # the cell that was running
    assert [a["outcome"] for a in run["actions"]] == ["applied"]  # kept
    pods = core.list_namespaced_pod("default", label_selector=f"job-name={run['runner']['job']}").items
    assert all(p.metadata.name == run["runner"]["pod"] for p in pods)  # never re-run (evicted: deleted)
    job = batch.read_namespaced_job(run["runner"]["job"], "default")
    assert [c.reason for c in job.status.conditions if c.type == "Failed"] == ["PodFailurePolicy"]
    assert not job.status.active and not job.status.succeeded


def test_a_run_past_its_job_deadline_ends_failed_naming_the_deadline(jobs_env, monkeypatch):
    from runbook_kit import clients
    from runbook_kit.jobs.executor import RunRequest
    from runbook_kit.jobs.submit import JobSettings, KubernetesExecutor

    use_jobs_env(jobs_env, monkeypatch)
    lines: list[str] = []
    executor = KubernetesExecutor(
        JobSettings.load(
            conf={
                "image": "runbook-kit:test",
                "namespace": "default",
                "env": {"RUNBOOK_PATH": jobs_env.env["RUNBOOK_PATH"]},
            }
        ),
        echo=lines.append,
    )
    incident = new_incident()
    spec = executor.spec(
        RunRequest(
            runbook="hello_job",
            parameters={"sleep": "60"},
            incident=incident,
            store=jobs_env.store,
            timeout=120,
        )
    )
    spec = dataclasses.replace(spec, active_deadline=6)  # the Job's deadline before the runner's own timeout
    executor.submit(spec)
    result = executor.result(spec, executor.wait(spec))
    clients.reset()
    assert result.status == "failed" and result.exit_code == 1
    assert "the Job exceeded its activeDeadlineSeconds (6 s)" in result.failure
    assert re.match(r"cell \d+: `", result.failure)  # the cell that was running (a loaded machine: any)
    assert any("failed: the Job exceeded its activeDeadlineSeconds (6 s)" in ln for ln in lines)
    run = jobs_env.incident(incident)["runs"][0]
    assert run["status"] == "failed" and "activeDeadlineSeconds (6 s)" in run["failure"]


def test_twenty_jobs_for_one_incident_at_once_lose_no_run(jobs_env, monkeypatch):
    """20 pods writing the same incident.json on S3 (compare-and-swap): 20 runs in its index."""
    from concurrent.futures import ThreadPoolExecutor

    from runbook_kit import clients
    from runbook_kit.jobs.executor import RunRequest
    from runbook_kit.jobs.submit import JobSettings, KubernetesExecutor

    use_jobs_env(jobs_env, monkeypatch)
    conf = {
        "image": "runbook-kit:test",
        "namespace": "default",
        "env": {"RUNBOOK_PATH": jobs_env.env["RUNBOOK_PATH"]},
    }
    incident = new_incident()
    said: list[str] = []

    def one(i: int):
        executor = KubernetesExecutor(JobSettings.load(conf=conf), echo=said.append)
        request = RunRequest(
            runbook="hello_job",
            parameters={"sleep": "0.5"},
            incident=incident,
            store=jobs_env.store,
            timeout=300,
            run_id=f"storm-{i}",
        )
        spec = executor.spec(request)
        executor.submit(spec)
        return executor.result(spec, executor.wait(spec))

    try:
        with ThreadPoolExecutor(max_workers=20) as pool:
            results = list(pool.map(one, range(20)))
    finally:
        clients.reset()
    trouble = [line for line in said if "failed" in line]
    if trouble:  # what the pods said
        _, core, _ = jobs_env.k8s()
        for pod in core.list_namespaced_pod(
            "default", label_selector="runbook-kit.io/incident=" + incident
        ).items:
            if pod.status.phase == "Failed":
                trouble.append(core.read_namespaced_pod_log(pod.metadata.name, "default")[-2000:])
    assert [r.status for r in results] == ["succeeded"] * 20, trouble
    runs = jobs_env.incident(incident)["runs"]
    assert len(runs) == 20, [r["runner"].get("job") for r in runs]
    assert len({r["runner"]["job"] for r in runs}) == 20  # one run per Job
    assert len({r["record_id"] for r in runs}) == 20
    assert all(r["status"] == "succeeded" for r in runs)


def test_ctrl_c_detaches_and_the_job_keeps_running(jobs_env):
    import signal

    incident = new_incident()
    args = [
        "run",
        "hello_job",
        "-p",
        "sleep",
        "5",
        "--incident",
        incident,
        "--store",
        jobs_env.store,
        "--on",
        "kubernetes",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "runbook_kit.cli", *args],
        env=jobs_env.env,
        cwd=jobs_env.home,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    batch, _, _ = jobs_env.k8s()
    _wait_for(
        lambda: (
            batch.list_namespaced_job("default", label_selector=f"runbook-kit.io/incident={incident}").items
        )
    )
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    said = err.strip().splitlines()[-1]
    assert said.startswith("runbook: detached from job/rb-hello-job-") and "it keeps running" in said
    assert "kubectl logs -f job/" in said and f"runbook status {incident}" in said
    job = batch.list_namespaced_job("default", label_selector=f"runbook-kit.io/incident={incident}").items[0]
    assert not job.status.failed  # not killed
    again = jobs_env.run(*args)  # the same command attaches and sees it through
    assert again.returncode == 0 and "attaching to it" in again.stderr
    assert len(jobs_env.incident(incident)["runs"]) == 1
