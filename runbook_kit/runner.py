"""Run a runbook headless and always leave a trustworthy record.

Why not `papermill.execute_notebook`: papermill 2.7 saves a notebook whose cells are all marked
"completed" with no error banner after a dead kernel or a cell timeout, and leaves a cell "running"
after the runner gets SIGTERM; it also periodically writes unredacted outputs to the output path.
This runner keeps papermill's notebook conventions (the `parameters` / `injected-parameters` cells,
`metadata.papermill` on the notebook and on each cell) so papermill-aware tools still read the
record, and drives the kernel itself with nbclient, cell by cell:

* every cell's status is set before and after it runs, and the redacted record is written to the
  store as it goes, so even a runner killed with SIGKILL leaves a record that says where it was;
* a cell error, a dead kernel, a cell timeout, the whole-run timeout, SIGTERM and SIGINT each end the
  run with status failed/aborted, an error banner before the failing cell, and a summary cell at the
  top naming that cell;
* kernels use IPC transport in a private temporary folder (TCP port picking collides under
  concurrency), and are always shut down;
* secrets are scrubbed (runbook_kit.redact) before anything is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import datetime as dt
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from typing import Any

from runbook_kit import catalog, params, record
from runbook_kit.redact import Redactor
from runbook_kit.store import LocalStore, Store, open_store, run_basename

__all__ = ["DEFAULT_CELL_TIMEOUT", "DEFAULT_TIMEOUT", "RunResult", "run_notebook"]

DEFAULT_TIMEOUT = 1800.0  # a whole run
DEFAULT_CELL_TIMEOUT = 600.0
_EXIT = {"succeeded": 0, "failed": 1, "aborted": 130}
# Where a record goes when its store (S3, say) cannot be written: a record is never lost.
FALLBACK_STORE = os.path.expanduser(
    os.environ.get("RUNBOOK_FALLBACK_STORE", "~/.local/state/runbook_kit/unsent"))

@dataclasses.dataclass(frozen=True)
class RunResult:
    runbook: str
    incident: str
    status: str  # succeeded | failed | aborted
    notebook_path: str
    html_path: str | None
    entries: list[record.Entry]
    failure: str | None = None
    failed_cell: int | None = None
    parameters: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    signal: int | None = None  # the signal that aborted the run

    @property
    def exit_code(self) -> int:
        if self.status == "aborted" and self.signal:
            return 128 + self.signal
        return _EXIT.get(self.status, 1)

    @property
    def findings(self) -> list[record.Entry]:
        return [e for e in self.entries if e.kind == "finding"]


def _utc(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _source(cell: Mapping[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


class _Run:
    """One execution: the notebook being filled in, and everything needed to write its record."""

    def __init__(self, *, book: catalog.Runbook, nb: dict[str, Any], values: dict[str, Any],
                 incident: str, store: Store, env: Mapping[str, str], timeout: float,
                 cell_timeout: float | None, kernel_name: str) -> None:
        self.book, self.nb, self.values, self.incident, self.store = book, nb, values, incident, store
        self.kernel_env = {**os.environ, **env, "RUNBOOK_INCIDENT": incident, "RUNBOOK_NAME": book.name}
        self.redactor = Redactor.from_environment(self.kernel_env, extra=values)
        self.timeout, self.cell_timeout, self.kernel_name = timeout, cell_timeout, kernel_name
        self.started = dt.datetime.now(dt.UTC)
        self.base = f"{incident}/{run_basename(book.name, self.started)}"
        self.status = "running"
        self.failure: str | None = None
        self.failed_cell: int | None = None
        self.notebook_path = ""
        self.current: int | None = None
        self.interrupted: int | None = None  # the signal that stopped the runner
        self.html_path: str | None = None
        self._exporter: Any = None

    # --- the record ----------------------------------------------------------------------------

    def _cell_label(self, index: int) -> str:
        cells = self.nb["cells"]
        heading = next((_source(c).strip().splitlines()[0] for c in reversed(cells[:index])
                        if c.get("cell_type") == "markdown" and _source(c).strip().startswith("#")), "")
        first = next((ln for ln in _source(cells[index]).splitlines() if ln.strip()), "").strip()
        number = cells[index].get("execution_count")
        label = f"cell {index}" + (f" (In [{number}])" if number else "")
        if heading:
            label += f" under \"{heading.lstrip('#').strip()}\""
        return f"{label}: `{first[:80]}`"

    def _snapshot(self) -> dict[str, Any]:
        """The record as it stands: summary on top, banner before the failing cell, redacted."""
        nb = copy.deepcopy(self.nb)
        entries = record.read_entries(nb)
        finished = dt.datetime.now(dt.UTC)
        nb["metadata"]["runbook_kit"] = {
            "runbook": self.book.name, "incident": self.incident, "status": self.status,
            "failure": self.failure, "failed_cell": self.failed_cell, "current_cell": self.current,
            "started": _utc(self.started), "updated": _utc(finished), "parameters": self.values,
            "entries": [e.to_json() for e in entries], "runner_pid": os.getpid(),
        }
        nb["metadata"]["papermill"] = {
            "input_path": str(self.book.path), "parameters": self.values,
            "start_time": _utc(self.started), "end_time": _utc(finished),
            "duration": (finished - self.started).total_seconds(),
            "exception": self.status in ("failed", "aborted"),
        }
        if self.failed_cell is not None:
            banner = {"cell_type": "markdown", "metadata": {"tags": ["runbook-error"]},
                      "source": f'<span style="color:red; font-size:1.2em">**⚠ {self.status.upper()}**: '
                                f"{self.failure}</span>"}
            nb["cells"].insert(self.failed_cell, banner)
        where = ""
        if self.status == "running" and self.current is not None:
            where = f"running {self._cell_label(self.current)}"
        summary = record.summary_markdown(
            entries, status=self.status, runbook=self.book.name, incident=self.incident,
            failure=self.failure or where or None,
            extra={"Started": _utc(self.started), "Parameters": ", ".join(
                f"`{k}={v!r}`" for k, v in self.values.items()) or "defaults"},
        )
        nb["cells"].insert(0, {"cell_type": "markdown", "metadata": {"tags": ["runbook-summary"]},
                               "source": summary})
        for i, cell in enumerate(nb["cells"]):
            cell.setdefault("id", f"rk-{i:04d}-{cell['cell_type'][:4]}")
        nb["nbformat"], nb["nbformat_minor"] = 4, max(5, int(nb.get("nbformat_minor", 5)))
        return self.redactor.value(nb)

    def write(self, *, final: bool = False) -> dict[str, Any]:
        nb = self._snapshot()
        try:
            self._write_all(nb, final=final)
        except Exception as exc:  # the store is unreachable: keep the record locally, say where
            if isinstance(self.store, LocalStore) and self.store.location == FALLBACK_STORE:
                raise
            print(f"runbook: cannot write to the store {self.store.location} ({exc}); "
                  f"keeping the record in {FALLBACK_STORE}", file=sys.stderr)
            self.store = LocalStore(FALLBACK_STORE)
            self._write_all(nb, final=final)
        return nb

    def _write_all(self, nb: dict[str, Any], *, final: bool) -> None:
        self.notebook_path = self.store.write(f"{self.base}.ipynb", json.dumps(nb, indent=1).encode())
        if final:
            self._write_html(nb)
        self._update_incident(nb)

    def _write_html(self, nb: dict[str, Any]) -> None:
        try:
            exporter = self._exporter or _make_exporter()
            import nbformat

            body, _ = exporter.from_notebook_node(nbformat.from_dict(nb))
            self.html_path = self.store.write(f"{self.base}.html", self.redactor.text(body).encode())
        except Exception as exc:  # the .ipynb is the record; a failed export must not lose it
            print(f"runbook: HTML export failed ({type(exc).__name__}: {exc}); the .ipynb is complete",
                  file=sys.stderr)

    def _update_incident(self, nb: dict[str, Any]) -> None:
        entries = [record.Entry.from_json(e) for e in nb["metadata"]["runbook_kit"]["entries"]]
        run = {
            "runbook": self.book.name, "started": _utc(self.started),
            "updated": nb["metadata"]["runbook_kit"]["updated"], "status": self.status,
            "failure": self.failure, "notebook": self.notebook_path, "html": self.html_path,
            "parameters": nb["metadata"]["runbook_kit"]["parameters"],
            "findings": [e.to_json() for e in entries if e.kind == "finding"],
            "actions": [e.to_json() for e in entries if e.kind == "action"],
        }

        def change(data: dict[str, Any]) -> dict[str, Any]:
            runs = [r for r in data.get("runs", []) if r.get("notebook") != self.notebook_path]
            runs.append(run)
            runs.sort(key=lambda r: r.get("started", ""))
            # other keys (the incident's state and timeline, written by runbook_kit.incident) are kept
            return self.redactor.value({**data, "incident": self.incident, "updated": run["updated"],
                                        "runs": runs})

        self.store.update_json(f"{self.incident}/incident.json", change)

    # --- execution -----------------------------------------------------------------------------

    def _fail(self, index: int, status: str, why: str) -> None:
        self.status, self.failed_cell = status, index
        self.failure = f"{self._cell_label(index)} — {why}"
        meta = self.nb["cells"][index].setdefault("metadata", {})
        meta.setdefault("papermill", {}).update(status="failed", exception=True)

    def _add_error_output(self, cell: dict[str, Any], ename: str, evalue: str) -> None:
        cell.setdefault("outputs", []).append(
            {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": [f"{ename}: {evalue}"]})

    async def execute(self) -> None:
        from jupyter_client.manager import AsyncKernelManager

        with tempfile.TemporaryDirectory(prefix="runbook-kernel-") as tmp:
            km = AsyncKernelManager(kernel_name=self.kernel_name, transport="ipc",
                                    ip=os.path.join(tmp, "ipc"),
                                    connection_file=os.path.join(tmp, "kernel.json"))
            await km.start_kernel(env=self.kernel_env, cwd=os.getcwd())
            try:
                # Imported while the kernel boots: nbclient and nbformat cost ~0.5 s.
                import nbformat
                from nbclient import NotebookClient

                threading.Thread(target=self._prewarm, daemon=True).start()
                node = nbformat.from_dict(self.nb)
                self.nb = node
                client = NotebookClient(node, km=km, kernel_name=self.kernel_name,
                                        startup_timeout=60, record_timing=False)
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

        deadline = time.monotonic() + self.timeout
        count = 0
        for index, cell in enumerate(self.nb["cells"]):
            if cell.get("cell_type") != "code" or not _source(cell).strip():
                continue
            remaining = deadline - time.monotonic()
            budget = min(remaining, self.cell_timeout or remaining)
            if remaining <= 0:
                self._fail(index, "failed", f"the run exceeded its {self.timeout:g} s timeout")
                return
            count += 1
            self.current = index
            pm = cell.setdefault("metadata", {}).setdefault("papermill", {})
            pm.update(status="running", start_time=_utc(dt.datetime.now(dt.UTC)), exception=False)
            self.write()
            client.timeout = max(1, int(budget))
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
            except DeadKernelError as exc:
                if self.interrupted:  # nbclient reports a cancelled cell as a dead kernel
                    why = (f"aborted: the runner received {signal.Signals(self.interrupted).name} "
                           "while this cell ran")
                    self._add_error_output(cell, "RunAborted", why)
                    self._fail(index, "aborted", why)
                    return
                why = f"the kernel died ({exc}); it may have run out of memory or been killed"
                self._add_error_output(cell, "DeadKernelError", why)
                self._fail(index, "failed", why)
            except asyncio.CancelledError:
                why = "aborted: the runner was interrupted (SIGTERM/SIGINT) while this cell ran"
                self._add_error_output(cell, "RunAborted", why)
                self._fail(index, "aborted", why)
            pm.update(end_time=_utc(dt.datetime.now(dt.UTC)), duration=time.monotonic() - started)
            if self.status != "running":
                return
            pm.update(status="completed")
        self.current, self.status = None, "succeeded"

    def _prewarm(self) -> None:
        with contextlib.suppress(Exception):
            self._exporter = _make_exporter()


# The lab template loads require.js, MathJax and mermaid from a CDN; a record read offline (or
# archived for years) must not depend on one, and runbooks need none of them. Images are inline.
_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


def _make_exporter() -> Any:
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name="lab", template_file="runbook_record.html.j2",
                        extra_loaders=[DictLoader({"runbook_record.html.j2": _TEMPLATE})])


def _interrupt(run: _Run, sig: int, task: asyncio.Task[Any] | None) -> None:
    run.interrupted = sig
    if task is not None:
        task.cancel()


async def _main(run: _Run) -> dict[str, Any]:
    """Execute, then write the final record whatever happened; returns that record."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, _interrupt, run, int(sig), task)
            installed.append(sig)
        except (RuntimeError, ValueError, NotImplementedError):  # not the main thread
            pass
    try:
        await run.execute()
    except asyncio.CancelledError:  # interrupted outside a cell (kernel start, shutdown)
        if run.status == "running":
            run.status, run.failure = "aborted", "aborted: the runner was interrupted before the run ended"
    except Exception as exc:  # kernel failed to start, and the like: still a record
        if run.status == "running":
            run.status = "failed"
            run.failure = f"the run could not execute: {type(exc).__name__}: {exc}"[:400]
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        if run.current is not None and run.status == "running":
            run.status = "aborted"
        final = run.write(final=True)
    return final


def default_incident() -> str:
    return "adhoc-" + dt.datetime.now(dt.UTC).strftime("%Y%m%d")


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
) -> RunResult:
    """Execute a runbook headless; the record is always written, whatever happens to the run.

    Raises ParameterError / UnknownRunbook before anything runs when the input is wrong.
    """
    book = catalog.find(runbook)
    nb = catalog.load(book.path)
    values = params.validate(params.declared(nb), dict(parameters or {}))
    incident = params.validate_incident_id(default_incident() if incident is None else incident)
    params.inject(nb, values)
    for cell in nb["cells"]:
        if cell.get("cell_type") == "code":
            cell.setdefault("metadata", {})["papermill"] = {"status": "pending"}
            cell["outputs"], cell["execution_count"] = [], None
    run = _Run(book=book, nb=nb, values=values, incident=incident, store=open_store(store),
               env=dict(env or {}), timeout=timeout, cell_timeout=cell_timeout, kernel_name=kernel_name)
    final = asyncio.run(_main(run))  # the record as written
    result = RunResult(
        runbook=book.name, incident=incident, status=run.status, notebook_path=run.notebook_path,
        html_path=run.html_path, entries=record.read_entries(final), failure=run.failure,
        failed_cell=run.failed_cell, parameters=final["metadata"]["runbook_kit"]["parameters"],
        signal=run.interrupted,
    )
    _tell_incident(result, run)
    return result


def _tell_incident(result: RunResult, run: _Run) -> None:
    """A run under an open incident posts its one-line summary and record link to the incident's
    thread (runbook_kit.comms). Telling people never fails the run: a failure is one stderr line."""
    try:
        from runbook_kit import comms

        comms.run_summary(result, store=run.store, redactor=run.redactor)
    except Exception as exc:
        print(f"runbook: could not post to the incident thread ({type(exc).__name__}: {exc})",
              file=sys.stderr)
