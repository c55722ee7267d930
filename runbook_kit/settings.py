"""Where the kit reads its configuration: the environment first, then `runbook.yaml`, then defaults.

The file is optional and found at `$RUNBOOK_CONFIG`, `./runbook.yaml` or
`~/.config/runbook/runbook.yaml`, in that order:

    store: s3://incident-records/prod        # or a folder; default ./incidents
    aws: {profile: oncall, region: eu-west-1}
    kubernetes: {kubeconfig: ~/.kube/config, context: prod-eks}
    databases: {orders: "postgresql://oncall@orders-db:5432/orders"}
    timeouts: {connect: 5, read: 30, retries: 3}
    severity: {P1: {update_every: 20}}       # overrides of the severity policy (runbook_kit.incident)
    contacts: {oncall: {name: Ana, slack: U01ANA, pagerduty: PXXXXXX}}
    comms: {slack: {channel: C0INCIDENTS}}   # also statuspage / pagerduty (runbook_kit.comms)
    jobs: {image: registry.example/runbook-kit:1.4, namespace: runbooks}   # runbook_kit.jobs

The standard chains stay in charge where they exist: boto3 reads `AWS_PROFILE`, `AWS_REGION`,
`AWS_ENDPOINT_URL` and its credential chain; the Kubernetes client reads `KUBECONFIG`; libpq reads
`PG*` variables. Settings only pass on what was configured, so a runbook that works in a shell with
those variables works here unchanged. Passwords belong in those chains (or `~/.pgpass`), never here.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runbook_kit.errors import ParameterError

__all__ = ["Settings", "get", "load"]


@dataclasses.dataclass(frozen=True)
class Settings:
    store: str = "incidents"
    aws_profile: str | None = None
    aws_region: str | None = None
    aws_endpoint_url: str | None = None
    kubeconfig: str | None = None
    kube_context: str | None = None
    databases: Mapping[str, str] = dataclasses.field(default_factory=dict)
    dsn: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    retries: int = 3
    config_path: str | None = None
    # the incident procedure (runbook_kit.incident reads these; see its docstring for the shapes)
    severity: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    contacts: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    comms: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    triage: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # severity thresholds (triage.py)
    jobs: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # runs as Kubernetes Jobs (jobs/)

    def database(self, name_or_dsn: str | None) -> str | None:
        """A DSN: a configured database name, a DSN given as is, or the default DSN."""
        if not name_or_dsn:
            return self.dsn
        return self.databases.get(name_or_dsn, name_or_dsn)


def _config_file(environ: Mapping[str, str]) -> Path | None:
    if environ.get("RUNBOOK_CONFIG"):
        path = Path(environ["RUNBOOK_CONFIG"]).expanduser()
        if not path.is_file():
            raise ParameterError(f"RUNBOOK_CONFIG points at {path}, which is not a file")
        return path
    for candidate in (Path("runbook.yaml"), Path("~/.config/runbook/runbook.yaml").expanduser()):
        if candidate.is_file():
            return candidate
    return None


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings afresh (tests pass their own environment)."""
    environ = os.environ if environ is None else environ
    path = _config_file(environ)
    data: dict[str, Any] = {}
    if path is not None:
        import yaml

        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ParameterError(f"{path}: not valid YAML ({exc.__class__.__name__})") from exc
        if not isinstance(data, dict):
            raise ParameterError(f"{path}: expected a mapping at the top level")
    aws = data.get("aws") or {}
    kube = data.get("kubernetes") or {}
    timeouts = data.get("timeouts") or {}

    def number(env: str, value: Any, default: float) -> float:
        raw = environ.get(env, value if value is not None else default)
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise ParameterError(f"{env} must be a number of seconds, not {raw!r}") from None

    return Settings(
        store=environ.get("RUNBOOK_STORE") or data.get("store") or "incidents",
        aws_profile=environ.get("AWS_PROFILE") or aws.get("profile"),
        aws_region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or aws.get("region"),
        aws_endpoint_url=environ.get("AWS_ENDPOINT_URL") or aws.get("endpoint_url"),
        kubeconfig=environ.get("KUBECONFIG") or kube.get("kubeconfig"),
        kube_context=environ.get("RUNBOOK_KUBE_CONTEXT") or kube.get("context"),
        databases=dict(data.get("databases") or {}),
        dsn=environ.get("RUNBOOK_DSN") or environ.get("DATABASE_URL") or data.get("dsn"),
        connect_timeout=number("RUNBOOK_CONNECT_TIMEOUT", timeouts.get("connect"), 5.0),
        read_timeout=number("RUNBOOK_READ_TIMEOUT", timeouts.get("read"), 30.0),
        retries=int(number("RUNBOOK_RETRIES", timeouts.get("retries"), 3)),
        config_path=str(path) if path else None,
        severity=dict(data.get("severity") or {}),
        contacts=dict(data.get("contacts") or {}),
        comms=_comms(data.get("comms") or {}, environ),
        triage=dict(data.get("triage") or {}),
        jobs=dict(data.get("jobs") or {}),
    )


def _comms(comms: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """runbook.yaml's comms, with RUNBOOK_SLACK_CHANNEL / RUNBOOK_STATUSPAGE_PAGE taking precedence."""
    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in comms.items()}
    for env, section, key in (("RUNBOOK_SLACK_CHANNEL", "slack", "channel"),
                              ("RUNBOOK_STATUSPAGE_PAGE", "statuspage", "page_id")):
        if environ.get(env):
            out.setdefault(section, {})[key] = environ[env]
    return out


@functools.cache
def get() -> Settings:
    """The settings of this process, read once. `clients.reset()` forgets them."""
    return load()
