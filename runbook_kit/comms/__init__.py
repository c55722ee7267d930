"""Telling people: the incident thread (sent), the status page and pages (guarded), leadership DMs.

Every function takes the incident id, posts or plans, and records what it did as a timeline event —
`update` (the template, posted), `message` (other posts), `statuspage` / `page` with the guard's
outcome and the command — so the postmortem can say who was told what, when. Every text is redacted
like a record before it leaves the process. A message that cannot be sent does not undo what the
command did: it becomes a `failed` event and a warning (the caller exits 3).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from runbook_kit import incident as inc
from runbook_kit import severity as sev
from runbook_kit.comms import external, slack, template
from runbook_kit.errors import ParameterError, RunbookError
from runbook_kit.guard import apply
from runbook_kit.redact import Redactor
from runbook_kit.store import Store

__all__ = ["LEADERSHIP", "Outcome", "page", "post_to_thread", "post_update", "run_summary", "statuspage"]

LEADERSHIP = {"P0": ("vp_engineering", "cto"), "P1": ("engineering_manager",)}

Outcome = tuple[str, str]  # (channel, "sent" | "dry-run" | "skipped: why" | "failed: why")


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.UTC)


def _comms(comms: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if comms is None:
        from runbook_kit import settings

        comms = settings.get().comms
    return comms


def _thread(incident: inc.Incident, *, comms: Mapping[str, Any], client: Any | None,
            store: Store | str | None, now: dt.datetime) -> slack.SlackThread:
    """The incident's thread, started (and remembered in its state) on first use."""
    state = incident.comms.get("slack") or {}
    client = client or slack.web_client(comms=comms)
    channel = str(state.get("channel") or (comms.get("slack") or {}).get("channel") or "")
    if not channel:
        raise ParameterError("no Slack channel configured (comms.slack.channel in runbook.yaml)")
    thread = slack.SlackThread(channel=channel, ts=state.get("ts"), client=client)
    if thread.ts is None:
        thread.start(template.header(incident, now=now))
        inc.update(incident.id, comms={"slack": {"channel": thread.channel, "ts": thread.ts}},
                   store=store, now=now)
    return thread


def post_to_thread(incident_id: str, text: str, *, kind: str = "message", what: str = "",
                   store: Store | str | None = None, comms: Mapping[str, Any] | None = None,
                   client: Any | None = None, redactor: Redactor | None = None,
                   now: dt.datetime | None = None, **details: Any) -> Outcome:
    """Post `text` to the incident thread and refresh its header; record it as a `kind` event.

    `what` names the message in the timeline ("update (IDENTIFIED)"); default: its first line. With no
    Slack configured the message is `shown` (the command prints it for a person to post).
    """
    now, comms = _now(now), _comms(comms)
    text = (redactor or Redactor.from_environment()).text(text)
    what = what or (text.strip().splitlines()[0][:120] if text.strip() else kind)
    incident = inc.load(incident_id, store=store)
    if client is None and not slack.configured(comms):
        inc.add_event(incident_id, kind, f"{what}: shown, not posted (no Slack channel configured)",
                      store=store, at=now, outcome="shown", body=text, **details)
        return ("slack", "not configured (comms.slack in runbook.yaml): post the text below yourself")
    try:
        thread = _thread(incident, comms=comms, client=client, store=store, now=now)
        thread.reply(text)
        thread.set_header(template.header(inc.load(incident_id, store=store), now=now))
    except RunbookError as exc:
        inc.add_event(incident_id, kind, f"{what}: NOT posted: {exc}", store=store, at=now,
                      outcome="failed", body=text, **details)
        return ("slack", f"failed: {exc}")
    inc.add_event(incident_id, kind, f"{what}: posted to the incident thread", store=store, at=now,
                  outcome="sent", channel=thread.channel, thread_ts=thread.ts, body=text, **details)
    return ("slack", "sent")


def post_update(incident_id: str, *, store: Store | str | None = None, comms: Mapping[str, Any] | None = None,
                client: Any | None = None, now: dt.datetime | None = None,
                contacts: Mapping[str, Any] | None = None) -> list[Outcome]:
    """The template to the thread (this is what resets the update clock), and to leadership (P0/P1)."""
    now, comms = _now(now), _comms(comms)
    incident = inc.load(incident_id, store=store)
    text = template.render(incident)
    outcomes = [post_to_thread(incident_id, text, kind="update", what=f"update ({incident.status.upper()})",
                               store=store, comms=comms, client=client, now=now, status=incident.status)]
    level = sev.policy()[incident.severity]
    if level.leadership and outcomes[0][1] == "sent":
        if contacts is None:
            from runbook_kit import settings

            contacts = settings.get().contacts
        roles = (comms.get("leadership") or {}).get(incident.severity, LEADERSHIP.get(incident.severity, ()))
        for role in roles:
            who = contacts.get(role) or {}
            user = who.get("slack") if isinstance(who, Mapping) else None
            if not user:
                outcomes.append((f"leadership:{role}", f"skipped: no contacts.{role}.slack configured"))
                continue
            try:
                thread = _thread(inc.load(incident_id, store=store), comms=comms, client=client, store=store,
                                 now=now)
                thread.direct(user, Redactor.from_environment().text(text))
            except RunbookError as exc:
                outcomes.append((f"leadership:{role}", f"failed: {exc}"))
                continue
            inc.add_event(incident_id, "message", f"update sent to {sev.contact(role, contacts)}",
                          store=store, at=now, audience="leadership", role=role, outcome="sent")
            outcomes.append((f"leadership:{role}", "sent"))
    return outcomes


def _guarded(incident_id: str, kind: str, plan: Any, *, send: bool, store: Store | str | None,
             now: dt.datetime) -> Outcome:
    try:
        result = apply(plan, dry_run=not send)
    except RunbookError as exc:
        inc.add_event(incident_id, kind, f"{plan.action} FAILED: {exc}", store=store, at=now,
                      outcome="failed", command=plan.command)
        return (kind, f"failed: {exc}")
    verb = "sent" if result.applied else "shown, not sent (--send-external sends it)"
    inc.add_event(incident_id, kind, f"{plan.action} {verb}", store=store, at=now, outcome=result.outcome,
                  command=plan.command, body=plan.changes.get("body"))
    if result.applied and kind == "statuspage" and isinstance(result.response, Mapping):
        inc.update(incident_id, comms={"statuspage": {"id": result.response.get("id")}}, store=store, now=now)
    return (kind, "sent" if result.applied else "dry-run")


def statuspage(incident_id: str, *, send: bool = False, store: Store | str | None = None,
               comms: Mapping[str, Any] | None = None, now: dt.datetime | None = None) -> Outcome:
    """Plan the status-page update from the template's public part; send only if `send`."""
    now, comms = _now(now), _comms(comms)
    if not (comms.get("statuspage") or {}).get("page_id"):
        return ("statuspage", "skipped: no status page configured (comms.statuspage.page_id)")
    incident = inc.load(incident_id, store=store)
    body = Redactor.from_environment().text(template.public_update(incident))
    plan = external.plan_statuspage_update(incident, body=body, comms=comms)
    send = send or external.send_configured("statuspage", comms)
    return _guarded(incident_id, "statuspage", plan, send=send, store=store, now=now)


def page(incident_id: str, *, action: str = "trigger", send: bool = False, store: Store | str | None = None,
         comms: Mapping[str, Any] | None = None, now: dt.datetime | None = None) -> Outcome:
    """Plan a PagerDuty event for the incident (dedup key = incident id); send only if `send`."""
    now, comms = _now(now), _comms(comms)
    incident = inc.load(incident_id, store=store)
    plan = external.plan_page(incident, action=action, comms=comms,
                              summary=Redactor.from_environment().text(f"{incident.severity} {incident.id}: "
                                                                       f"{incident.title}"))
    send = send or external.send_configured("pagerduty", comms)
    return _guarded(incident_id, "page", plan, send=send, store=store, now=now)


def run_summary(result: Any, *, store: Store | str | None = None, redactor: Redactor | None = None,
                comms: Mapping[str, Any] | None = None, client: Any | None = None) -> Outcome | None:
    """A finished run's one-line summary and record link, to its incident's thread (if it is open)."""
    try:
        incident = inc.load(result.incident, store=store)
    except RunbookError:
        return None  # an ad-hoc run, or an incident never opened: nothing to tell
    if not incident.is_open or (client is None and not slack.configured(_comms(comms))):
        return None  # the run's start, findings and finish are in the timeline already
    findings = [e for e in result.entries if e.kind == "finding"]
    actions = [e for e in result.entries if e.kind == "action"]
    top = max(findings, key=lambda e: ("info", "low", "medium", "high", "critical").index(e.severity)
              if e.severity in ("info", "low", "medium", "high", "critical") else 0, default=None)
    text = (f"runbook `{result.runbook}` {result.status}: {len(findings)} finding(s), "
            f"{len(actions)} action(s)"
            + (f" — {top.title}" if top else "") + f"\nrecord: {result.html_path or result.notebook_path}")
    return post_to_thread(result.incident, text, store=store, comms=comms, client=client, redactor=redactor,
                          runbook=result.runbook, notebook=result.notebook_path)
