"""The runner as a papermill engine: `papermill -e runbook IN.ipynb OUT.ipynb -p k v`.

Schedulers that already drive papermill (Airflow's PapermillOperator with `engine_name="runbook"`,
Dagster, cron + papermill) get the record guarantees of `runbook run` without a new integration,
because the execution is `runbook_kit.runner.run_notebook` itself, not a second implementation:

* papermill's own `Engine.execute_notebook` wraps the notebook in a NotebookExecutionManager that
  writes OUT at the start, at every cell start and end, and every 30 s while a cell streams output,
  with the outputs as they came from the kernel: unredacted. This engine replaces that wrapper, so
  papermill never writes OUT while the runbook runs; the runner writes its redacted snapshots to the
  incident store (a killed run still leaves a record there, marked as such by the next reader), and
  papermill writes OUT once, at the end, with the final record this engine returns: redacted, the
  summary on top, a failure banner naming the failing cell.
* a failed cell keeps its (redacted) error output, so papermill's `raise_for_execution_errors` adds
  its own marker and exits non-zero, as with its default engine.
* the run is in the incident's index (incident.json) and its record in the store, as with
  `runbook run`. The incident comes from the `incident=` engine keyword (papermill's Python API
  passes unknown keywords to the engine) or else `$RUNBOOK_INCIDENT` (papermill's CLI has no
  engine options; an Airflow task sets it in the operator's environment); else the runner's default
  (`adhoc-<UTC date>`). Not a notebook parameter: the kit refuses parameters a runbook does not
  declare, and the incident is not the runbook's input. The store is `$RUNBOOK_STORE` or `store=`.
* the parameters are papermill's (`-p`, `-f`, typed by papermill), validated and coerced by the
  kit as for `runbook run`; a bad one fails before a kernel starts (ParameterError, one line).

`execution_timeout` (papermill's `--execution-timeout`) becomes the cell timeout;
`run_timeout=` (Python API) bounds the whole run as `runbook run --timeout` does.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from papermill.engines import Engine
from papermill.log import logger

# papermill imports every registered engine when it is imported itself: the runner (and with it the
# recorder, nbformat...) is imported when a notebook is executed, not by every `import papermill`.

__all__ = ["RunbookEngine"]


def _plain(nb: Any) -> dict[str, Any]:
    """papermill's notebook without the cells papermill added (its injected parameters)."""
    import nbformat

    data = nbformat.from_dict(nb)
    data["cells"] = [c for c in data["cells"]
                     if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    return dict(data)


@contextlib.contextmanager
def _source_path(nb: Any, input_path: Any) -> Iterator[str]:
    """The runbook to run: IN itself when it is a local notebook (its name and path go into the
    record), else (s3://, stdin) papermill's copy of it written to a private temporary folder."""
    if isinstance(input_path, str | os.PathLike) and str(input_path).endswith(".ipynb") \
            and Path(input_path).is_file():
        yield str(input_path)
        return
    import nbformat

    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(str(input_path or "")).stem).strip("_-") or "notebook"
    with tempfile.TemporaryDirectory(prefix="runbook-papermill-") as tmp:
        path = Path(tmp) / f"{stem}.ipynb"
        nbformat.write(nbformat.from_dict(_plain(nb)), str(path))
        yield str(path)


class RunbookEngine(Engine):
    """papermill's engine interface over `runner.run_notebook` (registered as `runbook`)."""

    @classmethod
    def execute_notebook(
        cls,
        nb: Any,
        kernel_name: str | None,
        output_path: str | None = None,
        progress_bar: bool = True,
        log_output: bool = False,
        autosave_cell_every: int = 30,
        *,
        input_path: str | None = None,
        execution_timeout: float | None = None,
        incident: str | None = None,
        store: str | None = None,
        run_timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run the notebook with the kit's runner; return its final (redacted) record for OUT.

        `output_path`, `progress_bar`, `log_output` and `autosave_cell_every` are papermill's and
        are deliberately not used: OUT is written by papermill once, from what this returns."""
        import nbformat

        from runbook_kit import runner

        parameters = dict((nb.get("metadata", {}).get("papermill", {}) or {}).get("parameters") or {})
        incident = incident if incident is not None else (os.environ.get("RUNBOOK_INCIDENT") or None)
        with _source_path(nb, input_path) as source:
            result = runner.run_notebook(
                source,
                parameters=parameters,
                incident=incident,
                store=store,
                kernel_name=kernel_name or "python3",
                timeout=run_timeout or runner.DEFAULT_TIMEOUT,
                cell_timeout=execution_timeout or runner.DEFAULT_CELL_TIMEOUT,
            )
        logger.info(f"runbook: {result.runbook} {result.status} in incident {result.incident}; "
                    f"record {result.notebook_path}")
        if result.failure:
            logger.error(f"runbook: {result.failure}")
        if result.recorded_elsewhere:  # `runbook run` exits 4 here; papermill has one success code
            from runbook_kit.redact import Redactor

            logger.warning(Redactor.from_environment().text(
                f"runbook: the store could not be written ({result.recorded_elsewhere}); "
                f"the record is in the fallback store: {result.notebook_path}"))
        record = nbformat.from_dict(copy.deepcopy(dict(result.final_record or {})))
        # papermill's own bookkeeping of this execution, beside the kit's (input/output paths)
        pm = record.metadata.setdefault("papermill", {})
        pm["input_path"] = str(input_path) if input_path is not None else pm.get("input_path")
        pm["output_path"] = output_path
        return record

    @classmethod
    def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
        raise NotImplementedError("RunbookEngine.execute_notebook runs the notebook itself")

