"""The postmortem draft: `<store>/<incident>/postmortem.md` and a self-contained `postmortem.html`.

Everything a machine knows is filled in from the incident's own data — duration and timeline from the
recorded events (UTC, with dates when the incident spans days), the root cause drafted from the
high/critical findings of the runs (each linked to the record cell that shows it, and marked
confirmed when a later run recorded `verdict: resolved`, as verify_resolution does), the resolution
from the actions actually applied with their commands, every executed record linked (`.ipynb` and
`.html`). What only people can write is left as marked prompts between `<!-- human:NAME -->` and
`<!-- /human:NAME -->`; running the command again keeps whatever a person already wrote there, and
refreshes the rest.

Run data reaches the HTML only through markdown-it with raw HTML disabled, so a finding titled
`<script>` is text; the text is redacted like a record. Reading a record notebook (to find a
finding's cell) happens only for the few root-cause findings, so 200 runs draft in milliseconds.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from collections.abc import Mapping
from typing import Any

from runbook_kit import incident as inc
from runbook_kit.record import MIME
from runbook_kit.redact import Redactor
from runbook_kit.store import Store, open_store

__all__ = ["HUMAN_SECTIONS", "render_html", "render_markdown", "write_postmortem"]

HUMAN_SECTIONS = {
    "commander": "_Who led the response?_",
    "revenue": "_Revenue impact: estimate, or “none”._",
    "users": "_Users affected: how many, which segment?_",
    "root_cause_review": "_Confirm or correct the drafted root cause: why did it happen, and why then?_",
    "went_well": "_What went well? (detection, tooling, people, communication)_",
    "improve": "_What could be improved?_",
    "action_items": ("| action | owner | deadline | status |\n|---|---|---|---|\n"
                     "| _e.g. alert on memory limit changes_ | _name_ | _YYYY-MM-DD_ | open |"),
    "lessons": "_Lessons learned._",
}
_HUMAN = re.compile(r"<!-- human:(\w+) -->\n(.*?)\n<!-- /human:\1 -->", re.S)
_RANK = {"critical": 0, "high": 1}


def _human(name: str, kept: Mapping[str, str]) -> str:
    return f"<!-- human:{name} -->\n{kept.get(name, HUMAN_SECTIONS[name])}\n<!-- /human:{name} -->"


def _kept(existing: str | None) -> dict[str, str]:
    """What people wrote in the human sections of an earlier draft (prompts left as they were)."""
    if not existing:
        return {}
    return {name: body for name, body in _HUMAN.findall(existing)
            if name in HUMAN_SECTIONS and body.strip() != HUMAN_SECTIONS[name].strip()}


def _duration(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    return (f"{days} d " if days else "") + f"{rest // 60} h {rest % 60:02d} min"


def _code(text: str) -> str:
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}" if fence == "`" else f"`` {text} ``"


def _link(label: str, url: str | None) -> str:
    return f"[{label}](<{url}>)" if url else label


def _cell_anchor(store: Store, run: Mapping[str, Any], entry: Mapping[str, Any]) -> str | None:
    """The record cell that shows `entry`: `<record>.html#cell-id=<id>` (nbconvert's anchors)."""
    notebook = run.get("notebook") or ""
    base = store.url("x")[:-1]
    if not notebook.startswith(base):
        return None
    try:
        raw = store.read(notebook[len(base):])
    except Exception:  # a record that cannot be read is a gap in the links, not a failed draft
        return None
    if not raw:
        return None
    for index, cell in enumerate(json.loads(raw).get("cells", [])):
        for output in cell.get("outputs") or []:
            data = (output.get("data") or {}).get(MIME)
            if isinstance(data, str):
                data = json.loads(data)
            if isinstance(data, dict) and data.get("title") == entry.get("title") and \
                    data.get("ts") == entry.get("ts"):
                target = run.get("html") or notebook
                return f"{target}#cell-id={cell['id']}" if cell.get("id") else f"{target}#cell-{index}"
    return None


def _root_causes(incident: inc.Incident, store: Store) -> list[str]:
    # a verification run may complete with gaps outside its checks (e.g. no metrics-server for `top`):
    # its verdict, which turns "not verified" when a check itself was a gap, is what counts
    verified = [r for r in incident.runs if r.get("status") in ("succeeded", "completed-with-gaps") and any(
        str(f.get("title", "")).startswith("verdict: resolved") for f in r.get("findings") or ())]
    seen: dict[str, str] = {}
    candidates = []
    for run in incident.runs:
        for entry in run.get("findings") or ():
            # triage's assessment and verification's verdict describe the incident, not its cause
            if (entry.get("details") or {}).get("role") in ("assessment", "verdict", "gap"):
                continue
            if entry.get("severity") in _RANK and entry.get("title") not in seen:
                seen[entry["title"]] = ""
                candidates.append((_RANK[entry["severity"]], entry.get("ts", ""), run, entry))
    lines = []
    for _, ts, run, entry in sorted(candidates, key=lambda c: (c[0], c[1])):
        proof = _cell_anchor(store, run, entry) or run.get("html") or run.get("notebook")
        later = [v for v in verified if v.get("started", "") > ts]
        status = "not yet confirmed by a verification run"
        if later:
            proof_run = later[0].get("html") or later[0].get("notebook")
            status = f"confirmed: {_link('verification passed', proof_run)}"
        lines.append(f"- **{entry['title']}** ({entry['severity']}; {run.get('runbook')}, "
                     f"{_link('record cell', proof)}; {status})")
    return lines or ["- _No high or critical finding was recorded: write the root cause below._"]


def render_markdown(incident: inc.Incident, *, store: Store, now: dt.datetime,
                    existing: str | None = None) -> str:
    kept = _kept(existing)
    events = inc.timeline(incident)
    end = incident.resolved or now
    spans_days = incident.started.date() != end.date()
    date = f"{incident.started:%Y-%m-%d}" + (f" – {end:%Y-%m-%d}" if spans_days else "")
    duration = _duration(incident.duration(now)) + ("" if incident.resolved else " (not resolved yet)")
    out = [
        f"# Postmortem: {incident.title}", "",
        f"- **Incident**: {incident.id}",
        f"- **Date**: {date} (UTC)",
        f"- **Duration**: {duration} — {incident.started:%Y-%m-%d %H:%M} → "
        + (f"{incident.resolved:%Y-%m-%d %H:%M} UTC" if incident.resolved else "ongoing"),
        f"- **Severity**: {incident.severity}",
        "- **Incident commander**: " + (incident.commander or "see below"), "",
    ]
    if not incident.commander:
        out += [_human("commander", kept), ""]
    out += ["## Impact", "",
            f"- **Customer impact**: {incident.impact or '_not recorded_'}",
            f"- **Services affected**: {', '.join(incident.services) or '_not recorded_'}",
            "- **Revenue impact**:", "", _human("revenue", kept), "",
            "- **Users affected**:", "", _human("users", kept), "",
            "## Timeline (UTC)", ""]
    out += [f"- {e.line(with_date=spans_days)}" for e in events if e.kind != "finding"
            or e.details.get("entry", {}).get("severity") in _RANK
            or str(e.details.get("entry", {}).get("title", "")).startswith("verdict:")] or ["- _no events_"]
    out += ["", "## Root cause (draft from the records)", ""]
    out += _root_causes(incident, store)
    out += ["", _human("root_cause_review", kept), "", "## Resolution", ""]
    applied = [e for e in events
               if e.kind == "action" and e.details.get("entry", {}).get("outcome") == "applied"]
    for e in applied:
        entry, run = e.details["entry"], e.details["run"]
        out.append(f"- {e.ts:%H:%M} {entry.get('title')}: {_code(entry.get('command') or '(no command)')} "
                   f"({_link('record', run.get('html') or run.get('notebook'))})")
    resolved = [e for e in events if e.kind == "resolved"]
    if resolved:
        out.append(f"- {resolved[-1].ts:%H:%M} {resolved[-1].text}")
    if not applied and not resolved:
        out.append("- _No change was applied through a runbook and the incident is not resolved._")
    out += ["", "## What went well", "", _human("went_well", kept), "",
            "## What could be improved", "", _human("improve", kept), "",
            "## Action items", "", _human("action_items", kept), "",
            "## Lessons learned", "", _human("lessons", kept), "",
            "## Records", ""]
    out += [f"- {r.get('started', '')[:19].replace('T', ' ')} `{r.get('runbook')}` — {r.get('status')}: "
            f"{_link('notebook', r.get('notebook'))} · {_link('html', r.get('html'))}"
            for r in incident.runs] or ["- _no runbook was run_"]
    out += ["", f"_Drafted by `runbook incident postmortem {incident.id}` at {now:%Y-%m-%d %H:%M} UTC; "
                "sections between `human` markers are kept when it is run again._", ""]
    return "\n".join(out)


def render_html(markdown: str, *, title: str) -> str:
    """Self-contained HTML: raw HTML in the text is escaped, not rendered; no external assets.

    The timeline (most of the text for a long incident: 200 runs are ~1,000 lines) is plain lines,
    escaped directly; markdown-it renders the rest (links, tables, what people wrote).
    """
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    text = re.sub(r"^<!-- /?human:\w+ -->\n", "", markdown, flags=re.M)
    head, found, rest = text.partition("\n## Timeline (UTC)\n")
    if found:
        timeline, _, tail = rest.partition("\n## Root cause")
        items = "".join(f"<li>{html.escape(line[2:])}</li>" for line in timeline.strip().splitlines()
                        if line.startswith("- "))
        body = (parser.render(head) + f"<h2>Timeline (UTC)</h2><ul>{items}</ul>"
                + parser.render("## Root cause" + tail))
    else:
        body = parser.render(text)
    style = ("body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;line-height:1.45}"
             "code{background:#f3f3f3;padding:0 .2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:.2em .5em}em{color:#8a5a00}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{body}</body></html>")


def write_postmortem(incident_id: str, *, store: Store | str | None = None,
                     now: dt.datetime | None = None) -> tuple[str, str]:
    """Write (or refresh) postmortem.md and postmortem.html; returns their locations."""
    st = store if store is not None and not isinstance(store, str) else open_store(store)
    now = now or dt.datetime.now(dt.UTC)
    incident = inc.load(incident_id, store=st)
    existing = st.read(f"{incident.id}/postmortem.md")
    redactor = Redactor.from_environment()
    text = redactor.text(render_markdown(incident, store=st, now=now,
                                         existing=existing.decode() if existing else None))
    md = st.write(f"{incident.id}/postmortem.md", text.encode())
    page = st.write(f"{incident.id}/postmortem.html",
                    render_html(text, title=f"Postmortem: {incident.title}").encode())
    return md, page
