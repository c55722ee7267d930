"""Where a run executes: the small interface `runbook run --on local|kubernetes` and `runbook serve` use.

    outcome = executor.run(RunRequest(runbook="pod_crashloop", parameters={...}, incident="INC-1"))
    outcome.result.exit_code       # the same documented codes, whatever the executor

An executor takes a request (what to run, where its record goes, its bounds) and returns the run's
`RunResult` (runbook_kit.runner), read from the record, so the CLI prints the same lines and exits
with the same code for a local run and a Job. `LocalExecutor` is today's path (a kernel in this
process's child); `KubernetesExecutor` (runbook_kit.jobs.submit) submits a Job and follows it.
Errors of the request (bad parameter, no image, a store a pod cannot write) are RunbookErrors raised
before anything runs (exit 2).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from runbook_kit.runner import DEFAULT_CELL_TIMEOUT, DEFAULT_TIMEOUT, RunResult

__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "RunRequest"]

EXECUTORS = ("local", "kubernetes")


@dataclasses.dataclass(frozen=True)
class RunRequest:
    runbook: str
    parameters: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # as given (strings or typed)
    incident: str | None = None  # None: adhoc-<UTC date>
    store: str | None = None  # None: settings' store
    timeout: float = DEFAULT_TIMEOUT
    cell_timeout: float | None = DEFAULT_CELL_TIMEOUT
    run_id: str | None = None  # a deliberate second run of the same submission (Jobs: a new Job name)
    episode: str | None = None  # the alert receiver's run id, when `runbook serve` asked
    on_step: Callable[[int, str], None] | None = None  # local: each code cell as it starts


class Executor(Protocol):
    name: str

    def run(self, request: RunRequest) -> RunResult:
        """Execute the run and return its result as recorded; raise RunbookError on bad input."""
        ...


class LocalExecutor:
    """The run in a kernel started by this process (runbook_kit.runner), or in one started beforehand
    (`kernel`: a runner.StartedKernel, runbook serve's warm standbys)."""

    name = "local"

    def __init__(self, *, kernel: Any = None) -> None:
        self.kernel = kernel

    def run(self, request: RunRequest) -> RunResult:
        from runbook_kit.runner import run_notebook

        return run_notebook(
            request.runbook,
            parameters=request.parameters,
            incident=request.incident,
            store=request.store,
            timeout=request.timeout,
            cell_timeout=request.cell_timeout,
            on_step=request.on_step,
            kernel=self.kernel,
        )
