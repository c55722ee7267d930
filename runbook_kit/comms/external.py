"""Messages to people outside the team — the status page and paging — as guard Plans.

A status-page update or a page is a change to a system other people read, so it takes the path of
every mutation: `plan_statuspage_update(...)` / `plan_page(...)` describe it (the request, and its
`curl` equivalent with the secret left as a variable) and `rk.apply(plan, dry_run=...)` sends it or
records it as a dry run. Sending needs `--send-external` or `send: true` in runbook.yaml:

    comms:
      statuspage: {page_id: kctbh9vrtdwd, key_env: STATUSPAGE_API_KEY, component_ids: [...], send: false}
      pagerduty: {routing_key_env: PAGERDUTY_ROUTING_KEY, send: false}

APIs: Atlassian Statuspage REST v1 (`POST|PATCH /v1/pages/{page}/incidents[/{id}]`, header
`Authorization: OAuth <key>`), PagerDuty Events API v2 (`POST /v2/enqueue`, the incident id as
`dedup_key`, so every page of one incident is one PagerDuty incident and `resolve` closes it).
`RUNBOOK_STATUSPAGE_API_URL` / `RUNBOOK_PAGERDUTY_API_URL` point them elsewhere (the sandbox).
"""

from __future__ import annotations

import json
import os
import shlex
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from runbook_kit.errors import ParameterError, translate
from runbook_kit.guard import Plan
from runbook_kit.incident import Incident

__all__ = ["plan_page", "plan_statuspage_update", "send_configured"]

STATUSPAGE_API = "https://api.statuspage.io"
PAGERDUTY_API = "https://events.pagerduty.com"
_PD_SEVERITY = {"P0": "critical", "P1": "error", "P2": "warning", "P3": "info"}


def _cfg(comms: Mapping[str, Any] | None, name: str) -> Mapping[str, Any]:
    if comms is None:
        from runbook_kit import settings

        comms = settings.get().comms
    return comms.get(name) or {}


def send_configured(name: str, comms: Mapping[str, Any] | None = None) -> bool:
    """Whether runbook.yaml says to send `statuspage` / `pagerduty` messages without a flag."""
    return bool(_cfg(comms, name).get("send"))


def _request(backend: str, op: str, method: str, url: str, body: Mapping[str, Any],
             headers: Mapping[str, str]) -> Any:
    if not url.startswith(("https://", "http://")):
        raise ParameterError(f"{backend}: API URL must be http(s), not {url!r}")
    req = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url, data=json.dumps(body).encode(), method=method,
        headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:  # noqa: S310 (https or the sandbox)
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        try:  # Statuspage {"error": ...}, PagerDuty {"message": ..., "errors": [...]}
            parsed = json.loads(detail)
            detail = "; ".join(str(x) for x in [parsed.get("error") or parsed.get("message"),
                                                *(parsed.get("errors") or [])] if x)
        except (ValueError, AttributeError):
            pass
        err = translate(_HTTPStatus(exc.code, detail), backend=backend, op=op)
        raise err from exc
    except (urllib.error.URLError, OSError) as exc:
        raise translate(exc.reason if isinstance(exc, urllib.error.URLError) and
                        isinstance(exc.reason, OSError) else exc, backend=backend, op=op) from exc
    return json.loads(raw) if raw else {}


class _HTTPStatus(Exception):
    """An HTTP error in the shape translate() reads (status, reason, body)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}")
        self.status, self.reason, self.body = status, f"HTTP {status}", body


def _curl(method: str, url: str, body: Mapping[str, Any], header: str) -> str:
    return (f"curl -X {method} {shlex.quote(url)} -H {shlex.quote(header)} "
            f"-H 'Content-Type: application/json' -d {shlex.quote(json.dumps(body))}")


def plan_statuspage_update(incident: Incident, *, body: str, status: str | None = None,
                           comms: Mapping[str, Any] | None = None) -> Plan:
    """Create the incident's status-page incident, or add an update to it. Touches nothing."""
    cfg = _cfg(comms, "statuspage")
    page = cfg.get("page_id")
    if not page:
        raise ParameterError("no status page configured (comms.statuspage.page_id in runbook.yaml)")
    key_env = cfg.get("key_env", "STATUSPAGE_API_KEY")
    base = (os.environ.get("RUNBOOK_STATUSPAGE_API_URL") or cfg.get("api_url") or STATUSPAGE_API).rstrip("/")
    existing = (incident.comms.get("statuspage") or {}).get("id")
    sp_status = status or incident.status
    payload: dict[str, Any] = {"incident": {"status": sp_status, "body": body}}
    if existing:
        method, url = "PATCH", f"{base}/v1/pages/{page}/incidents/{existing}"
    else:
        method, url = "POST", f"{base}/v1/pages/{page}/incidents"
        payload["incident"]["name"] = incident.title
        if cfg.get("component_ids"):
            payload["incident"]["component_ids"] = list(cfg["component_ids"])

    def execute(dry_run: bool) -> Any:
        key = os.environ.get(key_env)
        if not key:
            raise ParameterError(f"no Statuspage API key: set ${key_env}")
        return _request("statuspage", "incident update", method, url, payload,
                        {"Authorization": f"OAuth {key}"})

    return Plan(action="status page update", target=f"status page {page}, incident {existing or '(new)'}",
                backend="statuspage", command=_curl(method, url, payload, f"Authorization: OAuth ${key_env}"),
                execute=execute, changes={"status": sp_status, "body": body}, targets=(f"page/{page}",),
                max_targets=1, reason="external communication: customers read the status page",
                undo="post a correcting update (a published update cannot be withdrawn)")


def plan_page(incident: Incident, *, action: str = "trigger", summary: str | None = None,
              comms: Mapping[str, Any] | None = None) -> Plan:
    """Page (or resolve the page of) the on-call through PagerDuty Events v2. Touches nothing."""
    if action not in ("trigger", "acknowledge", "resolve"):
        raise ParameterError(f"PagerDuty event_action {action!r}: use trigger, acknowledge or resolve")
    cfg = _cfg(comms, "pagerduty")
    key_env = cfg.get("routing_key_env", "PAGERDUTY_ROUTING_KEY")
    base = (os.environ.get("RUNBOOK_PAGERDUTY_API_URL") or cfg.get("api_url") or PAGERDUTY_API).rstrip("/")
    url = f"{base}/v2/enqueue"
    event: dict[str, Any] = {"event_action": action, "dedup_key": incident.id}
    if action == "trigger":
        title = summary or f"{incident.severity} {incident.id}: {incident.title}"
        event["payload"] = {"summary": title[:1024],
                            "source": ", ".join(incident.services) or "runbook_kit",
                            "severity": _PD_SEVERITY.get(incident.severity, "error"),
                            "custom_details": {"impact": incident.impact, "status": incident.status}}
    shown = {"routing_key": f"${key_env}", **event}

    def execute(dry_run: bool) -> Any:
        key = os.environ.get(key_env)
        if not key:
            raise ParameterError(f"no PagerDuty routing key: set ${key_env}")
        return _request("pagerduty", f"{action} event", "POST", url, {"routing_key": key, **event}, {})

    return Plan(action=f"page ({action})", target=f"PagerDuty, dedup key {incident.id}", backend="pagerduty",
                command=_curl("POST", url, shown, "Accept: application/json"), execute=execute,
                changes={"event_action": action, "dedup": incident.id}, targets=(incident.id,),
                max_targets=1, reason="pages people outside this session",
                undo=f"runbook incident resolve {incident.id} --send-external (resolves the page)")
