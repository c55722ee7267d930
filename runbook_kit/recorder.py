"""Turn a notebook being executed into its record, and write that record to the store.

The runner (runner.py) executes cells and says what happened (`RunState`); this module decides what
the record looks like and puts it in the store, so a reader of either file sees one idea:

* a snapshot is the notebook as it stands plus a summary cell on top, an error banner before the
  failing cell, `metadata.runbook_kit` / `metadata.papermill`, stored output capped per cell and per
  record (head and tail kept, the cut said in place), everything redacted;
* run data (exception messages, parameters, entry titles, cell sources) is HTML-escaped before it goes
  into the summary or the banner: they are Markdown cells, and Markdown renders raw HTML, so a
  `<script>` in an exception message would be live in the exported `.html` opened by many people;
* a write goes to the store, or its fallback (store.FallbackStore) when the store cannot be written;
* the record names its runner (host, PID, process start time) so that a reader can tell, later, that
  the runner is gone (runbook_kit.recovery).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime as dt
import html
import json
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from runbook_kit import catalog, record
from runbook_kit.errors import Conflict
from runbook_kit.redact import Redactor
from runbook_kit.store import FallbackStore, run_basename

__all__ = [
    "CELL_OUTPUT_CAP",
    "RECORD_OUTPUT_CAP",
    "Recorder",
    "RunState",
    "banner_cell",
    "cap_outputs",
    "export_html",
    "make_exporter",
    "md_escape",
    "output_size",
    "run_entry",
    "runner_identity",
    "start_ticks",
    "summary_cell",
    "warm_exporter",
    "with_run",
]

CELL_OUTPUT_CAP = 1_000_000  # characters of stored output per cell
RECORD_OUTPUT_CAP = 10_000_000  # and per record


def _utc(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _source(cell: Mapping[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


# Every character Markdown or HTML gives a meaning to, as a numeric character reference: the text
# reads the same once rendered, and nothing in it can open a tag, an emphasis or a code span.
_MD_SPECIAL: dict[int, str | int | None] = {ord(c): f"&#{ord(c)};" for c in "\\`*_[]<>#!|~"}


def md_escape(text: str) -> str:
    """Run-derived text made inert for a Markdown cell (one line; `&` first, then the rest)."""
    text = html.escape(str(text), quote=False).translate(_MD_SPECIAL)
    return " ".join(text.splitlines())


# --- who runs a record: enough to tell later that the runner is gone, even after PID reuse --------

def start_ticks(pid: int) -> int | None:
    """The process start time in clock ticks since boot (Linux /proc), None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode(errors="replace")
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def runner_identity() -> dict[str, Any]:
    """Host, PID and start time; in a Kubernetes Job (runbook_kit.jobs) also the Job, pod and image,
    so whoever submitted it finds this record and can finalize it from the Job's status."""
    pid = os.getpid()
    ident: dict[str, Any] = {"host": socket.gethostname(), "pid": pid, "start": start_ticks(pid)}
    if os.environ.get("RUNBOOK_JOB"):  # set in the Job's pod (runbook_kit.jobs.manifest)
        for key, env in (("job", "RUNBOOK_JOB"), ("namespace", "RUNBOOK_JOB_NAMESPACE"),
                         ("pod", "RUNBOOK_POD"), ("image", "RUNBOOK_IMAGE")):
            if os.environ.get(env):
                ident[key] = os.environ[env]
    return ident


# --- output caps --------------------------------------------------------------------------------

def output_size(output: Mapping[str, Any]) -> int:
    if output.get("output_type") == "stream":
        return len(output.get("text", ""))
    data = (output.get("data") or {}).values()
    size = sum(len(v) if isinstance(v, str) else len(json.dumps(v)) for v in data)
    return size + sum(len(t) for t in output.get("traceback", []) or [])


def _is_entry(output: Mapping[str, Any]) -> bool:
    return record.MIME in (output.get("data") or {})


def _trim(output: Mapping[str, Any], keep: int, *, head: bool) -> dict[str, Any] | None:
    if output.get("output_type") != "stream" or keep <= 0:
        return None
    text = str(output.get("text", ""))
    return {**output, "text": text[:keep] if head else text[len(text) - keep:]}


_NOTE = re.compile(r"^\n\[runbook: ([\d,]+) characters of output cut here")


def _earlier_cut(output: Mapping[str, Any]) -> int | None:
    """The count of a note left by an earlier cut (the runner compacts a flooding cell as it runs)."""
    match = _NOTE.match(str(output.get("text", ""))) if output.get("output_type") == "stream" else None
    return int(match.group(1).replace(",", "")) if match else None


def cap_outputs(outputs: list[Any], limit: int) -> tuple[list[Any], int]:
    """Outputs within `limit` characters: the head and the tail kept, the middle replaced by one note.

    Entries (findings, actions, events) are never cut: they are the record. A note from an earlier
    cut is folded into the new one. Returns (outputs, characters cut so far).
    """
    earlier = [_earlier_cut(o) for o in outputs]
    before = sum(n for n in earlier if n)
    rest = [o for o, n in zip(outputs, earlier, strict=True) if n is None]
    sizes = [output_size(o) for o in rest]
    total = sum(sizes)
    if total <= limit:
        return outputs, before
    half = limit // 2
    i, used = 0, 0
    while i < len(rest) and used + sizes[i] <= half:
        used, i = used + sizes[i], i + 1
    j, used_tail = len(rest), 0
    while j > i and used_tail + sizes[j - 1] <= half:
        used_tail, j = used_tail + sizes[j - 1], j - 1
    head, middle, tail = list(rest[:i]), list(rest[i:j]), list(rest[j:])
    kept_middle: list[Any] = []
    if middle:
        first = _trim(middle[0], half - used, head=True)
        last = _trim(middle[-1], half - used_tail, head=False)  # the same output when only one
        if first is not None:
            head.append(first)
        kept_middle = [o for o in middle if _is_entry(o)]
        if last is not None:
            tail.insert(0, last)
    kept = head + kept_middle + tail
    cut = before + total - sum(output_size(o) for o in kept)
    note = {"output_type": "stream", "name": "stderr",
            "text": f"\n[runbook: {cut:,} characters of output cut here; the record keeps the first and "
                    f"last {half:,} of each cell's output (cap {limit:,})]\n"}
    return head + kept_middle + [note] + tail, cut


def _cell_limits(cells: list[Any], per_cell: int, per_record: int) -> dict[int, int]:
    """Each cell's cap: `per_cell`, lowered evenly (water-filling) so that the record fits `per_record`."""
    sizes = {i: min(per_cell, sum(output_size(o) for o in c.get("outputs") or []))
             for i, c in enumerate(cells) if c.get("cell_type") == "code"}
    limits, budget = {}, per_record
    ordered = sorted(sizes, key=lambda i: sizes[i])
    for n, i in enumerate(ordered):
        share = budget // (len(ordered) - n)
        limits[i] = min(sizes[i], share) if sizes[i] > share else per_cell
        budget -= min(sizes[i], share)
    return limits


# --- the record -------------------------------------------------------------------------------

@dataclasses.dataclass
class RunState:
    """What the runner tells the recorder. `why` is the cause; `failure` adds the cell's name."""

    status: str = "running"  # running | succeeded | failed | aborted
    why: str | None = None
    failed_cell: int | None = None
    current: int | None = None
    failure: str | None = None


class Recorder:
    """Builds snapshots of one run and writes them (notebook, incident.json, at the end the HTML)."""

    def __init__(self, *, book: catalog.Runbook, incident: str, values: Mapping[str, Any],
                 store: FallbackStore, redactor: Redactor, cell_output_cap: int = CELL_OUTPUT_CAP,
                 record_output_cap: int = RECORD_OUTPUT_CAP) -> None:
        self.book, self.incident, self.values, self.store = book, incident, dict(values), store
        self.redactor = redactor
        self.cell_cap, self.record_cap = cell_output_cap, record_output_cap
        self.started = dt.datetime.now(dt.UTC)
        self.key = f"{incident}/{run_basename(book.name, self.started)}"
        self.runner = runner_identity()
        self.notebook_path = ""
        self.html_path: str | None = None
        self.html_note: str | None = None
        self.last_write = 0.0
        self.write_seconds = 0.0  # how long the last write took
        self._lock = threading.Lock()
        self._told_fallback = False
        self.index_missed: str | None = None  # why the last incident.json update did not land

    # naming cells ------------------------------------------------------------------------------
    def cell_label(self, nb: Mapping[str, Any], index: int, *, markdown: bool = False) -> str:
        cells = nb["cells"]
        heading = next((_source(c).strip().splitlines()[0] for c in reversed(cells[:index])
                        if c.get("cell_type") == "markdown" and _source(c).strip().startswith("#")), "")
        first = next((ln for ln in _source(cells[index]).splitlines() if ln.strip()), "").strip()[:80]
        number = cells[index].get("execution_count")
        label = f"cell {index}" + (f" (In [{number}])" if number else "")
        heading = heading.lstrip("#").strip()
        if markdown:
            label += f' under "{md_escape(self.redactor.text(heading))}"' if heading else ""
            return f"{label}: <code>{md_escape(self.redactor.text(first))}</code>"
        return label + (f' under "{heading}"' if heading else "") + f": `{first}`"

    def fail(self, state: RunState, nb: Mapping[str, Any], index: int, status: str, why: str) -> None:
        state.status, state.failed_cell, state.why = status, index, why
        state.failure = f"{self.cell_label(nb, index)} — {why}"

    # snapshots ---------------------------------------------------------------------------------
    def _capped_cells(self, cells: list[Any]) -> list[dict[str, Any]]:
        limits = _cell_limits(cells, self.cell_cap, self.record_cap)
        out = []
        for i, cell in enumerate(cells):
            copied = {k: copy.deepcopy(v) for k, v in cell.items() if k != "outputs"}
            if "outputs" in cell:
                outputs, _ = cap_outputs(list(cell["outputs"]), limits.get(i, self.cell_cap))
                copied["outputs"] = [copy.deepcopy(o) for o in outputs]
            out.append(copied)
        return out

    def snapshot(self, nb: Mapping[str, Any], state: RunState) -> dict[str, Any]:
        """The record as it stands: summary on top, banner before the failing cell, capped, redacted."""
        snap: dict[str, Any] = {k: copy.deepcopy(v) for k, v in nb.items() if k != "cells"}
        snap["cells"] = self._capped_cells(list(nb["cells"]))
        entries = [record.Entry.from_json(self.redactor.value(e.to_json()))
                   for e in record.read_entries(snap)]
        finished = dt.datetime.now(dt.UTC)
        snap.setdefault("metadata", {})["runbook_kit"] = {
            "runbook": self.book.name, "incident": self.incident, "status": state.status,
            "failure": state.failure, "failed_cell": state.failed_cell, "current_cell": state.current,
            "started": _utc(self.started), "updated": _utc(finished), "parameters": self.values,
            "entries": [e.to_json() for e in entries], "runner_pid": self.runner["pid"],
            "runner": self.runner, "record_id": self.key,
        }
        snap["metadata"]["papermill"] = {
            "input_path": str(self.book.path), "parameters": self.values,
            "start_time": _utc(self.started), "end_time": _utc(finished),
            "duration": (finished - self.started).total_seconds(),
            "exception": state.status in ("failed", "aborted"),
        }
        failure_md = None
        if state.failed_cell is not None:
            failure_md = (f"{self.cell_label(nb, state.failed_cell, markdown=True)} — "
                          f"{md_escape(self.redactor.text(state.why or ''))}")
            snap["cells"].insert(state.failed_cell, banner_cell(state.status, failure_md))
        elif state.why:
            failure_md = md_escape(self.redactor.text(state.why))
        elif state.status == "running" and state.current is not None:
            failure_md = f"running {self.cell_label(nb, state.current, markdown=True)}"
        snap["cells"].insert(0, summary_cell(entries, status=state.status, runbook=self.book.name,
                                              incident=self.incident, failure=failure_md,
                                              started=_utc(self.started),
                                              values=self.redactor.value(self.values)))
        for i, cell in enumerate(snap["cells"]):
            cell.setdefault("id", f"rk-{i:04d}-{cell['cell_type'][:4]}")
        snap["nbformat"], snap["nbformat_minor"] = 4, max(5, int(snap.get("nbformat_minor", 5)))
        return dict(self.redactor.value(snap))

    # writing -----------------------------------------------------------------------------------
    def write(self, nb: Mapping[str, Any], state: RunState, *, final: bool = False,
              html_deadline: float | None = None) -> dict[str, Any]:
        """Write a snapshot (and, when final, the HTML export before incident.json); returns it."""
        with self._lock:  # output hooks and the cell loop may both write
            started = time.monotonic()
            snap = self.snapshot(nb, state)
            self.notebook_path = self.store.write(f"{self.key}.ipynb", json.dumps(snap, indent=1).encode())
            if final:
                self._write_html(snap, html_deadline)
            self._update_incident(snap)
            self.write_seconds = time.monotonic() - started
            self.last_write = time.monotonic()
            if self.store.fell_back and not self._told_fallback:
                self._told_fallback = True
                primary, fallback = self.store.primary.location, self.store.fallback.location
                why = self.store.fell_back
                print(self.redactor.text(f"runbook: cannot write to the store {primary} ({why}); "
                                         f"keeping the record in {fallback}"), file=sys.stderr)
            return snap

    def prewarm(self) -> None:
        """Build the HTML exporter and compile its templates while the kernel works."""
        with contextlib.suppress(Exception):  # the final export reports its own failure
            warm_exporter()

    def _write_html(self, snap: dict[str, Any], deadline: float | None) -> None:
        result: dict[str, Any] = {}

        def export() -> None:
            try:
                import nbformat

                result["body"] = export_html(nbformat.from_dict(snap))
            except Exception as exc:
                result["error"] = f"{type(exc).__name__}: {exc}"

        worker = threading.Thread(target=export, daemon=True)
        worker.start()
        worker.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if "body" in result:
            self.html_path = self.store.write(f"{self.key}.html", self.redactor.text(result["body"]).encode())
            return
        # the .ipynb is the record; a failed or late export must not lose it or stretch the run
        why = result.get("error") or "the run's --timeout was used up before the export finished"
        self.html_note = f"HTML export skipped ({why}); the .ipynb is complete"
        print(f"runbook: {self.redactor.text(self.html_note)}", file=sys.stderr)

    def _update_incident(self, snap: dict[str, Any]) -> None:
        meta = snap["metadata"]["runbook_kit"]
        run = run_entry(meta, notebook=self.notebook_path, html=self.html_path)
        if isinstance(self.store, FallbackStore) and self.store.fell_back:
            run["primary_store"] = self.store.primary.location
            run["primary_error"] = self.store.fell_back
        try:
            self.store.update_json(f"{self.incident}/incident.json",
                                   lambda data: self.redactor.value(with_run(data, self.incident, run)))
        except Conflict as exc:
            # others kept winning the index's compare-and-swap: the record itself is written (its own
            # object); say so once, and let the next update, or the next reader, add the entry
            told, self.index_missed = self.index_missed, str(exc)
            if told is None:
                print(self.redactor.text(
                    f"runbook: the incident index {self.store.url(f'{self.incident}/incident.json')} "
                    f"stayed contended ({exc}); the record is written at {self.notebook_path}, and the "
                    f"next reader of the incident adds it to the index (runbook status {self.incident})"),
                    file=sys.stderr)
        else:
            self.index_missed = None


def run_entry(meta: Mapping[str, Any], *, notebook: str, html: str | None) -> dict[str, Any]:
    """A run as incident.json lists it, from a record's `metadata.runbook_kit`."""
    entries = [record.Entry.from_json(e) for e in meta.get("entries", [])]
    return {
        "runbook": meta.get("runbook"), "started": meta.get("started"), "updated": meta.get("updated"),
        "status": meta.get("status"), "failure": meta.get("failure"), "notebook": notebook, "html": html,
        "record_id": meta.get("record_id"), "runner": meta.get("runner"),
        "parameters": meta.get("parameters", {}),
        "findings": [e.to_json() for e in entries if e.kind == "finding"],
        "actions": [e.to_json() for e in entries if e.kind == "action"],
        "gaps": [e.to_json() for e in entries if e.kind == "gap"],
    }


def with_run(data: dict[str, Any], incident: str, run: dict[str, Any]) -> dict[str, Any]:
    """incident.json with `run` added or replaced (same key); other sections are kept as they are."""
    same = (lambda r: r.get("record_id") == run["record_id"]) if run.get("record_id") else (
        lambda r: r.get("notebook") == run["notebook"])
    runs = [r for r in data.get("runs", []) if not same(r)]
    runs.append(run)
    runs.sort(key=lambda r: r.get("started") or "")
    return {"incident": incident, **data, "updated": run.get("updated"), "runs": runs}


def summary_cell(entries: list[record.Entry], *, status: str, runbook: str, incident: str,
                  failure: str | None, started: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """record.summary_markdown over escaped copies of the run's text (`failure` comes escaped)."""
    safe = [dataclasses.replace(e, command=None, title=md_escape(e.title) + (
        f" — <code>{md_escape(e.command)}</code>" if e.command else "")) for e in entries]
    shown = ", ".join(f"<code>{md_escape(f'{k}={v!r}')}</code>" for k, v in values.items()) or "defaults"
    text = record.summary_markdown(safe, status=status, runbook=_in_code_span(runbook),
                                   incident=_in_code_span(incident), failure=failure,
                                   extra={"Started": started, "Parameters": shown})
    return {"cell_type": "markdown", "metadata": {"tags": ["runbook-summary"]}, "source": text}


def _in_code_span(name: str) -> str:
    """A name shown in a Markdown code span: inert except for a backtick (which would end the span)."""
    return " ".join(name.replace("`", "'").splitlines())


def banner_cell(status: str, failure_md: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "metadata": {"tags": ["runbook-error"]},
            "source": f'<span style="color:red; font-size:1.2em">**⚠ {status.upper()}**: {failure_md}</span>'}


# The lab template loads require.js, MathJax and mermaid from a CDN; a record read offline (or
# archived for years) must not depend on one, and runbooks need none of them. Images are inline.
_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


_EXPORTER: list[Any] = []  # this process's exporter: its templates compile on the first export (~0.5 s)
_EXPORTER_LOCK = threading.Lock()


def export_html(nb: Any) -> str:
    """A notebook node as the record's self-contained HTML, by this process's one exporter."""
    with _EXPORTER_LOCK:
        if not _EXPORTER:
            _EXPORTER.append(make_exporter())
        return str(_EXPORTER[0].from_notebook_node(nb)[0])


def warm_exporter() -> None:
    """Build the exporter and export a one-cell notebook, so that the templates are compiled before
    the record's own export (the runner does this while cells run; warm standbys before their run)."""
    import nbformat

    export_html(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# warm"),
                                                nbformat.v4.new_code_cell("1")]))


def make_exporter() -> Any:
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name="lab", template_file="runbook_record.html.j2",
                        extra_loaders=[DictLoader({"runbook_record.html.j2": _TEMPLATE})])
