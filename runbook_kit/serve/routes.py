"""Routes: which runbook an alert runs, with which parameters, in which incident, and whether it may mutate.

    routes:
      - name: crashloop
        match: {alertname: KubePodCrashLooping}          # label equals value (all must hold)
        match_re: {severity: "critical|page"}            # label fully matches the regex
        sources: [alertmanager]                          # optional; default: every source
        runbook: pod_crashloop
        parameters:
          namespace: "{labels.namespace}"
          deployment: "{labels.deployment}"
          verify_timeout_s: 120                          # literals are coerced at load
        incident: "alert-{labels.alertname}-{fingerprint}"   # default
        severity: {critical: P1, warning: P3}            # the alert's `severity` label → P0–P3, or a
                                                         # level ("P2"); default: DEFAULT_SEVERITY_MAP
        title: "{labels.alertname} in {labels.namespace}"    # the incident's title; default below
        mutate: false                                    # default: dry run, always
        cooldown: 900                                    # seconds; default 900

The first route that matches wins. Templates are plain text with `{labels.NAME}`, `{annotations.NAME}`,
`{fingerprint}`, `{source}`, `{status}` placeholders (`{{` and `}}` for braces) and nothing else: no
expressions, no attribute access, so an alert's labels are data and never code. The values rendered
from an alert are then validated and coerced exactly as `runbook run` does (params.validate), and
reach the kernel only through the parameters cell.

The incident a run belongs to is opened by the receiver (runbook_kit.serve.timeline) with the route's
severity: a fixed level, or the alert's `severity` label mapped to a level (a label value the map
does not name gets the map's `default`, P2 unless set). P0 is never inferred from a label by default:
a total outage is declared by a person or by a route that says so. The title defaults to the alert's
`summary` annotation, else its alertname and source.

At load, every parameter name must be declared by the runbook's parameters cell, literals are coerced
to the declared type, and `dry_run` cannot be set by a template: a route's `mutate` decides it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any

from runbook_kit import catalog, params
from runbook_kit import severity as sev
from runbook_kit.errors import RunbookError
from runbook_kit.serve.sources import AlertEvent

__all__ = ["ConfigError", "Route", "RouteError", "RunSpec", "load_routes", "match"]

DEFAULT_INCIDENT = "alert-{labels.alertname}-{fingerprint}"
DEFAULT_COOLDOWN = 900.0
# The alert's `severity` label → an incident level, when the route does not say otherwise. The label
# values are those of the kube-prometheus rules, Grafana's and PagerDuty's (critical/error/warning/info).
DEFAULT_SEVERITY_MAP = {
    "critical": "P1", "page": "P1", "high": "P2", "error": "P2", "major": "P2",
    "warning": "P3", "minor": "P3", "low": "P3", "info": "P3",
}
DEFAULT_SEVERITY = "P2"
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_FIELD = re.compile(rf"^(labels|annotations)\.({_NAME})$|^(fingerprint|source|status)$")
_INCIDENT_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


class ConfigError(RunbookError):
    """The receiver's configuration is wrong: one line naming the file, the route and the field."""


class RouteError(RunbookError):
    """An alert matched a route whose parameters cannot be built from it (a label is missing, a bad value)."""


@dataclasses.dataclass(frozen=True)
class Template:
    text: str
    parts: tuple[tuple[str, str | None], ...]  # (literal, field)

    @classmethod
    def parse(cls, text: str, where: str) -> Template:
        parts: list[tuple[str, str | None]] = []
        pos = 0
        for m in _PLACEHOLDER.finditer(text):
            literal = text[pos : m.start()]
            pos = m.end()
            token = m.group(0)
            if token in ("{{", "}}"):
                parts.append((literal + token[0], None))
                continue
            if m.group(1) is None:
                raise ConfigError(f"{where}: unbalanced brace in template {text!r} (use {{{{ or }}}})")
            field = m.group(1).strip()
            if not _FIELD.match(field):
                raise ConfigError(
                    f"{where}: unknown placeholder {{{field}}} in {text!r}; use "
                    "{labels.NAME}, {annotations.NAME}, {fingerprint}, {source} or {status}"
                )
            parts.append((literal, field))
        parts.append((text[pos:], None))
        return cls(text, tuple(parts))

    @property
    def fields(self) -> list[str]:
        return [f for _, f in self.parts if f]

    def render(self, event: AlertEvent) -> str:
        out = []
        for literal, field in self.parts:
            out.append(literal)
            if field is None:
                continue
            kind, _, name = field.partition(".")
            if kind in ("labels", "annotations"):
                values = event.labels if kind == "labels" else event.annotations
                if name not in values:
                    raise RouteError(f"the alert has no {kind[:-1]} {name!r}")
                out.append(values[name])
            else:
                out.append(
                    str(
                        getattr(
                            event,
                            {"fingerprint": "fingerprint", "source": "source", "status": "status"}[kind],
                        )
                    )
                )
        return "".join(out)


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """What one alert asks for: validated parameters, the incident, the per-target lock key."""

    route: str
    runbook: str
    parameters: dict[str, Any]
    incident: str
    mutate: bool
    target: str
    severity: str  # P0–P3: the level the incident is opened with
    title: str  # the incident's title when this run opens it


@dataclasses.dataclass(frozen=True)
class Severity:
    """A route's severity: a fixed level, or the alert's `severity` label through a map."""

    level: str | None
    mapping: Mapping[str, str]
    default: str

    def of(self, event: AlertEvent) -> str:
        if self.level is not None:
            return self.level
        return self.mapping.get(event.labels.get("severity", "").strip().lower(), self.default)


def _severity(raw: Any, where: str) -> Severity:
    levels = list(sev.policy())
    if raw is None:
        return Severity(None, DEFAULT_SEVERITY_MAP, DEFAULT_SEVERITY)

    def level(value: Any, field: str) -> str:
        text = str(value).strip().upper()
        if text not in levels:
            raise ConfigError(f"{where}: {field}: {value!r} is not a severity level ({', '.join(levels)})")
        return text

    if isinstance(raw, str):
        return Severity(level(raw, "severity"), {}, DEFAULT_SEVERITY)
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: 'severity' must be a level ({', '.join(levels)}) or a mapping "
                          "from the alert's severity label to levels")
    default = level(raw.get("default", DEFAULT_SEVERITY), "severity.default")
    mapping = {str(k).strip().lower(): level(v, f"severity.{k}") for k, v in raw.items() if k != "default"}
    return Severity(None, mapping, default)


def _title(event: AlertEvent) -> str:
    summary = event.annotations.get("summary") or event.annotations.get("description")
    name = event.labels.get("alertname") or event.fingerprint
    return (summary or f"{name} ({event.source})").strip()[:200]


@dataclasses.dataclass(frozen=True)
class Route:
    name: str
    runbook: str
    match: Mapping[str, str]
    match_re: Mapping[str, re.Pattern[str]]
    sources: frozenset[str] | None
    templates: Mapping[str, Template]
    literals: Mapping[str, Any]
    incident: Template
    mutate: bool
    cooldown: float
    declared: Mapping[str, params.Parameter]
    severity: Severity = Severity(None, DEFAULT_SEVERITY_MAP, DEFAULT_SEVERITY)
    title: Template | None = None

    def matches(self, event: AlertEvent) -> bool:
        if self.sources is not None and event.source not in self.sources:
            return False
        if any(event.labels.get(k) != v for k, v in self.match.items()):
            return False
        return all(k in event.labels and p.fullmatch(event.labels[k]) for k, p in self.match_re.items())

    def spec(self, event: AlertEvent) -> RunSpec:
        """The run this alert asks for, or RouteError naming what the alert lacks."""
        values: dict[str, Any] = dict(self.literals)
        for name, template in self.templates.items():
            values[name] = template.render(event)
        if "dry_run" in self.declared:
            values["dry_run"] = not self.mutate
        try:
            values = params.validate(self.declared, values)
        except RunbookError as exc:
            raise RouteError(str(exc)) from None
        incident = re.sub(r"\.{2,}", ".", _INCIDENT_CHARS.sub("-", self.incident.render(event)))
        incident = incident.strip("-.")[:128] or "alert"
        try:
            params.validate_incident_id(incident)
        except RunbookError as exc:
            raise RouteError(str(exc)) from None
        target_values = {k: v for k, v in sorted(values.items()) if k != "dry_run"}
        target = f"{self.runbook}:{json.dumps(target_values, sort_keys=True, default=str)}"
        return RunSpec(
            route=self.name,
            runbook=self.runbook,
            parameters=values,
            incident=incident,
            mutate=self.mutate,
            target=target,
            severity=self.severity.of(event),
            title=self._title(event),
        )

    def _title(self, event: AlertEvent) -> str:
        """The route's title template, else the default (a template naming a missing label falls back:
        a title is never a reason to leave an alert without its run)."""
        try:
            text = self.title.render(event).strip() if self.title else ""
        except RouteError:
            text = ""
        return text[:200] or _title(event)


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping")
    return value


def _route(raw: Any, index: int, source: str) -> Route:
    where = f"{source}: routes[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping")
    known = {
        "name",
        "match",
        "match_re",
        "sources",
        "runbook",
        "parameters",
        "incident",
        "mutate",
        "cooldown",
        "severity",
        "title",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    name = str(raw.get("name") or f"route-{index}")
    where = f"{source}: route {name!r}"
    if not isinstance(raw.get("runbook"), str):
        raise ConfigError(f"{where}: 'runbook' is required")
    try:
        book = catalog.find(raw["runbook"])
        declared = params.declared(catalog.load(book.path))
    except RunbookError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    match = {str(k): str(v) for k, v in _mapping(raw.get("match"), f"{where}: match").items()}
    match_re = {}
    for k, v in _mapping(raw.get("match_re"), f"{where}: match_re").items():
        try:
            match_re[str(k)] = re.compile(str(v))
        except re.error as exc:
            raise ConfigError(f"{where}: match_re.{k}: bad regex: {exc}") from None
    if not match and not match_re:
        raise ConfigError(f"{where}: give 'match' or 'match_re' (a route matching every alert is a mistake)")
    templates, literals = {}, {}
    for pname, value in _mapping(raw.get("parameters"), f"{where}: parameters").items():
        if pname == "dry_run":
            raise ConfigError(
                f"{where}: parameters.dry_run is decided by the route's 'mutate', not a template"
            )
        if pname not in declared:
            raise ConfigError(
                f"{where}: runbook {book.name!r} declares no parameter {pname!r} "
                f"(it declares: {', '.join(declared) or 'none'})"
            )
        if isinstance(value, str) and ("{" in value or "}" in value):
            templates[pname] = Template.parse(value, f"{where}: parameters.{pname}")
        else:
            try:
                literals[pname] = params.coerce(declared[pname], value)
            except RunbookError as exc:
                raise ConfigError(f"{where}: parameters.{pname}: {exc}") from None
    mutate = raw.get("mutate", False)
    if not isinstance(mutate, bool):
        raise ConfigError(f"{where}: 'mutate' must be true or false")
    if mutate and "dry_run" not in declared:
        raise ConfigError(f"{where}: mutate is true but runbook {book.name!r} has no dry_run parameter")
    sources = raw.get("sources")
    if sources is not None and (
        not isinstance(sources, list) or not all(isinstance(s, str) for s in sources)
    ):
        raise ConfigError(f"{where}: 'sources' must be a list of source names")
    try:
        cooldown = float(raw.get("cooldown", DEFAULT_COOLDOWN))
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: 'cooldown' must be a number of seconds") from None
    return Route(
        name=name,
        runbook=book.name,
        match=match,
        match_re=match_re,
        sources=frozenset(sources) if sources is not None else None,
        templates=templates,
        literals=literals,
        incident=Template.parse(str(raw.get("incident") or DEFAULT_INCIDENT), f"{where}: incident"),
        mutate=mutate,
        cooldown=cooldown,
        declared=declared,
        severity=_severity(raw.get("severity"), where),
        title=Template.parse(str(raw["title"]), f"{where}: title") if raw.get("title") else None,
    )


def load_routes(raw: Any, *, source: str = "config") -> list[Route]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: 'routes' must be a list")
    routes = [_route(r, i, source) for i, r in enumerate(raw)]
    names = [r.name for r in routes]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise ConfigError(f"{source}: two routes are named {dup!r}")
    return routes


def match(routes: list[Route], event: AlertEvent) -> Route | None:
    return next((r for r in routes if r.matches(event)), None)
