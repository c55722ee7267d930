"""The severity policy: what a P0…P3 incident demands, and when.

Defaults encode the team's procedure; `runbook.yaml` overrides any field of any level:

    severity:
      P1:
        update_every: 20                 # minutes between updates in the incident channel
        escalation: [{role: oncall, after: 0}, {role: team_lead, after: 15}]
    contacts:                            # who a role is: never in code, only in configuration
      oncall: {name: Ana Ruiz, slack: U01ANA, pagerduty: PABC123}
      team_lead: {name: Bo Chen, slack: U02BO}

All durations are minutes counted from the incident's start (not from when it was opened: an
incident detected late is already late). `None` means "not part of this level" (P2 has no status-page
cadence), `0` means "immediately".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from runbook_kit.errors import ParameterError

__all__ = ["DEFAULT_POLICY", "LEVELS", "Action", "Level", "Step", "contact", "policy"]


@dataclasses.dataclass(frozen=True)
class Step:
    role: str  # a key of `contacts`: oncall, team_lead, engineering_manager, vp_engineering, cto
    after: float  # minutes after the start


@dataclasses.dataclass(frozen=True)
class Action:
    key: str  # what `runbook incident note ID --done KEY` marks done
    text: str


@dataclasses.dataclass(frozen=True)
class Level:
    name: str
    description: str
    respond_within: float  # minutes
    escalate_after: float | None  # minutes; 0 = at once
    update_every: float  # minutes between internal updates
    statuspage_every: float | None  # minutes between status page updates; None: no status page
    escalation: tuple[Step, ...]
    actions_within: float  # the immediate actions are due this many minutes after the start
    immediate_actions: tuple[Action, ...]
    leadership: bool  # leadership is told directly (P0/P1)


def _steps(*pairs: tuple[str, float]) -> tuple[Step, ...]:
    return tuple(Step(role, after) for role, after in pairs)


def _actions(*pairs: tuple[str, str]) -> tuple[Action, ...]:
    return tuple(Action(key, text) for key, text in pairs)


DEFAULT_POLICY: dict[str, Level] = {
    "P0": Level(
        "P0", "complete outage, customer-facing", respond_within=0, escalate_after=0, update_every=15,
        statuspage_every=30,
        escalation=_steps(("oncall", 0), ("team_lead", 5), ("engineering_manager", 15),
                          ("vp_engineering", 30), ("cto", 45)),
        actions_within=5,
        immediate_actions=_actions(
            ("page_oncall", "page on-call and backup"),
            ("notify_leadership", "notify leadership (CTO, VP Eng)"),
            ("war_room", "open a war room"),
            ("status_page", "update the status page"),
            ("commander", "name an incident commander"),
        ),
        leadership=True,
    ),
    "P1": Level(
        "P1", "major degradation, multiple customers", respond_within=15, escalate_after=30,
        update_every=30, statuspage_every=60,
        escalation=_steps(("oncall", 0), ("team_lead", 30), ("engineering_manager", 120)),
        actions_within=15,
        immediate_actions=_actions(
            ("page_oncall", "page on-call"),
            ("notify_team_lead", "notify the team lead"),
            ("join_channel", "join the incident channel"),
            ("investigate", "begin investigation"),
        ),
        leadership=True,
    ),
    "P2": Level(
        "P2", "partial degradation, limited impact", respond_within=60, escalate_after=120,
        update_every=120, statuspage_every=None,
        escalation=_steps(("oncall", 0), ("team_lead", 120)),
        actions_within=60,
        immediate_actions=_actions(
            ("notify_oncall", "notify on-call"), ("investigate", "investigate"), ("document", "document"),
        ),
        leadership=False,
    ),
    "P3": Level(
        "P3", "minor issue, minimal impact", respond_within=240, escalate_after=480,
        update_every=24 * 60, statuspage_every=None,
        escalation=_steps(("oncall", 0), ("team_lead", 480)),
        actions_within=240,
        immediate_actions=_actions(
            ("ticket", "create a ticket"), ("investigate", "investigate"), ("document", "document"),
        ),
        leadership=False,
    ),
}
LEVELS = tuple(DEFAULT_POLICY)

_NUMBERS = ("respond_within", "escalate_after", "update_every", "statuspage_every", "actions_within")


def _override(level: Level, raw: Mapping[str, Any]) -> Level:
    if not isinstance(raw, Mapping):
        raise ParameterError(f"runbook.yaml severity.{level.name}: expected a mapping")
    known = {f.name for f in dataclasses.fields(Level)} - {"name"}
    unknown = set(raw) - known
    if unknown:
        raise ParameterError(f"runbook.yaml severity.{level.name}: unknown field(s) "
                             f"{', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
    changes: dict[str, Any] = {}
    try:
        for key, value in raw.items():
            if key in _NUMBERS:
                changes[key] = None if value is None else float(value)
            elif key == "escalation":
                changes[key] = tuple(Step(str(s["role"]), float(s["after"])) for s in value)
            elif key == "immediate_actions":
                changes[key] = tuple(Action(str(a["key"]), str(a["text"])) for a in value)
            elif key == "leadership":
                changes[key] = bool(value)
            else:
                changes[key] = str(value)
    except (TypeError, ValueError, KeyError) as exc:
        raise ParameterError(f"runbook.yaml severity.{level.name}.{key}: cannot read {value!r} "
                             f"({type(exc).__name__}: {exc})") from None
    if changes.get("update_every", level.update_every) is None:
        raise ParameterError(f"runbook.yaml severity.{level.name}.update_every: a level needs a cadence")
    return dataclasses.replace(level, **changes)


def policy(overrides: Mapping[str, Any] | None = None) -> dict[str, Level]:
    """The policy: defaults with `overrides` (default: runbook.yaml's `severity`) applied."""
    if overrides is None:
        from runbook_kit import settings

        overrides = settings.get().severity
    levels = dict(DEFAULT_POLICY)
    for name, raw in (overrides or {}).items():
        if name not in levels:
            raise ParameterError(f"runbook.yaml severity: unknown level {name!r} "
                                 f"(levels: {', '.join(LEVELS)})")
        levels[name] = _override(levels[name], raw)
    return levels


def contact(role: str, contacts: Mapping[str, Any] | None = None) -> str:
    """'Bo Chen (team_lead, slack U02BO)', or a line saying the role has no configured contact."""
    if contacts is None:
        from runbook_kit import settings

        contacts = settings.get().contacts
    who = contacts.get(role)
    if not who:
        return f"{role} (no contact configured: contacts.{role} in runbook.yaml)"
    if isinstance(who, str):
        return f"{who} ({role})"
    ids = ", ".join(f"{k} {v}" for k, v in who.items() if k != "name" and v)
    return f"{who.get('name', role)} ({role}{', ' + ids if ids else ''})"
