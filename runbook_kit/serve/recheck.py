"""Is the alert still firing? Asked right before a run that may change systems starts.

A route with `mutate: true` gets its change only when the sender confirms the alert still fires:
Alertmanager's API (`GET /api/v2/alerts?active=true&filter=alertname="…"`, the fingerprint among the
answers, on any of `sources.alertmanager.api_urls`) or CloudWatch `DescribeAlarms` (StateValue ALARM).
The answer is one of:

    True    still firing: the run may change systems
    False   no longer firing: the run is cancelled
    None    cannot tell (no API configured, unreachable, another source): the run goes ahead as a
            dry run, and says why; a mutation never runs on evidence it lacks
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

__all__ = ["still_firing"]


def _alertmanager(alert: Mapping[str, Any], config: Mapping[str, Any]) -> tuple[bool | None, str]:
    urls = config.get("api_urls") or []
    if not urls:
        return None, "no sources.alertmanager.api_urls to re-check the alert"
    labels = json.loads(alert["labels"]) if isinstance(alert["labels"], str) else alert["labels"]
    name = labels.get("alertname", "").replace("\\", "\\\\").replace('"', '\\"')
    query = urllib.parse.urlencode(
        {"active": "true", "silenced": "false", "inhibited": "false", "filter": f'alertname="{name}"'}
    )
    errors = []
    for base in urls:
        try:
            url = f"{base.rstrip('/')}/api/v2/alerts?{query}"
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - from the config
                answer = json.loads(response.read(10 << 20))
        except (OSError, ValueError) as exc:
            errors.append(f"{base}: {str(exc)[:80]}")
            continue
        firing = any(isinstance(a, dict) and a.get("fingerprint") == alert["fingerprint"] for a in answer)
        return firing, f"{base} says the alert is {'still firing' if firing else 'no longer active'}"
    return None, "cannot reach Alertmanager to re-check the alert: " + "; ".join(errors)


def _cloudwatch(alert: Mapping[str, Any]) -> tuple[bool | None, str]:
    from runbook_kit import clients
    from runbook_kit.errors import RunbookError, backend_call

    labels = json.loads(alert["labels"]) if isinstance(alert["labels"], str) else alert["labels"]
    try:
        with backend_call("aws", "cloudwatch DescribeAlarms"):
            cw = clients.aws("cloudwatch", region=labels.get("region") or None)
            found = cw.describe_alarms(AlarmNames=[labels["alertname"]]).get("MetricAlarms", [])
    except RunbookError as exc:
        return None, f"cannot re-check the alarm: {exc}"
    if not found:
        return False, f"alarm {labels['alertname']!r} no longer exists"
    state = found[0].get("StateValue")
    return state == "ALARM", f"CloudWatch says alarm {labels['alertname']!r} is {state}"


def still_firing(
    alert: Mapping[str, Any], sources: Mapping[str, Mapping[str, Any]]
) -> tuple[bool | None, str]:
    """(verdict, why) for a stored alert row (see the module docstring)."""
    if alert["source"] == "alertmanager":
        return _alertmanager(alert, sources.get("alertmanager") or {})
    if alert["source"] == "sns":
        return _cloudwatch(alert)
    return None, f"alerts from {alert['source']} cannot be re-checked"
