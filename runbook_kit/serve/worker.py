"""The worker: leases queued runs and executes each in its own `runbook run` process.

A run is a process of its own, so a kernel that eats the memory, a hung backend or a crash of the
runner never takes the receiver down, and the record is written exactly as for a person typing
`runbook run`: parameters are validated and coerced again there, and reach the kernel only through
the parameters cell (never the environment). How that process comes to be is an executor's job (one
class each, tried in order; the first that takes the run executes it):

    WarmStandby  a warm standby of the pool (runbook_kit.serve.warm): runner imported, kernel started
                 and warmed; None when none is ready, so the run goes cold rather than wait
    ColdChild    `python -m runbook_kit.cli run NAME -f PARAMS.json --incident ID`: always takes it

Both give a process whose stdout ends with the record's path and whose exit code is `runbook run`'s.

Bounded: at most `concurrency` runs at a time, one per target (Queue.claim), at a lower CPU priority
than the receiver. Leases are renewed by a heartbeat while the child lives. The child gets SIGTERM
when the receiver dies, even by SIGKILL (Linux `PR_SET_PDEATHSIG`): the runner then ends its record as
aborted, and at the next start `recovery.finalize` marks it interrupted. On a graceful stop the
children get SIGTERM and are waited for.

A run that may mutate first re-checks that its alert still fires (recheck.still_firing): no → cancelled;
cannot tell → a dry run that says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from typing import Any

from runbook_kit.serve import recheck
from runbook_kit.serve.config import ServeConfig
from runbook_kit.serve.metrics import Metrics
from runbook_kit.serve.queue import Queue
from runbook_kit.serve.warm import Pool

__all__ = ["ColdChild", "Job", "WarmStandby", "Worker", "state_of"]

log = logging.getLogger("runbook.serve")
_PR_SET_PDEATHSIG = 1
# Runs yield the CPU to the receiver: during a storm, answering senders fast (they retry or drop)
# matters more than a diagnosis finishing a little sooner.
RUN_NICENESS = 5


def _child_setup() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    with contextlib.suppress(OSError):
        os.nice(RUN_NICENESS)


def state_of(exit_code: int) -> str:
    """The run's state from `runbook run`'s documented exit code."""
    if exit_code == 0:
        return "succeeded"
    if exit_code > 128 or exit_code < 0:
        return "aborted"
    return "failed"


@dataclasses.dataclass(frozen=True)
class Job:
    """One run as an executor gets it: what `runbook run` is given."""

    run_id: int
    runbook: str
    param_file: str  # JSON, the route's parameters (validated and coerced again by the run)
    incident: str
    store: str | None
    timeout: float
    cell_timeout: float


Process = asyncio.subprocess.Process


class ColdChild:
    """A fresh `runbook run` child process: its kernel starts (and imports everything) with the run."""

    name = "cold"

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    async def launch(self, job: Job) -> Process | None:
        cmd = [
            sys.executable,
            "-m",
            "runbook_kit.cli",
            "run",
            job.runbook,
            "-f",
            job.param_file,
            "--incident",
            job.incident,
            "--timeout",
            str(job.timeout),
            "--cell-timeout",
            str(job.cell_timeout),
        ]
        if job.store:
            cmd += ["--store", job.store]
        return await asyncio.create_subprocess_exec(
            *cmd,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**self.env, "RUNBOOK_SERVE_RUN_ID": str(job.run_id)},  # recovery.py checks it
            preexec_fn=_child_setup,
        )


class WarmStandby:
    """The run given to a ready standby of the pool; None (at once) when none is ready."""

    name = "warm"

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def launch(self, job: Job) -> Process | None:
        proc = self.pool.take()
        if proc is None:
            return None
        assert proc.stdin is not None
        line = json.dumps(
            {
                "runbook": job.runbook,
                "param_file": job.param_file,
                "incident": job.incident,
                "store": job.store,
                "timeout": job.timeout,
                "cell_timeout": job.cell_timeout,
            }
        )
        try:
            proc.stdin.write(line.encode() + b"\n")
            await proc.stdin.drain()
            proc.stdin.close()
        except (BrokenPipeError, ConnectionResetError):  # it died before the job reached it: nothing ran
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            return None
        return proc


class Worker:
    def __init__(
        self, *, queue: Queue, config: ServeConfig, metrics: Metrics, child_env: dict[str, str] | None = None
    ) -> None:
        self.queue, self.config, self.metrics = queue, config, metrics
        self.owner = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.env = dict(os.environ if child_env is None else child_env)
        self.active: dict[int, asyncio.subprocess.Process | None] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopping = False
        self._tmp = tempfile.mkdtemp(prefix="runbook-serve-")
        # runs that go to Kubernetes Jobs (executor: kubernetes) need no local standby
        warm = config.warm_kernels if config.executor == "local" else 0
        self.pool = Pool(
            size=warm,
            env={**self.env, "RUNBOOK_SERVE_STANDBY": self.owner},  # recovery.py checks it
            preexec_fn=_child_setup,
        )
        # tried in order; the last always takes the run
        self.executors: list[WarmStandby | ColdChild] = [WarmStandby(self.pool)] * bool(warm)
        self.executors.append(ColdChild(self.env))

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        last_beat = 0.0
        self.pool.start()
        while not self._stopping:
            self._wake.clear()  # before the claim: a wake during it is not lost
            free = self.config.concurrency - len(self.active)
            try:
                rows = await asyncio.to_thread(
                    self.queue.claim, owner=self.owner, limit=free, lease=self.config.lease
                )
                if time.monotonic() - last_beat > self.config.lease / 3:
                    await asyncio.to_thread(self.queue.heartbeat, list(self.active), lease=self.config.lease)
                    last_beat = time.monotonic()
            except Exception as exc:  # the queue is briefly unavailable: retry, never die
                log.error("queue unavailable", extra={"fields": {"error": str(exc)[:200]}})
                rows = []
            for row in rows:
                self.active[row["id"]] = None
                task = asyncio.create_task(self._execute(row))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)

    async def stop(self, *, grace: float = 30.0) -> None:
        """No new runs; SIGTERM to the running ones (their records end as aborted), then wait."""
        self._stopping = True
        self._wake.set()
        for proc in list(self.active.values()):
            if proc is not None and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        await self.pool.stop()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=grace)
        shutil.rmtree(self._tmp, ignore_errors=True)

    async def _decide_mutation(self, row: dict[str, Any], parameters: dict[str, Any]) -> str | None:
        """For a run that may mutate: None to go ahead, else why it is cancelled; may force a dry run."""
        alert = (
            await asyncio.to_thread(self.queue.query, "SELECT * FROM alerts WHERE id = ?", (row["alert_id"],))
        )[0]
        verdict, why = await asyncio.to_thread(recheck.still_firing, alert, self.config.sources)
        if verdict is False:
            return f"cancelled: {why}"
        if verdict is None:
            parameters["dry_run"] = True
            row["reason"] = f"dry run: {why}"
        return None

    async def _launch(self, job: Job) -> tuple[Process, str]:
        """The run's process, from the first executor that takes it (the last one always does)."""
        for executor in self.executors:
            proc = await executor.launch(job)
            if proc is not None:
                return proc, executor.name
        raise RuntimeError("no executor took the run")

    async def _execute(self, row: dict[str, Any]) -> None:
        run_id = row["id"]
        started = time.monotonic()
        parameters = json.loads(row["parameters"])
        path = os.path.join(self._tmp, f"run-{run_id}.json")
        try:
            if row["mutate"] and not parameters.get("dry_run", True):
                cancelled = await self._decide_mutation(row, parameters)
                if cancelled:
                    await asyncio.to_thread(
                        self.queue.finish,
                        run_id,
                        state="cancelled",
                        exit_code=None,
                        record=None,
                        reason=cancelled,
                    )
                    return
            if self.config.executor == "kubernetes":  # the run as a Job (runbook_kit.serve.jobs)
                from runbook_kit.serve import jobs

                return await jobs.execute(self.queue, self.config, row, parameters)
            with open(path, "w", encoding="utf-8") as fh:
                json.dump(parameters, fh)
            job = Job(
                run_id=run_id,
                runbook=row["runbook"],
                param_file=path,
                incident=row["incident"],
                store=self.config.store,
                timeout=self.config.run_timeout,
                cell_timeout=self.config.cell_timeout,
            )
            await asyncio.to_thread(self.queue.started, run_id)
            proc, how = await self._launch(job)
            self.active[run_id] = proc
            await asyncio.to_thread(self.queue.set_pid, run_id, proc.pid)
            log.info(
                "run started",
                extra={
                    "fields": {
                        "run": run_id,
                        "runbook": row["runbook"],
                        "incident": row["incident"],
                        "pid": proc.pid,
                        "how": how,
                    }
                },
            )
            out, err = await proc.communicate()
            code = proc.returncode if proc.returncode is not None else -1
            lines = out.decode(errors="replace").strip().splitlines()
            record = lines[-1] if lines and lines[-1].endswith(".ipynb") else None
            state = state_of(code)
            reason = row.get("reason")
            if state != "succeeded":
                tail = [ln for ln in err.decode(errors="replace").splitlines() if ln.startswith("runbook:")]
                reason = "; ".join(filter(None, [reason, tail[-1][9:] if tail else f"exit code {code}"]))[
                    :500
                ]
            await asyncio.to_thread(
                self.queue.finish, run_id, state=state, exit_code=code, record=record, reason=reason
            )
            self.metrics.run_finished(row["runbook"], time.monotonic() - started)
            log.info(
                "run finished",
                extra={
                    "fields": {
                        "run": run_id,
                        "state": state,
                        "exit_code": code,
                        "record": record,
                        "seconds": round(time.monotonic() - started, 3),
                    }
                },
            )
        except Exception as exc:  # could not even start the child: the run failed, the worker lives
            log.error("run could not start", extra={"fields": {"run": run_id, "error": str(exc)[:300]}})
            with contextlib.suppress(Exception):
                await asyncio.to_thread(
                    self.queue.finish,
                    run_id,
                    state="failed",
                    exit_code=None,
                    record=None,
                    reason=f"could not start the run: {type(exc).__name__}: {exc}"[:500],
                )
        finally:
            self.active.pop(run_id, None)
            self.pool.refill()  # the standby it used (if any) is replaced now that the run is over
            with contextlib.suppress(OSError):
                os.unlink(path)
            self._wake.set()
