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
* A plan touching more objects than its blast radius (`max_targets`, default `DEFAULT_MAX_TARGETS`
  for a plan with several targets) is refused and recorded as `refused`, dry run or not. What the
  plan left out on purpose (`excluded`: protected sessions, DaemonSet pods...) is recorded with why.
* A plan built on evidence a read could not get (`missing_evidence`, see `record.read_step`) is
  refused: a mitigation never runs on a diagnosis that lacks what it depends on.

Why `execute` is sealed: a callable on a public field is one `plan.execute(False)` away from a write
that skips the dry-run default, the read-only switch and the record. The plan keeps the callable in
a `_Sealed` wrapper: calling it raises `UnsafeActionRefused` naming `rk.apply`, and only this
module holds the key that unlocks it. (Python cannot stop code that digs into closures on purpose;
the read-only clients in `runbook_kit.clients` are the second wall for that.)

Why read-only is read once: `RUNBOOK_READ_ONLY` is a property of the machine, set by whoever started
the kernel. It is read from the process's *initial* environment (`/proc/self/environ` on Linux, else
`os.environ` when this module is first imported), so a cell that changes `os.environ` cannot lift
it. It is parsed like every other boolean (1/0, true/false, yes/no, on/off, y/n, any case and
spacing); any other value fails closed: the machine is read-only and every refusal names the value.

Interactive safety: in a JupyterLab kernel (not a headless run, whose runner starts the kernel
with `RUNBOOK_HEADLESS`; `RUNBOOK_INCIDENT` / `RUNBOOK_NAME` count too), applying a plan for real
shows it and asks for confirmation (`input()`), and a plan older than `RUNBOOK_PLAN_MAX_AGE_MIN`
minutes (default 10) is re-planned (when the planner gave `replan`) or refused with "re-run the plan
cell".
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from runbook_kit import record
from runbook_kit.errors import RunbookError, UnsafeActionRefused, translate
from runbook_kit.machine import TRUE_WORDS, initial_environ, read_only, read_only_reason

__all__ = [
    "DEFAULT_MAX_TARGETS",
    "Plan",
    "Result",
    "apply",
    "read_only",
    "read_only_reason",
]

DEFAULT_MAX_TARGETS = 10  # blast radius of a bulk plan that does not set its own
_KEY = object()  # only this module can unlock a plan's execute


# --- the machine's read-only switch: runbook_kit.machine (clients enforce it too) --------------

_INITIAL_ENV = initial_environ()
_READ_ONLY, _READ_ONLY_WHY = read_only(), read_only_reason()


def _headless() -> bool:
    """A run nobody watches: started by the runner (or said so), or no IPython kernel at all."""
    if any(_INITIAL_ENV.get(name) for name in ("RUNBOOK_INCIDENT", "RUNBOOK_NAME")):
        return True
    if _INITIAL_ENV.get("RUNBOOK_HEADLESS", "").strip().lower() in TRUE_WORDS:
        return True
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return True
    shell = get_ipython()
    return shell is None or getattr(shell, "kernel", None) is None


def _max_age_s() -> float:
    raw = _INITIAL_ENV.get("RUNBOOK_PLAN_MAX_AGE_MIN", "").strip()
    try:
        return float(raw) * 60 if raw else 600.0
    except ValueError:
        return 600.0


# --- plans ---------------------------------------------------------------------------------------

class _Sealed:
    """A plan's write, callable only through `apply`."""

    __slots__ = ("_unlock",)

    def __init__(self, fn: Callable[[bool], Any]) -> None:
        def unlock(key: object) -> Callable[[bool], Any]:
            if key is not _KEY:
                raise UnsafeActionRefused("a plan's write is reached only through rk.apply(plan)")
            return fn

        self._unlock = unlock

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise UnsafeActionRefused(
            "plan.execute cannot be called directly: use rk.apply(plan, dry_run=dry_run), which "
            "dry-runs by default, honours RUNBOOK_READ_ONLY and the blast radius, and records the action"
        )

    def __repr__(self) -> str:
        return "<sealed: rk.apply(plan) runs it>"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Plan:
    """A change, described before it is made."""

    action: str  # "rollout undo", "terminate idle sessions"
    target: str  # "deployment/api in namespace payments"
    backend: str  # k8s | aws | postgres
    command: str  # the equivalent kubectl / aws / SQL
    execute: Callable[[bool], Any]  # the write, sealed: only rk.apply runs it
    changes: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    observe: Callable[[], Any] | None = None
    server_dry_run: bool = False
    targets: Sequence[str] = ()  # every object the change touches (pods, PIDs, parameters)
    max_targets: int | None = None  # blast radius; None: DEFAULT_MAX_TARGETS when several targets
    reason: str = ""  # why this change is recommended
    undo: str = ""  # how to undo it
    nothing_to_do: bool = False  # already in the wanted state: recorded as skipped, never executed
    excluded: Sequence[tuple[str, str]] = ()  # (candidate, why it was left out)
    excluded_command: str = ""  # what a human could run for the excluded ones, if they decide to
    missing_evidence: Sequence[str] = ()  # gaps this plan depends on: the guard refuses it
    replan: Callable[[], Plan] | None = dataclasses.field(default=None, repr=False, compare=False)
    planned_at: float = dataclasses.field(default_factory=time.monotonic, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.execute, _Sealed):
            object.__setattr__(self, "execute", _Sealed(self.execute))
        object.__setattr__(self, "excluded", tuple((str(t), str(w)) for t, w in self.excluded))

    @property
    def title(self) -> str:
        return f"{self.action}: {self.target}"

    @property
    def blast_radius(self) -> int | None:
        """The most objects this plan may touch (None: a single-object plan, not bounded)."""
        if self.max_targets is not None:
            return self.max_targets
        return DEFAULT_MAX_TARGETS if len(self.targets) > 1 else None

    @property
    def age_s(self) -> float:
        return time.monotonic() - self.planned_at

    def _repr_html_(self) -> str:
        esc = html.escape
        rows = [("action", self.action), ("target", self.target), ("command", self.command)]
        rows += [(k, str(v)) for k, v in self.changes.items()]
        if self.targets:
            rows.append((f"targets ({len(self.targets)})", ", ".join(map(str, self.targets[:50]))))
        if self.blast_radius is not None:
            rows.append(("blast radius", f"at most {self.blast_radius}"))
        if self.excluded:
            rows.append((f"excluded ({len(self.excluded)})",
                         "; ".join(f"{t}: {w}" for t, w in self.excluded[:50])))
        if self.excluded_command:
            rows.append(("for the excluded, by hand", self.excluded_command))
        if self.missing_evidence:
            rows.append(("missing evidence", "; ".join(self.missing_evidence)))
        for label, text in (("reason", self.reason), ("undo", self.undo)):
            if text:
                rows.append((label, text))
        body = "".join(f"<tr><th>{esc(k)}</th><td><code>{esc(v)}</code></td></tr>" for k, v in rows)
        return f"<b>Plan</b><table>{body}</table>"

    def __repr__(self) -> str:
        return f"Plan({self.title!r}, command={self.command!r}, targets={len(self.targets)})"

    def one_screen(self) -> str:
        """The plan as plain text, for the confirmation prompt."""
        lines = [f"{self.title}", f"  command: {self.command}"]
        if self.targets:
            lines.append(f"  targets ({len(self.targets)}): {', '.join(map(str, self.targets[:20]))}"
                         + (" …" if len(self.targets) > 20 else ""))
        for t, why in self.excluded[:20]:
            lines.append(f"  excluded {t}: {why}")
        if self.undo:
            lines.append(f"  undo: {self.undo}")
        return "\n".join(lines)


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

    @property
    def excluded(self) -> Sequence[tuple[str, str]]:
        """What the plan left out, and why."""
        return self.plan.excluded


def _details(plan: Plan, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {"target": plan.target, "backend": plan.backend, **plan.changes}
    if plan.nothing_to_do:
        details["nothing_to_do"] = True
    if plan.targets:
        details["targets"] = list(plan.targets)
    if plan.blast_radius is not None and len(plan.targets) > 1:
        details["blast_radius"] = plan.blast_radius
    if plan.excluded:
        details["excluded"] = [{"target": t, "reason": why} for t, why in plan.excluded]
        details["excluded_summary"] = _excluded_summary(plan.excluded)
    if plan.excluded_command:
        details["excluded_command"] = plan.excluded_command
    if plan.missing_evidence:
        details["missing_evidence"] = list(plan.missing_evidence)
    if plan.reason:
        details["reason"] = plan.reason
    if plan.undo:
        details["undo"] = plan.undo
    details.update({k: v for k, v in extra.items() if v is not None})
    return details


def _excluded_summary(excluded: Sequence[tuple[str, str]]) -> str:
    """"2 left out: 1 a superuser session, 1 DaemonSet-managed" (one line, for the summary)."""
    counts: dict[str, int] = {}
    for _, why in excluded:
        counts[why] = counts.get(why, 0) + 1
    return f"{len(excluded)} left out: " + ", ".join(f"{n} {why}" for why, n in counts.items())


def _unsealed(plan: Plan) -> Callable[[bool], Any]:
    sealed = plan.execute
    assert isinstance(sealed, _Sealed)
    return sealed._unlock(_KEY)


def _refuse(plan: Plan, why: str, *, raise_: bool = True) -> Result:
    record.action(plan.title, outcome="refused", command=plan.command, **_details(plan, why=why))
    if raise_:
        raise UnsafeActionRefused(why)
    return Result(plan, "refused", error=why)


def _raise_failed(plan: Plan, exc: Exception, **extra: Any) -> NoReturn:
    """Record the failed action, then raise it as a kit error (SDK errors never escape)."""
    err = exc if isinstance(exc, RunbookError) else translate(exc, backend=plan.backend, op=plan.action)
    details = _details(plan, error=str(err), **extra)
    record.action(plan.title, outcome="failed", command=plan.command, **details)
    if err is exc:
        raise exc
    raise err from exc


def _confirm(plan: Plan) -> str | None:
    """Ask the engineer at the keyboard; None when confirmed, else why not. Headless: never asks."""
    if _headless():
        return None
    try:
        from IPython.display import display

        display(plan)
        answer = input(f"Apply for real?\n{plan.one_screen()}\nType 'yes' to apply: ")
    except Exception as exc:  # StdinNotImplementedError: a kernel with nobody to ask is headless
        if type(exc).__name__ == "StdinNotImplementedError":
            return None
        raise
    if answer.strip().lower() in {"yes", "y", "apply"}:
        return None
    return f"not confirmed at the prompt (answer {answer.strip()[:20]!r}): nothing was changed"


def apply(plan: Plan, *, dry_run: bool = True) -> Result:
    """Carry out a plan through the guard. Dry run unless `dry_run=False` is said explicitly."""
    if plan.missing_evidence:
        why = (f"{plan.action} depends on evidence the runbook could not read: "
               f"{'; '.join(plan.missing_evidence)}; fix the gap (see the record's Gaps) and re-run")
        return _refuse(plan, why, raise_=not dry_run)
    radius = plan.blast_radius
    if radius is not None and len(plan.targets) > radius:
        why = (f"{plan.action} would touch {len(plan.targets)} objects, over its blast radius of "
               f"{radius}; narrow the selection or raise max_targets deliberately")
        return _refuse(plan, why)
    if plan.nothing_to_do:
        record.action(plan.title, outcome="skipped", command=plan.command, **_details(plan))
        return Result(plan, "skipped")
    if not dry_run and _READ_ONLY:
        return _refuse(plan, _READ_ONLY_WHY)

    execute = _unsealed(plan)
    if dry_run:
        response = None
        if plan.server_dry_run:
            try:
                response = execute(True)
            except Exception as exc:
                _raise_failed(plan, exc, dry_run=True)
        record.action(plan.title, outcome="dry-run", command=plan.command,
                      **_details(plan, server_validated=plan.server_dry_run))
        return Result(plan, "dry-run", response=response)

    if plan.age_s > _max_age_s() and not _headless():
        if plan.replan is None:
            minutes = plan.age_s / 60
            return _refuse(plan, f"this plan is {minutes:.0f} min old (over {_max_age_s() / 60:g}): "
                                 "re-run the plan cell, then apply")
        fresh = plan.replan()
        record.event(f"re-planned before applying: {plan.title} was {plan.age_s / 60:.0f} min old",
                     was=plan.title, now=fresh.title)
        return apply(fresh, dry_run=False)
    refusal = _confirm(plan)
    if refusal:
        return _refuse(plan, refusal, raise_=False)

    before = plan.observe() if plan.observe else None
    try:
        response = execute(False)
    except Exception as exc:
        _raise_failed(plan, exc, before=before)
    after = plan.observe() if plan.observe else None
    record.action(plan.title, outcome="applied", command=plan.command,
                  **_details(plan, before=before, after=after,
                             applied_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds")))
    return Result(plan, "applied", before=before, after=after, response=response)
