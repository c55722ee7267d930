"""Run a runbook headless and always leave a trustworthy record.

Why not `papermill.execute_notebook`: papermill 2.7 saves a notebook whose cells are all marked
"completed" with no error banner after a dead kernel or a cell timeout, and leaves a cell "running"
after the runner gets SIGTERM; it also periodically writes unredacted outputs to the output path.
This runner keeps papermill's notebook conventions (the `parameters` / `injected-parameters` cells,
`metadata.papermill` on the notebook and on each cell) so papermill-aware tools still read the
record, and drives the kernel itself with nbclient, cell by cell. This module executes; what the
record looks like and where it is written is runbook_kit.recorder's job.

* every cell's status is set before and after it runs, and the record is written before every cell,
  as soon as an action entry arrives, and at most every few seconds while output streams in; a
  runner killed with SIGKILL leaves a record naming the cell and listing the actions already
  applied, and the next `runbook` command reading that incident finalizes it as aborted;
* a cell error, a dead kernel, a cell timeout, the whole-run timeout, SIGTERM and SIGINT each end the
  run with status failed/aborted, an error banner before the failing cell, and a summary at the top;
  a signal during the final write is held until the last byte is written;
* `timeout` bounds the whole run including writing it: cells stop short of it by a reserve in which
  the record and its HTML export are written (an export that does not fit is skipped, and said so);
* kernels use IPC transport in a private temporary folder (TCP port picking collides under
  concurrency), and are always shut down.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import functools
import math
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from runbook_kit import catalog, params, record
from runbook_kit.errors import ParameterError
from runbook_kit.recorder import (
    CELL_OUTPUT_CAP,
    RECORD_OUTPUT_CAP,
    Recorder,
    RunState,
    cap_outputs,
    output_size,
)
from runbook_kit.recovery import finalize_stale_runs, reconcile_fallback, reconcile_index
from runbook_kit.redact import Redactor
from runbook_kit.store import FallbackStore, LocalStore, StoreUnwritable, default_fallback, open_store

__all__ = [
    "DEFAULT_CELL_TIMEOUT", "DEFAULT_TIMEOUT", "EXIT_CODES", "RunResult", "StartedKernel",
    "kernel_environment", "run_notebook", "start_kernel",
]

DEFAULT_TIMEOUT = 1800.0  # a whole run
DEFAULT_CELL_TIMEOUT = 600.0
# The documented exit codes of `runbook run` (also 2: bad input, refused before anything ran).
EXIT_CODES = {"succeeded": 0, "failed": 1, "completed-with-gaps": 3, "aborted": 130}
EXIT_RECORDED_ELSEWHERE = 4  # the run succeeded, but its record is in the fallback store
_THROTTLE = 2.0  # seconds between writes while output streams in (actions are written at once)


@dataclasses.dataclass(frozen=True)
class RunResult:
    runbook: str
    incident: str
    status: str  # succeeded | completed-with-gaps | failed | aborted
    notebook_path: str
    html_path: str | None
    entries: list[record.Entry]
    failure: str | None = None
    failed_cell: int | None = None
    parameters: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    signal: int | None = None  # the signal that aborted the run
    recorded_elsewhere: str | None = None  # why the record is in the fallback store, when it is
    # the final record as written (redacted); for callers that hand it on (the papermill engine)
    final_record: Mapping[str, Any] | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def exit_code(self) -> int:
        if self.status == "aborted" and self.signal:
            return 128 + self.signal
        code = EXIT_CODES.get(self.status, 1)
        return EXIT_RECORDED_ELSEWHERE if code == 0 and self.recorded_elsewhere else code

    @property
    def findings(self) -> list[record.Entry]:
        return [e for e in self.entries if e.kind == "finding"]

    def to_json(self) -> dict[str, Any]:
        """One JSON document for scripts and the alert receiver (`runbook run --json`)."""
        return {
            "runbook": self.runbook, "incident": self.incident, "status": self.status,
            "exit_code": self.exit_code, "failure": self.failure, "notebook": self.notebook_path,
            "html": self.html_path, "recorded_elsewhere": self.recorded_elsewhere,
            "parameters": dict(self.parameters),
            **{kind + "s": [e.to_json() for e in self.entries if e.kind == kind]
               for kind in ("finding", "action", "gap", "event")},
        }


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _source(cell: Mapping[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _heading(nb: Mapping[str, Any], index: int) -> str:
    return next((_source(c).strip().splitlines()[0].lstrip("#").strip() for c in reversed(nb["cells"][:index])
                 if c.get("cell_type") == "markdown" and _source(c).strip().startswith("#")), "")


# Variables that would tell a kernel about one run: never in a kernel's environment (run-specific
# values reach a kernel only through its parameters cell, cold or warm).
_RUN_VARIABLES = ("RUNBOOK_INCIDENT", "RUNBOOK_NAME")


def kernel_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The environment a runner starts a kernel with: `env`, headless, and nothing about any one run."""
    out = {k: v for k, v in env.items() if k not in _RUN_VARIABLES}
    out["RUNBOOK_HEADLESS"] = "1"  # the guard knows nobody watches (no confirmation prompt)
    return out


@dataclasses.dataclass(frozen=True)
class StartedKernel:
    """A kernel started before its run (runbook_kit.serve.warm): its manager, the event loop it was
    started on (the run executes on the same loop), and the environment it was started with."""

    manager: Any  # jupyter_client AsyncKernelManager
    loop: asyncio.AbstractEventLoop
    env: Mapping[str, str]
    kernel_name: str = "python3"


async def start_kernel(*, env: Mapping[str, str], kernel_name: str, folder: str) -> Any:
    """Start a kernel over IPC in `folder` (TCP port picking collides under concurrency)."""
    from jupyter_client.manager import AsyncKernelManager

    km = AsyncKernelManager(kernel_name=kernel_name, transport="ipc", ip=os.path.join(folder, "ipc"),
                            connection_file=os.path.join(folder, "kernel.json"))
    km.client = functools.partial(_unbounded_client, km.client)  # type: ignore[method-assign]
    await km.start_kernel(env=dict(env), cwd=os.getcwd())
    return km


class _Run:
    """One execution: the notebook being filled in, its state, and the recorder that writes it."""

    def __init__(self, *, nb: dict[str, Any], recorder: Recorder, kernel_env: Mapping[str, str],
                 timeout: float, cell_timeout: float | None, kernel_name: str,
                 on_step: Callable[[int, str], None] | None, kernel: StartedKernel | None = None) -> None:
        self.nb, self.recorder, self.kernel_env, self.kernel = nb, recorder, dict(kernel_env), kernel
        self.state = RunState()
        self.timeout, self.cell_timeout, self.kernel_name = timeout, cell_timeout, kernel_name
        self.on_step = on_step
        self.deadline = time.monotonic() + timeout
        # the part of the run kept for writing the record and its HTML export
        self.reserve = min(timeout * 0.1, 15.0)
        self.interrupted: int | None = None  # the signal that stopped the runner
        self.late_signal: int | None = None  # a signal received while the final record was written
        self.timed_out = False  # the whole-run bound cancelled the execution
        self._live: dict[int, int] = {}  # characters of output held per cell
        self._client: Any = None

    def timeout_message(self) -> str:
        return f"timed out: the run exceeded its {self.timeout:g} s timeout"

    def write(self, *, final: bool = False) -> dict[str, Any]:
        return self.recorder.write(self.nb, self.state, final=final, html_deadline=self.deadline)

    def _fail(self, index: int, status: str, why: str) -> None:
        self.recorder.fail(self.state, self.nb, index, status, why)
        meta = self.nb["cells"][index].setdefault("metadata", {})
        meta.setdefault("papermill", {}).update(status="failed", exception=True)

    def _add_error_output(self, cell: dict[str, Any], ename: str, evalue: str) -> None:
        cell.setdefault("outputs", []).append(
            {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": [f"{ename}: {evalue}"]})

    def _on_output(self, index: int, output: Mapping[str, Any]) -> None:
        """An output arrived: an action is written to the store at once, anything else at most every 2 s."""
        self._live[index] = self._live.get(index, 0) + output_size(output)
        if self._live[index] > 2 * self.recorder.cell_cap:
            self._compact(index)
        entry = (output.get("data") or {}).get(record.MIME)
        is_action = isinstance(entry, Mapping) and entry.get("kind") == "action"
        # other output: at most every 2 s, and never more than ~1/5 of the time spent writing
        if is_action or time.monotonic() - self.recorder.last_write > max(_THROTTLE,
                                                                           5 * self.recorder.write_seconds):
            self.write()

    def _compact(self, index: int) -> None:
        """Keep a flooding cell's outputs in memory within its cap as they arrive (head, note, tail)."""
        display_ids = getattr(self._client, "_display_id_map", {}) or {}
        if any(index in cells for cells in display_ids.values()):  # updates address outputs by position
            return
        import nbformat

        outputs = self.nb["cells"][index]["outputs"]
        capped, _ = cap_outputs(list(outputs), self.recorder.cell_cap)
        outputs[:] = [nbformat.from_dict(o) for o in capped]
        self._live[index] = sum(output_size(o) for o in outputs)

    async def execute(self) -> None:
        if self.kernel is not None:  # started before the run (runbook serve's warm standbys)
            await self._on_kernel(self.kernel.manager)
            return
        with tempfile.TemporaryDirectory(prefix="runbook-kernel-") as tmp:
            km = await start_kernel(env=self.kernel_env, kernel_name=self.kernel_name, folder=tmp)
            await self._on_kernel(km)

    async def _on_kernel(self, km: Any) -> None:
        """Run the cells on a started kernel, which is shut down afterwards whatever happened."""
        try:
            # Imported while the kernel boots: nbclient and nbformat cost ~0.5 s.
            import nbformat

            threading.Thread(target=self.recorder.prewarm, daemon=True).start()
            node = nbformat.from_dict(self.nb)
            self.nb = node
            client = _client_class()(node, km=km, kernel_name=self.kernel_name,
                                     startup_timeout=60, record_timing=False)
            client.runbook_output_hook = self._on_output
            self._client = client
            await client.async_start_new_kernel_client()
            try:
                await self._cells(client)
            finally:
                if client.kc is not None:
                    client.kc.stop_channels()
        finally:
            with contextlib.suppress(Exception):
                if getattr(km, "has_kernel", False):
                    await km.shutdown_kernel(now=True)
            with contextlib.suppress(Exception):
                await km.cleanup_resources()

    async def _cells(self, client: Any) -> None:
        from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

        cells_deadline = self.deadline - self.reserve
        count = 0
        for index, cell in enumerate(self.nb["cells"]):
            if cell.get("cell_type") != "code" or not _source(cell).strip():
                continue
            remaining = cells_deadline - time.monotonic()
            budget = min(remaining, self.cell_timeout or remaining)
            if remaining <= 0:
                self._fail(index, "failed", self.timeout_message())
                return
            count += 1
            self.state.current = index
            pm = cell.setdefault("metadata", {}).setdefault("papermill", {})
            pm.update(status="running", start_time=_utc_now(), exception=False)
            self.write()
            if self.on_step is not None:
                self.on_step(index, _heading(self.nb, index))
            client.timeout = max(1, int(budget))
            # after the reply, nbclient drains the cell's output for `iopub_timeout` (default 4 s) and then
            # silently drops the rest: a runner slowed by writing the record would lose output, entries too.
            # Drain within the cell's budget; past it, the cell has timed out (said, never silent).
            client.iopub_timeout, client.raise_on_iopub_timeout = max(4, int(budget)), True
            started = time.monotonic()
            try:
                await client.async_execute_cell(cell, index, execution_count=count)
            except CellExecutionError:
                errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
                error: dict[str, Any] = errors[0] if errors else {}
                self._fail(index, "failed", f"{error.get('ename', 'Error')}: {error.get('evalue', '')}"[:400])
            except CellTimeoutError:
                which = "run" if budget < (self.cell_timeout or float("inf")) else "cell"
                limit = self.timeout if which == "run" else self.cell_timeout
                why = f"timed out: the {which} exceeded its {limit:g} s timeout"
                self._add_error_output(cell, "CellTimeoutError", why)
                self._fail(index, "failed", why)
            except (DeadKernelError, asyncio.CancelledError) as exc:
                if self.timed_out:
                    self._add_error_output(cell, "CellTimeoutError", self.timeout_message())
                    self._fail(index, "failed", self.timeout_message())
                    return
                if self.interrupted:  # nbclient reports a cancelled cell as a dead kernel
                    why = (f"aborted: the runner received {signal.Signals(self.interrupted).name} "
                           "while this cell ran")
                    self._add_error_output(cell, "RunAborted", why)
                    self._fail(index, "aborted", why)
                    return
                if isinstance(exc, asyncio.CancelledError):
                    why = "aborted: the runner was interrupted (SIGTERM/SIGINT) while this cell ran"
                    self._add_error_output(cell, "RunAborted", why)
                    self._fail(index, "aborted", why)
                    return
                why = f"the kernel died ({exc}); it may have run out of memory or been killed"
                self._add_error_output(cell, "DeadKernelError", why)
                self._fail(index, "failed", why)
            pm.update(end_time=_utc_now(), duration=time.monotonic() - started)
            if self.state.status != "running":
                return
            pm.update(status="completed")
        self.state.current = None
        gaps = [e for e in record.read_entries(self.nb) if e.kind == "gap"]
        self.state.status = "completed-with-gaps" if gaps else "succeeded"


def _unbounded_client(make_client: Callable[..., Any], **kwargs: Any) -> Any:
    """A kernel client whose sockets have no receive high-water mark.

    IOPub is PUB/SUB: while the runner is busy writing the record, and both queues reach their
    high-water mark (1,000 messages each), the kernel silently DROPS output, entries included. Without
    a limit on this client's receive queue, zmq's I/O thread keeps draining the kernel meanwhile.
    """
    import zmq
    import zmq.asyncio

    context = zmq.asyncio.Context()
    context.setsockopt(zmq.RCVHWM, 0)
    client = make_client(context=context, **kwargs)
    client._created_context = True  # the client destroys it when its channels stop
    return client


def _client_class() -> Any:
    """nbclient's NotebookClient, telling the runner of every output as it arrives."""
    from nbclient import NotebookClient

    class _Client(NotebookClient):
        runbook_output_hook: Callable[[int, Any], None] | None = None

        def output(self, outs: list[Any], msg: dict[str, Any], display_id: str | None,
                   cell_index: int) -> Any:
            out = super().output(outs, msg, display_id, cell_index)
            if out is not None and self.runbook_output_hook is not None:
                self.runbook_output_hook(cell_index, out)
            return out

    return _Client


def _time_out(run: _Run, task: asyncio.Task[Any] | None) -> None:
    run.timed_out = True
    if task is not None:
        task.cancel()


def _interrupt(run: _Run, sig: int, task: asyncio.Task[Any] | None) -> None:
    run.interrupted = sig
    if task is not None:
        task.cancel()


@contextlib.contextmanager
def _held_signals(run: _Run) -> Any:
    """While the final record is written, SIGTERM/SIGINT are noted, not obeyed: no half-written record."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(ValueError, OSError):
            previous[sig] = signal.signal(sig, lambda s, _f: setattr(run, "late_signal", s))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(sig, handler)


async def _main(run: _Run) -> dict[str, Any]:
    """Execute, then write the final record whatever happened; returns that record."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    # the outer bound: kernel start-up and shutdown count too (cells stop earlier, at their budget)
    timer = loop.call_at(loop.time() + max(0.5, run.deadline - run.reserve / 3 - time.monotonic()),
                         _time_out, run, task)
    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, _interrupt, run, int(sig), task)
            installed.append(sig)
        except (RuntimeError, ValueError, NotImplementedError):  # not the main thread
            pass
    try:
        # the outer bound: kernel start-up and shutdown count too (cells stop earlier, at their budget)
        await run.execute()
    except asyncio.CancelledError:  # interrupted outside a cell (kernel start, shutdown)
        if run.state.status == "running" and run.timed_out:
            run.state.status = "failed"
            run.state.failure = run.state.why = run.timeout_message()
        elif run.state.status == "running":
            run.state.status = "aborted"
            run.state.failure = run.state.why = "aborted: the runner was interrupted before the run ended"
    except StoreUnwritable:
        raise
    except Exception as exc:  # kernel failed to start, and the like: still a record
        if run.state.status == "running":
            run.state.status = "failed"
            why = f"the run could not execute: {type(exc).__name__}: {exc}"[:400]
            run.state.failure = run.state.why = why
    finally:
        timer.cancel()
        for sig in installed:
            loop.remove_signal_handler(sig)
        with _held_signals(run):
            if run.state.current is not None and run.state.status == "running":
                run.state.status = "aborted"
            final = run.write(final=True)
        if run.late_signal:
            name = signal.Signals(run.late_signal).name
            print(f"runbook: received {name} while writing the record; the record was completed first",
                  file=sys.stderr)
    return final


def default_incident() -> str:
    return "adhoc-" + dt.datetime.now(dt.UTC).strftime("%Y%m%d")


def _check_timeout(name: str, value: float | None, *, optional: bool) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not (0 < value < math.inf):
        raise ParameterError(f"{name} must be a positive number of seconds, not {value!r}")


def run_notebook(
    runbook: str,
    *,
    parameters: Mapping[str, Any] | None = None,
    incident: str | None = None,
    store: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    cell_timeout: float | None = DEFAULT_CELL_TIMEOUT,
    kernel_name: str = "python3",
    fallback_store: str | None = None,
    on_step: Callable[[int, str], None] | None = None,
    cell_output_cap: int = CELL_OUTPUT_CAP,
    record_output_cap: int = RECORD_OUTPUT_CAP,
    kernel: StartedKernel | None = None,
) -> RunResult:
    """Execute a runbook headless; the record is always written, whatever happens to the run.

    Raises ParameterError / UnknownRunbook before anything runs when the input is wrong, and
    StoreUnwritable when neither the store nor the fallback store can take the record (before the
    first cell runs when it is so from the start). `on_step(cell_index, heading)` is called as each
    code cell starts (the CLI's progress line). `kernel`: run on a kernel started beforehand (runbook
    serve's warm standbys; `env` and `kernel_name` are then the kernel's own), used for this run only
    and shut down after it. Either way the run's values (parameters, runbook, incident) reach the
    kernel only through the injected parameters cell.
    """
    _check_timeout("timeout", timeout, optional=False)
    _check_timeout("cell timeout", cell_timeout, optional=True)
    book = catalog.find(runbook)
    nb = catalog.load(book.path)
    values = params.validate(params.declared(nb), dict(parameters or {}))
    params.ensure_recordable(values)
    incident = params.validate_incident_id(default_incident() if incident is None else incident)
    params.inject(nb, values, run={"runbook": book.name, "incident": incident})
    for cell in nb["cells"]:
        if cell.get("cell_type") == "code":
            cell.setdefault("metadata", {})["papermill"] = {"status": "pending"}
            cell["outputs"], cell["execution_count"] = [], None
    primary = open_store(store)
    fallback = LocalStore(fallback_store or default_fallback())
    _tidy_incident(primary, fallback, incident)
    if kernel is None:
        kernel_env = kernel_environment({**os.environ, **(env or {})})
    else:
        kernel_env, kernel_name = dict(kernel.env), kernel.kernel_name
    recorder = Recorder(book=book, incident=incident, values=values, store=FallbackStore(primary, fallback),
                        redactor=Redactor.from_environment(kernel_env, extra=values),
                        cell_output_cap=cell_output_cap, record_output_cap=record_output_cap)
    run = _Run(nb=nb, recorder=recorder, kernel_env=kernel_env, timeout=timeout, cell_timeout=cell_timeout,
               kernel_name=kernel_name, on_step=on_step, kernel=kernel)
    run.write()  # the record exists before the kernel starts; an unwritable store stops here
    try:
        # the record as written; a started kernel runs on the loop it was started on
        final = asyncio.run(_main(run)) if kernel is None else kernel.loop.run_until_complete(_main(run))
    except StoreUnwritable as exc:
        exc.after_start = True  # type: ignore[attr-defined]
        raise
    store_used = recorder.store
    result = RunResult(
        runbook=book.name, incident=incident, status=run.state.status, notebook_path=recorder.notebook_path,
        html_path=recorder.html_path, entries=record.read_entries(final),
        failure=recorder.redactor.text(run.state.failure) if run.state.failure else None,
        failed_cell=run.state.failed_cell, parameters=final["metadata"]["runbook_kit"]["parameters"],
        signal=run.interrupted, recorded_elsewhere=store_used.fell_back, final_record=final,
    )
    _tell_incident(result, recorder)
    return result


def _tell_incident(result: RunResult, recorder: Recorder) -> None:
    """A run under an open incident posts its one-line summary and record link to the incident's
    thread (runbook_kit.comms). Telling people never fails the run: a failure is one stderr line."""
    try:
        from runbook_kit import comms

        comms.run_summary(result, store=recorder.store, redactor=recorder.redactor)
    except Exception as exc:
        print(recorder.redactor.text(
            f"runbook: could not post to the incident thread ({type(exc).__name__}: {exc})"), file=sys.stderr)


def _tidy_incident(primary: Any, fallback: LocalStore, incident: str) -> None:
    """Before a run: finalize runs of this incident whose runner is gone, and tell the primary store
    about records a previous run had to leave in the fallback. Best effort: an unreachable store is
    the run's own write to report."""
    with contextlib.suppress(Exception):
        reconcile_fallback(primary, fallback, incident)
    for store in (primary, fallback):
        with contextlib.suppress(Exception):
            reconcile_index(store, incident)
        with contextlib.suppress(Exception):
            finalize_stale_runs(store, incident)
