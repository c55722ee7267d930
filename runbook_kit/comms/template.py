"""The communication template, rendered from the incident (one source for Slack and the status page).

    Severity: P1 — major degradation, multiple customers
    Status: IDENTIFIED
    Impact: card payments fail for about 30% of checkouts
    Started At: 2026-11-30 09:12 UTC
    Services Affected: payments/api
    Current Action: rolling back deployment/api to revision 2
    Next update in: 30 minutes

The internal update carries every field; the status page is public, so it gets only what customers
need (status, impact, services, next update) and never the current technical action.
"""

from __future__ import annotations

import datetime as dt

from runbook_kit import severity as sev
from runbook_kit.incident import Incident

__all__ = ["header", "public_update", "render"]

ICONS = {"P0": "🔴", "P1": "🟠", "P2": "🟡", "P3": "🔵"}


def _next_update(incident: Incident, level: sev.Level) -> str:
    if not incident.is_open:
        return "none (resolved)"
    return f"{level.update_every:g} minutes"


def render(incident: Incident, *, level: sev.Level | None = None) -> str:
    """The internal update: every field of the template."""
    level = level or sev.policy()[incident.severity]
    lines = [
        f"{ICONS.get(incident.severity, '•')} *{incident.id}: {incident.title}*",
        f"Severity: {incident.severity} — {level.description}",
        f"Status: {incident.status.upper()}",
        f"Impact: {incident.impact or '(not assessed yet)'}",
        f"Started At: {incident.started:%Y-%m-%d %H:%M} UTC",
        f"Services Affected: {', '.join(incident.services) or '(not known yet)'}",
        f"Current Action: {incident.current_action or '(none)'}",
        f"Next update in: {_next_update(incident, level)}",
    ]
    return "\n".join(lines)


def header(incident: Incident, *, now: dt.datetime) -> str:
    """The one-line status at the top of the incident thread, kept current with chat.update."""
    who = f" · IC {incident.commander}" if incident.commander else ""
    return (f"{ICONS.get(incident.severity, '•')} {incident.severity} · {incident.status.upper()} · "
            f"{incident.id}: {incident.title} · started {incident.started:%H:%M} UTC{who} · "
            f"updated {now:%H:%M} UTC")


def public_update(incident: Incident, *, level: sev.Level | None = None) -> str:
    """What the status page says: no internal detail."""
    level = level or sev.policy()[incident.severity]
    parts = [incident.impact or "We are investigating reports of degraded service."]
    if incident.services:
        parts.append(f"Affected: {', '.join(incident.services)}.")
    if incident.is_open:
        parts.append(f"Next update in {level.statuspage_every or level.update_every:g} minutes.")
    return " ".join(parts)
