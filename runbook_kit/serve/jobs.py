"""`executor: kubernetes` for the alert receiver: each queued run becomes a Kubernetes Job, and serve
brings back, when it starts, the Jobs it had started before it stopped.

A run's Job name comes from its identity (runbook_kit.jobs.manifest) with the run id
`serve-<queue>-<row>`, so the same queued run always maps to the same Job: a run that is claimed
again after a restart ATTACHES to its Job (409) and is never submitted twice. The Job carries the
label `runbook-kit.io/episode: <queue>-<row>`, `<queue>` a short hash of the queue's path.

Reconcile (on start, after Queue.recover): every Job with that label and this queue's hash whose row
is not finished (queued, leased, running, or just marked interrupted) is brought back: a finished Job
gives the row its state, exit code and record (a Job that died without ending its record gets it
finalized, runbook_kit.jobs.outcome); a running one is followed again until it ends. Both are noted
in the incident's timeline (`run-reconciled`). Nothing is re-submitted, a mutating run least of all.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from runbook_kit import clients
from runbook_kit.errors import RunbookError, backend_call
from runbook_kit.jobs import manifest, outcome
from runbook_kit.jobs.executor import RunRequest
from runbook_kit.jobs.submit import JobRef, JobSettings, KubernetesExecutor
from runbook_kit.runner import RunResult
from runbook_kit.serve.config import ServeConfig
from runbook_kit.serve.queue import Queue

__all__ = ["episode_label", "execute", "reconcile"]

T = TypeVar("T")
log = logging.getLogger("runbook.serve")
_UNFINISHED = ("queued", "leased", "running", "interrupted")


async def _following(call: Callable[..., T], *args: Any) -> T:
    """`call` in a daemon thread: following a Job may last as long as the Job, and a stopping receiver
    must not wait for it (the Job keeps running; the next start reconciles it). asyncio.to_thread's
    threads are joined at interpreter exit."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(value: Any, failed: bool) -> None:
        if not future.done():
            (future.set_exception if failed else future.set_result)(value)

    def target() -> None:
        value: Any
        try:
            value, failed = call(*args), False
        except BaseException as exc:  # handed to the awaiting task
            value, failed = exc, True
        with contextlib.suppress(RuntimeError):  # the loop is gone: the receiver stopped
            loop.call_soon_threadsafe(settle, value, failed)

    threading.Thread(target=target, name="runbook-job-follow", daemon=True).start()
    return await future


def queue_key(config: ServeConfig) -> str:
    return hashlib.sha256(os.path.abspath(config.queue).encode()).hexdigest()[:8]


def episode_label(config: ServeConfig, run_id: int) -> str:
    return f"{queue_key(config)}-{run_id}"


def _executor(config: ServeConfig) -> KubernetesExecutor:
    def echo(line: str) -> None:
        log.info("job", extra={"fields": {"line": line[:500]}})

    return KubernetesExecutor(JobSettings.load(conf=config.jobs), echo=echo)


def _state(result: RunResult) -> str:
    code = result.exit_code
    return "succeeded" if code == 0 else "aborted" if code > 128 else "failed"


async def execute(queue: Queue, config: ServeConfig, row: dict[str, Any], parameters: dict[str, Any]) -> None:
    """Run one queued row as a Job and finish it in the queue (the worker's hook)."""
    run_id = row["id"]
    request = RunRequest(
        runbook=row["runbook"],
        parameters=parameters,
        incident=row["incident"],
        store=config.store,
        timeout=config.run_timeout,
        cell_timeout=config.cell_timeout,
        run_id=f"serve-{episode_label(config, run_id)}",
        episode=episode_label(config, run_id),
    )
    await asyncio.to_thread(queue.started, run_id)
    try:
        result = await _following(_executor(config).run, request)
    except RunbookError as exc:
        reason = "; ".join(filter(None, [row.get("reason"), f"job: {exc}"]))[:500]
        await asyncio.to_thread(
            queue.finish, run_id, state="failed", exit_code=None, record=None, reason=reason
        )
        return
    why = "; ".join(filter(None, [row.get("reason"), result.failure]))[:500] or None
    await asyncio.to_thread(
        queue.finish,
        run_id,
        state=_state(result),
        exit_code=result.exit_code,
        record=result.notebook_path or None,
        reason=why,
    )


def _our_jobs(config: ServeConfig, executor: KubernetesExecutor) -> dict[int, dict[str, Any]]:
    """Jobs this queue started, by row id."""
    namespace = (
        executor.settings.namespace or clients.kube_context(context=executor.settings.context)["namespace"]
    )
    with backend_call("k8s", "list the receiver's jobs"):
        found = executor.batch.list_namespaced_job(
            namespace, label_selector=f"app.kubernetes.io/managed-by={manifest.MANAGED_BY}"
        )
    key, out = queue_key(config) + "-", {}
    for job in clients.k8s_json(found).get("items") or []:
        episode = ((job.get("metadata") or {}).get("labels") or {}).get(
            f"{manifest.LABEL_PREFIX}/episode", ""
        )
        if episode.startswith(key) and episode[len(key) :].isdigit():
            out[int(episode[len(key) :])] = job
    return out


async def reconcile(queue: Queue, config: ServeConfig) -> list[asyncio.Task[None]]:
    """Bring the Jobs started before a restart into the queue and the timeline; returns the tasks
    following those still running. A failure to list them is logged, never fatal."""
    executor = _executor(config)
    try:
        jobs = await asyncio.to_thread(_our_jobs, config, executor)
    except RunbookError as exc:
        log.error("reconcile: cannot list the receiver's Jobs", extra={"fields": {"error": str(exc)[:300]}})
        return []
    if not jobs:
        return []
    marks = ",".join("?" * len(jobs))
    rows = await asyncio.to_thread(
        queue.query, f"SELECT * FROM runs WHERE id IN ({marks}) AND state IN {_UNFINISHED}", tuple(jobs)
    )
    tasks = []
    for row in rows:
        job = jobs[row["id"]]
        ref = JobRef.of(job)
        running = outcome.job_state(job) == "running"
        text = (
            f"run {row['id']} of {row['runbook']}: job/{ref.name} "
            + (
                "still running after the restart: followed again"
                if running
                else "finished while runbook serve was down: its outcome is recorded"
            )
            + "; not re-submitted"
        )
        await asyncio.to_thread(_note, queue, row, text)
        # running from here until its Job's outcome is in: the worker never claims it meanwhile
        await asyncio.to_thread(queue.started, row["id"])
        tasks.append(asyncio.create_task(_settle(queue, config, row, ref, job, running)))
    return tasks


def _note(queue: Queue, row: dict[str, Any], text: str) -> None:
    with queue.transaction() as tx:
        tx.event(kind="run-reconciled", episode=row["episode"], incident=row["incident"], text=text)
    log.warning("reconcile", extra={"fields": {"run": row["id"], "text": text}})


async def _settle(
    queue: Queue, config: ServeConfig, row: dict[str, Any], ref: JobRef, job: dict[str, Any], running: bool
) -> None:
    executor = _executor(config)
    started = time.monotonic()
    try:
        if running:
            job = await _following(executor.wait, ref)
        result = await asyncio.to_thread(executor.result, ref, job)
    except RunbookError as exc:
        log.error(
            "reconcile: cannot follow a job", extra={"fields": {"run": row["id"], "error": str(exc)[:300]}}
        )
        return
    await asyncio.to_thread(
        queue.finish,
        row["id"],
        state=_state(result),
        exit_code=result.exit_code,
        record=result.notebook_path or None,
        reason=result.failure,
    )
    log.info(
        "reconciled",
        extra={
            "fields": {
                "run": row["id"],
                "state": _state(result),
                "seconds": round(time.monotonic() - started, 3),
            }
        },
    )
