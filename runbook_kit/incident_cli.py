"""`runbook incident …`: open, status, update, note, resolve, list, postmortem.

The incident id goes to stdout (scripts capture it); what was posted, shown or is due goes to stderr.
Exit codes: 0 done; 2 bad input (unknown incident, severity or status); 3 done and recorded, but a
message could not be sent (the failure is in the timeline). Messages to the team's Slack thread are
sent; the status page and PagerDuty are shown and recorded as dry runs unless `--send-external` (or
`send: true` in runbook.yaml's comms section).
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterable
from typing import NoReturn

import click

from runbook_kit.errors import RunbookError

__all__ = ["incident"]

_STORE = click.option("--store", help="A folder or s3://bucket/prefix (default $RUNBOOK_STORE, ./incidents).")
_SEND = click.option("--send-external", is_flag=True,
                     help="Send the status-page update and the page (default: shown and recorded only).")


def fail(message: str, code: int = 2) -> NoReturn:
    """As runbook_kit.cli.fail (not imported: `python -m runbook_kit.cli` would import it twice)."""
    click.echo(f"runbook: {message}", err=True)
    sys.exit(code)


def _outcomes(outcomes: Iterable[tuple[str, str] | None]) -> int:
    code = 0
    for item in outcomes:
        if item is None:
            continue
        channel, outcome = item
        click.echo(f"  {channel}: {outcome}", err=True)
        if outcome.startswith("failed"):
            code = 3
    return code


def _announce(incident_id: str, store: str | None, send: bool, *, page: str | None = None) -> int:
    from runbook_kit import comms
    from runbook_kit import incident as inc
    from runbook_kit import severity as sev

    outcomes: list[tuple[str, str] | None] = list(comms.post_update(incident_id, store=store))
    if outcomes[0] and outcomes[0][1].startswith("not configured"):
        from runbook_kit.comms import template
        from runbook_kit.redact import redact_text

        click.echo(redact_text(template.render(inc.load(incident_id, store=store))))
    level = sev.policy()[inc.load(incident_id, store=store).severity]
    if level.statuspage_every is not None:
        outcomes.append(comms.statuspage(incident_id, send=send, store=store))
    if page:
        outcomes.append(comms.page(incident_id, action=page, send=send, store=store))
    return _outcomes(outcomes)


@click.group()
def incident() -> None:
    """The incident around the runs: severity, timeline, updates, escalation, postmortem.

    \b
        runbook incident open --title "payments API failing" --severity P1 --service payments/api
        runbook incident status INC-20261130-091500
    """


@incident.command("open")
@click.option("--title", required=True, help="What is wrong, in one line.")
@click.option("--severity", required=True, help="P0, P1, P2 or P3 (runbook.yaml may redefine them).")
@click.option("--service", "services", multiple=True, help="An affected service (repeat).")
@click.option("--impact", default="", help="Who is affected and how.")
@click.option("--commander", help="The incident commander.")
@click.option("--started", help="When it started, ISO 8601 UTC (default: now); deadlines count from it.")
@click.option("--id", "incident_id", help="The incident id (default INC-<UTC date-time>).")
@_STORE
@_SEND
def open_(title: str, severity: str, services: tuple[str, ...], impact: str, commander: str | None,
          started: str | None, incident_id: str | None, store: str | None, send_external: bool) -> None:
    """Open an incident: record it, start its Slack thread, page (P0/P1) and plan the status page.

    \b
        runbook incident open --title "checkout 5xx" --severity P1 --service payments/api --id INC-42
    """
    from runbook_kit import incident as inc
    from runbook_kit import severity as sev

    try:
        opened = inc.open_incident(title=title, severity=severity, incident_id=incident_id, services=services,
                                   impact=impact, commander=commander, started=started, store=store)
        level = sev.policy()[opened.severity]
        code = _announce(opened.id, store, send_external, page="trigger" if level.leadership else None)
    except RunbookError as exc:
        fail(str(exc))
    click.echo(opened.id)
    sys.exit(code)


@incident.command()
@click.argument("incident_id")
@_STORE
def status(incident_id: str, store: str | None) -> None:
    """Show the incident and what is due now: overdue updates, escalation, immediate actions.

    \b
        runbook incident status INC-42
    """
    from runbook_kit import incident as inc

    try:
        current = inc.load(incident_id, store=store)
        now = dt.datetime.now(dt.UTC)
        due = inc.due(current, now=now)
    except RunbookError as exc:
        fail(str(exc))
    minutes = int(current.duration(now).total_seconds() // 60)
    click.echo(f"{current.id}: {current.title}\n  {current.severity} · {current.status.upper()} · "
               f"started {current.started:%Y-%m-%d %H:%M} UTC ({minutes} min)"
               + (f" · resolved {current.resolved:%H:%M} UTC" if current.resolved else ""))
    click.echo(f"  services: {', '.join(current.services) or '-'} · impact: {current.impact or '-'} · "
               f"commander: {current.commander or '-'}")
    click.echo(f"  runs: {len(current.runs)} · events: {len(current.events)}")
    if current.is_open:
        click.echo("Due now:")
        for line in due.lines():
            click.echo(f"  {line}")


@incident.command()
@click.argument("incident_id")
@click.option("--status", "new_status", help="investigating, identified, monitoring or resolved.")
@click.option("--severity", help="A new severity (the cadence and escalation follow it).")
@click.option("--impact", help="Who is affected and how.")
@click.option("--action", "current_action", help="What is being done now.")
@click.option("--commander", help="The incident commander.")
@click.option("--service", "services", multiple=True, help="The affected services (replaces the list).")
@_STORE
@_SEND
def update(incident_id: str, new_status: str | None, severity: str | None, impact: str | None,
           current_action: str | None, commander: str | None, services: tuple[str, ...], store: str | None,
           send_external: bool) -> None:
    """Change the incident and post the update template to its thread (and plan the status page).

    \b
        runbook incident update INC-42 --status identified --action "rolling back deployment/api"
    """
    from runbook_kit import incident as inc

    try:
        inc.update(incident_id, status=new_status, severity=severity, impact=impact,
                   current_action=current_action, commander=commander, services=services or None,
                   store=store)
        code = _announce(incident_id, store, send_external)
    except RunbookError as exc:
        fail(str(exc))
    sys.exit(code)


@incident.command()
@click.argument("incident_id")
@click.argument("text", required=False, default="")
@click.option("--done", "done", multiple=True, help="An immediate action done (its key, from `status`).")
@click.option("--escalated", "escalated", multiple=True, help="A role escalated to (team_lead, cto, …).")
@_STORE
def note(incident_id: str, text: str, done: tuple[str, ...], escalated: tuple[str, ...],
         store: str | None) -> None:
    """Add a note to the timeline; mark immediate actions done and escalations made.

    \b
        runbook incident note INC-42 "customer support informed" --done notify_team_lead
        runbook incident note INC-42 --escalated engineering_manager
    """
    from runbook_kit import incident as inc
    from runbook_kit import settings
    from runbook_kit import severity as sev

    if not (text or done or escalated):
        fail("nothing to note: give a TEXT, --done KEY or --escalated ROLE")
    try:
        current = inc.load(incident_id, store=store)
        levels = sev.policy()
        keys = {a.key for a in levels[current.severity].immediate_actions}
        roles = {s.role for lv in levels.values() for s in lv.escalation} | set(settings.get().contacts)
        for key in done:
            if key not in keys:
                fail(f"--done {key}: not an immediate action of {current.severity} "
                     f"(one of: {', '.join(sorted(keys))})")
        for role in escalated:
            if role not in roles:
                fail(f"--escalated {role}: not a role of the escalation paths or contacts "
                     f"(one of: {', '.join(sorted(roles))})")
        if text:
            inc.add_event(incident_id, "note", text, store=store)
        for key in done:
            inc.add_event(incident_id, "done", f"done: {key}", store=store, action=key)
        for role in escalated:
            inc.add_event(incident_id, "escalated", f"escalated to {role}", store=store, role=role)
    except RunbookError as exc:
        fail(str(exc))


@incident.command()
@click.argument("incident_id")
@click.option("--summary", default="", help="How it was resolved, in one line.")
@_STORE
@_SEND
def resolve(incident_id: str, summary: str, store: str | None, send_external: bool) -> None:
    """Resolve: record it, post RESOLVED to the thread, plan the status page and the page's resolve.

    \b
        runbook incident resolve INC-42 --summary "rolled back to revision 2"
    """
    from runbook_kit import incident as inc

    try:
        current = inc.load(incident_id, store=store)
        inc.resolve(incident_id, summary=summary, store=store)
        paged = any(e.get("kind") == "page" for e in current.events)
        code = _announce(incident_id, store, send_external, page="resolve" if paged else None)
    except RunbookError as exc:
        fail(str(exc))
    sys.exit(code)


@incident.command("list")
@click.option("--all", "show_all", is_flag=True, help="Resolved incidents too.")
@_STORE
def list_(show_all: bool, store: str | None) -> None:
    """List incidents, newest first (open ones unless --all).

    \b
        runbook incident list --all
    """
    from runbook_kit import incident as inc

    try:
        found = inc.list_incidents(store=store)
    except RunbookError as exc:
        fail(str(exc))
    for item in found:
        if item.is_open or show_all:
            click.echo(f"{item.id}  {item.severity}  {item.status:<13} {item.started:%Y-%m-%d %H:%M}  "
                       f"{item.title}")




@incident.command()
@click.argument("incident_id")
@_STORE
def postmortem(incident_id: str, store: str | None) -> None:
    """Draft postmortem.md and postmortem.html from the incident's timeline and records.

    Sections only people can write are marked prompts; running it again keeps what was written there.

    \b
        runbook incident postmortem INC-42
    """
    from runbook_kit.postmortem import write_postmortem

    try:
        md, page = write_postmortem(incident_id, store=store)
    except RunbookError as exc:
        fail(str(exc))
    click.echo(md)
    click.echo(page)
