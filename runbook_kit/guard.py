"""The one path every mutation takes: plan → (dry-run | apply) → record.

Mitigation helpers never change anything themselves. They return a `Plan`: what would change, on
which objects, the equivalent `kubectl` / `aws` / SQL command, and two callables — `execute` (the
write) and `observe` (read the state the write changes). `apply()` is the only caller of `execute`:

* `dry_run=True` (the default everywhere): no write reaches a backend. Where the API has a
  server-side dry run (Kubernetes `dryRun=All`, EC2 `DryRun=True`), `execute(dry_run=True)` sends
  it so the server validates the change without persisting it; otherwise nothing is sent. The plan
  is recorded as an action with outcome `dry-run` and its command.
* `dry_run=False`: state is observed before, the write executes, state is observed after, and the
  action is recorded as `applied` (or `failed`, with the error) with before/after.
* A plan touching more objects than its blast radius (`max_targets`) is refused and recorded as
  `refused`, dry run or not. `RUNBOOK_READ_ONLY=1` refuses every real write on this machine.
"""

from __future__ import annotations

import dataclasses
import html
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from runbook_kit import record
from runbook_kit.errors import RunbookError, UnsafeActionRefused, translate

__all__ = ["Plan", "Result", "apply"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Plan:
    """A change, described before it is made."""

    action: str  # "rollout undo", "terminate idle sessions"
    target: str  # "deployment/api in namespace payments"
    backend: str  # k8s | aws | postgres
    command: str  # the equivalent kubectl / aws / SQL
    execute: Callable[[bool], Any]  # execute(dry_run) performs the write; dry_run only if server_dry_run
    changes: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    observe: Callable[[], Any] | None = None
    server_dry_run: bool = False
    targets: Sequence[str] = ()  # every object the change touches (pods, PIDs, parameters)
    max_targets: int | None = None  # blast radius: refuse when len(targets) exceeds it
    reason: str = ""  # why this change is recommended
    undo: str = ""  # how to undo it
    nothing_to_do: bool = False  # already in the wanted state: recorded as skipped, never executed

    @property
    def title(self) -> str:
        return f"{self.action}: {self.target}"

    def _repr_html_(self) -> str:
        esc = html.escape
        rows = [("action", self.action), ("target", self.target), ("command", self.command)]
        rows += [(k, str(v)) for k, v in self.changes.items()]
        if self.targets:
            rows.append((f"targets ({len(self.targets)})", ", ".join(map(str, self.targets[:50]))))
        if self.max_targets is not None:
            rows.append(("blast radius", f"at most {self.max_targets}"))
        for label, text in (("reason", self.reason), ("undo", self.undo)):
            if text:
                rows.append((label, text))
        body = "".join(f"<tr><th>{esc(k)}</th><td><code>{esc(v)}</code></td></tr>" for k, v in rows)
        return f"<b>Plan</b><table>{body}</table>"

    def __repr__(self) -> str:
        return f"Plan({self.title!r}, command={self.command!r}, targets={len(self.targets)})"


@dataclasses.dataclass(frozen=True)
class Result:
    plan: Plan
    outcome: str  # dry-run | applied | failed | refused | skipped
    before: Any = None
    after: Any = None
    response: Any = None
    error: str | None = None

    @property
    def applied(self) -> bool:
        return self.outcome == "applied"


def _details(plan: Plan, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {"target": plan.target, "backend": plan.backend, **plan.changes}
    if plan.nothing_to_do:
        details["nothing_to_do"] = True
    if plan.targets:
        details["targets"] = list(plan.targets)
    if plan.reason:
        details["reason"] = plan.reason
    if plan.undo:
        details["undo"] = plan.undo
    details.update({k: v for k, v in extra.items() if v is not None})
    return details


def _raise_failed(plan: Plan, exc: Exception, **extra: Any) -> NoReturn:
    """Record the failed action, then raise it as a kit error (SDK errors never escape)."""
    err = exc if isinstance(exc, RunbookError) else translate(exc, backend=plan.backend, op=plan.action)
    details = _details(plan, error=str(err), **extra)
    record.action(plan.title, outcome="failed", command=plan.command, **details)
    if err is exc:
        raise exc
    raise err from exc


def apply(plan: Plan, *, dry_run: bool = True) -> Result:
    """Carry out a plan through the guard. Dry run unless `dry_run=False` is said explicitly."""
    if plan.max_targets is not None and len(plan.targets) > plan.max_targets:
        why = (f"{plan.action} would touch {len(plan.targets)} objects, over its blast radius of "
               f"{plan.max_targets}; narrow the selection or raise max_targets deliberately")
        record.action(plan.title, outcome="refused", command=plan.command, **_details(plan, why=why))
        raise UnsafeActionRefused(why)
    if plan.nothing_to_do:
        record.action(plan.title, outcome="skipped", command=plan.command, **_details(plan))
        return Result(plan, "skipped")
    if not dry_run and os.environ.get("RUNBOOK_READ_ONLY", "").lower() in {"1", "true", "yes"}:
        why = "RUNBOOK_READ_ONLY is set on this machine: only dry runs are allowed"
        record.action(plan.title, outcome="refused", command=plan.command, **_details(plan, why=why))
        raise UnsafeActionRefused(why)

    if dry_run:
        response = None
        if plan.server_dry_run:
            try:
                response = plan.execute(True)
            except Exception as exc:
                _raise_failed(plan, exc, dry_run=True)
        record.action(plan.title, outcome="dry-run", command=plan.command,
                      **_details(plan, server_validated=plan.server_dry_run))
        return Result(plan, "dry-run", response=response)

    before = plan.observe() if plan.observe else None
    try:
        response = plan.execute(False)
    except Exception as exc:
        _raise_failed(plan, exc, before=before)
    after = plan.observe() if plan.observe else None
    record.action(plan.title, outcome="applied", command=plan.command,
                  **_details(plan, before=before, after=after))
    return Result(plan, "applied", before=before, after=after, response=response)
