"""`runbook serve` with `executor: kubernetes` on the sandbox: a queued run becomes a Job; on start, the
Jobs it had started before a restart are brought back into its queue and timeline, never re-submitted."""

from __future__ import annotations

import asyncio
import json

import pytest
from jobs_harness import new_incident, use_jobs_env

from runbook_kit import clients
from runbook_kit.jobs.executor import RunRequest
from runbook_kit.jobs.submit import JobRef, JobSettings, KubernetesExecutor
from runbook_kit.serve import jobs as serve_jobs
from runbook_kit.serve.config import ServeConfig
from runbook_kit.serve.queue import Queue

pytestmark = pytest.mark.slow


@pytest.fixture
def serve_env(jobs_env, monkeypatch, tmp_path):
    use_jobs_env(jobs_env, monkeypatch)
    config = ServeConfig(
        host="127.0.0.1",
        port=0,
        queue=str(tmp_path / "serve.db"),
        store=jobs_env.store,
        concurrency=2,
        max_body=1 << 20,
        storm_per_minute=20,
        run_timeout=120,
        cell_timeout=60,
        lease=30,
        sources={},
        routes=[],
        path="test",
        executor="kubernetes",
        jobs={
            "image": "runbook-kit:test",
            "namespace": "default",
            "env": {"RUNBOOK_PATH": jobs_env.env["RUNBOOK_PATH"]},
        },
    )
    queue = Queue(config.queue)
    yield jobs_env, config, queue
    queue.close()
    clients.reset()


def _row(queue: Queue, incident: str, parameters: dict) -> dict:
    with queue.transaction() as tx:
        run_id = tx.enqueue(
            alert_id=1,
            episode="ep-1",
            route="r",
            runbook="hello_job",
            parameters=parameters,
            incident=incident,
            mutate=False,
            target="payments/api",
            severity="warning",
        )
    return queue.query("SELECT * FROM runs WHERE id = ?", (run_id,))[0]


def _submit_as_serve(config: ServeConfig, row: dict, parameters: dict) -> None:
    """What serve's worker did before it was killed: the Job of this row, submitted."""
    executor = KubernetesExecutor(JobSettings.load(conf=config.jobs), echo=lambda _l: None)
    label = serve_jobs.episode_label(config, row["id"])
    spec = executor.spec(
        RunRequest(
            runbook="hello_job",
            parameters=parameters,
            incident=row["incident"],
            store=config.store,
            timeout=config.run_timeout,
            cell_timeout=config.cell_timeout,
            run_id=f"serve-{label}",
            episode=label,
        )
    )
    executor.submit(spec)


def test_a_queued_run_becomes_a_job_and_the_same_row_never_runs_twice(serve_env):
    jobs_env, config, queue = serve_env
    incident = new_incident()
    row = _row(queue, incident, {"sleep": 0})
    asyncio.run(serve_jobs.execute(queue, config, row, {"sleep": 0}))
    done = queue.query("SELECT * FROM runs WHERE id = ?", (row["id"],))[0]
    assert done["state"] == "succeeded" and done["exit_code"] == 0
    assert done["record"].startswith(f"{jobs_env.store}/{incident}/")
    # claimed again (a restart between submission and finish): attaches to the same Job
    asyncio.run(serve_jobs.execute(queue, config, row, {"sleep": 0}))
    batch, _, _ = jobs_env.k8s()
    assert (
        len(batch.list_namespaced_job("default", label_selector=f"runbook-kit.io/incident={incident}").items)
        == 1
    )
    assert len(jobs_env.incident(incident)["runs"]) == 1


def test_reconcile_brings_back_jobs_started_before_a_restart(serve_env):
    jobs_env, config, queue = serve_env
    incident = new_incident()
    finished, running = _row(queue, incident, {"sleep": 0}), _row(queue, incident, {"sleep": 4})
    for row, parameters in ((finished, {"sleep": 0}), (running, {"sleep": 4})):
        queue.started(row["id"])
        _submit_as_serve(config, row, parameters)
    # the first Job ends while "serve is down"
    executor_done = KubernetesExecutor(JobSettings.load(conf=config.jobs), echo=lambda _l: None)
    batch, _, _ = jobs_env.k8s()
    first = next(
        j
        for j in batch.list_namespaced_job(
            "default", label_selector=f"runbook-kit.io/incident={incident}"
        ).items
        if j.metadata.labels["runbook-kit.io/episode"].endswith(f"-{finished['id']}")
    )
    executor_done.wait(JobRef.of(clients.k8s_json(first)))
    interrupted = queue.recover()  # what serve does first when it starts again
    assert {r["id"] for r in interrupted} == {finished["id"], running["id"]}

    async def start():
        tasks = await serve_jobs.reconcile(queue, config)
        await asyncio.gather(*tasks)
        return tasks

    assert len(asyncio.run(start())) == 2
    rows = {r["id"]: r for r in queue.query("SELECT * FROM runs")}
    for row in (finished, running):
        assert rows[row["id"]]["state"] == "succeeded", rows[row["id"]]
        assert rows[row["id"]]["record"].startswith(f"{jobs_env.store}/{incident}/")
    events = [e for e in queue.events(incident=incident) if e["kind"] == "run-reconciled"]
    assert len(events) == 2 and all("not re-submitted" in e["text"] for e in events)
    assert any("still running after the restart" in e["text"] for e in events)
    # nothing re-submitted: two Jobs, two runs
    assert (
        len(batch.list_namespaced_job("default", label_selector=f"runbook-kit.io/incident={incident}").items)
        == 2
    )
    assert len(jobs_env.incident(incident)["runs"]) == 2
    assert json.loads(rows[running["id"]]["parameters"]) == {"sleep": 4}


def test_serve_reconciles_when_it_starts(serve_env):
    """The app's start-up (its lifespan) recovers the queue, then reconciles its Jobs."""
    from runbook_kit.serve.app import create_app

    jobs_env, config, queue = serve_env
    incident = new_incident()
    row = _row(queue, incident, {"sleep": 0})
    queue.started(row["id"])
    _submit_as_serve(config, row, {"sleep": 0})  # ... and then serve was killed

    async def start_serve() -> dict:
        app = create_app(config, queue=queue)
        async with app.router.lifespan_context(app):
            for _ in range(300):
                done = queue.query("SELECT * FROM runs WHERE id = ?", (row["id"],))[0]
                if done["state"] not in ("running", "interrupted"):
                    return done
                await asyncio.sleep(0.2)
        raise AssertionError("the run was not reconciled")

    done = asyncio.run(start_serve())
    assert done["state"] == "succeeded" and done["record"].startswith(f"{jobs_env.store}/{incident}/")
    kinds = [e["kind"] for e in queue.events(incident=incident)]
    assert kinds.index("run-interrupted") < kinds.index("run-reconciled") < kinds.index("run-succeeded")
