"""The receiver's configuration file (YAML): where it listens, its queue, its senders, its routes.

    listen: 127.0.0.1:9095
    queue: /var/lib/runbook/serve.db        # SQLite (WAL); the durable queue and the alert log
    store: s3://incident-records/prod       # records; default $RUNBOOK_STORE, ./incidents
    concurrency: 2                          # runs at a time
    warm_kernels: 2                         # standby runners with a warmed kernel, each for one run; 0: cold
    max_body: 4194304                       # bytes; larger get 413, which senders drop
    storm: {episodes_per_minute: 20}
    sources:
      alertmanager:
        bearer_token: {file: /run/secrets/runbook/alertmanager-token}
        api_urls: [http://alertmanager:9093]     # to re-check an alert before a mutating run
      grafana: {hmac_secret: {env: GRAFANA_WEBHOOK_SECRET}, timestamp_header: X-Grafana-Alerting-Timestamp}
      pagerduty: {secrets: [{file: /run/secrets/runbook/pagerduty}]}
      sns: {topics: ["arn:aws:sns:eu-west-1:123456789012:alarms"]}
    routes: [...]                            # runbook_kit.serve.routes
    executor: kubernetes                     # each run a Kubernetes Job (default: local, a child process)
    jobs: {image: registry.example/runbook-kit:1.4, namespace: runbooks}   # as runbook.yaml's jobs:

Credentials are never written in the file: each is `{file: PATH}` or `{env: NAME}` and read at start.
A source that is not configured is not served (404), and a configured source without credentials is a
configuration error: there is no unauthenticated mode.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from runbook_kit.serve.routes import ConfigError, Route, load_routes

__all__ = ["ConfigError", "ServeConfig", "load"]

SOURCES = ("alertmanager", "grafana", "pagerduty", "sns")


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    host: str
    port: int
    queue: str
    store: str | None
    concurrency: int
    max_body: int
    storm_per_minute: int
    run_timeout: float
    cell_timeout: float
    lease: float
    sources: dict[str, dict[str, Any]]
    routes: list[Route]
    path: str
    secret_env: frozenset[str] = frozenset()  # variables credentials came from: kept out of the runs
    executor: str = "local"  # or "kubernetes": each run a Job (runbook_kit.serve.jobs)
    jobs: dict[str, Any] = dataclasses.field(default_factory=dict)  # runbook.yaml's `jobs:` keys
    warm_kernels: int = 2  # runbook_kit.serve.warm; 0: every run starts its own kernel


def secret(spec: Any, where: str) -> str:
    """A credential from `{file: PATH}` or `{env: NAME}`; a literal in the file is refused."""
    if not isinstance(spec, dict) or len(spec) != 1 or not ({"file", "env"} & set(spec)):
        raise ConfigError(f"{where}: give the credential as {{file: PATH}} or {{env: NAME}}, never inline")
    if "file" in spec:
        try:
            value = Path(str(spec["file"])).expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read {spec['file']}: {exc.strerror}") from None
    else:
        value = os.environ.get(str(spec["env"]), "").strip()
    if not value:
        raise ConfigError(f"{where}: the credential is empty")
    return value


def _credentials(raw: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if raw.get("bearer_token") is not None:
        out["bearer_token"] = secret(raw["bearer_token"], f"{where}.bearer_token")
    if raw.get("basic") is not None:
        basic = raw["basic"]
        if not isinstance(basic, dict) or not isinstance(basic.get("username"), str):
            raise ConfigError(f"{where}.basic: give username and password ({{file: ...}} or {{env: ...}})")
        out["basic"] = {
            "username": basic["username"],
            "password": secret(basic.get("password"), f"{where}.basic.password"),
        }
    return out


def _source(name: str, raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping")
    cfg: dict[str, Any] = {
        k: v
        for k, v in raw.items()
        if k not in ("bearer_token", "basic", "hmac_secret", "hmac_secrets", "secrets")
    }
    cfg.update(_credentials(raw, where))
    if name == "alertmanager" and not cfg.get("bearer_token") and not cfg.get("basic"):
        raise ConfigError(f"{where}: give bearer_token or basic credentials (no unauthenticated mode)")
    if name == "grafana":
        specs = raw.get("hmac_secrets") or ([raw["hmac_secret"]] if raw.get("hmac_secret") else [])
        cfg["hmac_secrets"] = [secret(s, f"{where}.hmac_secret") for s in specs]
        if not cfg["hmac_secrets"] and not cfg.get("bearer_token") and not cfg.get("basic"):
            raise ConfigError(f"{where}: give hmac_secret, bearer_token or basic credentials")
    if name == "pagerduty":
        specs = raw.get("secrets") or []
        if not isinstance(specs, list) or not specs:
            raise ConfigError(f"{where}: give secrets: [{{file: ...}}, ...] (several during rotation)")
        cfg["secrets"] = [secret(s, f"{where}.secrets[{i}]") for i, s in enumerate(specs)]
    if name == "sns":
        topics = raw.get("topics")
        if not isinstance(topics, list) or not topics or not all(isinstance(t, str) for t in topics):
            raise ConfigError(f"{where}: give topics: [arn:aws:sns:...] (the topics allowed to deliver)")
    return cfg


def _env_names(raw: Any) -> set[str]:
    if isinstance(raw, dict):
        if set(raw) == {"env"}:
            return {str(raw["env"])}
        return set().union(*(_env_names(v) for v in raw.values())) if raw else set()
    if isinstance(raw, list):
        return set().union(*(_env_names(v) for v in raw)) if raw else set()
    return set()


def load(path: str | os.PathLike[str]) -> ServeConfig:
    """Read and check the whole configuration, routes against the runbooks; ConfigError on the first fault."""
    import yaml

    where = str(path)
    try:
        with open(path, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read {where}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a mapping")
    known = {
        "listen",
        "queue",
        "store",
        "concurrency",
        "max_body",
        "storm",
        "sources",
        "routes",
        "run_timeout",
        "cell_timeout",
        "lease",
        "executor",
        "jobs",
        "warm_kernels",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    host, _, port = str(raw.get("listen", "127.0.0.1:9095")).rpartition(":")
    sources_raw = raw.get("sources") or {}
    if not isinstance(sources_raw, dict):
        raise ConfigError(f"{where}: sources must be a mapping")
    bad = sorted(set(sources_raw) - set(SOURCES))
    if bad:
        raise ConfigError(f"{where}: unknown source {bad[0]!r} (known: {', '.join(SOURCES)})")
    try:
        storm = raw.get("storm") or {}
        numbers: dict[str, Any] = dict(
            port=int(port),
            concurrency=int(raw.get("concurrency", 2)),
            max_body=int(raw.get("max_body", 4 << 20)),
            storm=int(storm.get("episodes_per_minute", 20)),
            run_timeout=float(raw.get("run_timeout", 1800)),
            cell_timeout=float(raw.get("cell_timeout", 600)),
            lease=float(raw.get("lease", 30)),
            warm_kernels=int(raw.get("warm_kernels", 2)),
        )
    except (TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{where}: a number is wrong ({exc})") from None
    if numbers["concurrency"] < 1:
        raise ConfigError(f"{where}: concurrency must be at least 1")
    executor, jobs = _executor(raw, where)
    if not 0 <= numbers["warm_kernels"] <= 16:
        raise ConfigError(f"{where}: warm_kernels must be between 0 (cold runs) and 16")
    return ServeConfig(
        host=host or "127.0.0.1",
        port=numbers["port"],
        queue=str(Path(str(raw.get("queue", "runbook-serve.db"))).expanduser()),
        store=raw.get("store"),
        concurrency=numbers["concurrency"],
        max_body=numbers["max_body"],
        storm_per_minute=numbers["storm"],
        run_timeout=numbers["run_timeout"],
        cell_timeout=numbers["cell_timeout"],
        lease=numbers["lease"],
        sources={name: _source(name, cfg, f"{where}: sources.{name}") for name, cfg in sources_raw.items()},
        routes=load_routes(raw.get("routes"), source=where),
        path=where,
        secret_env=frozenset(_env_names(sources_raw)),
        executor=executor,
        jobs=jobs,
        warm_kernels=numbers["warm_kernels"],
    )


def _executor(raw: dict[str, Any], where: str) -> tuple[str, dict[str, Any]]:
    """`executor: kubernetes` needs an s3:// store and an image (`jobs: {image: ...}` or RUNBOOK_IMAGE)."""
    executor = str(raw.get("executor", "local"))
    jobs = raw.get("jobs") or {}
    if executor not in ("local", "kubernetes") or not isinstance(jobs, dict):
        raise ConfigError(f"{where}: executor must be local or kubernetes, jobs a mapping")
    if executor == "kubernetes":
        if not str(raw.get("store") or "").startswith("s3://"):
            raise ConfigError(f"{where}: executor kubernetes needs an s3:// store (a pod cannot write a "
                              "folder here)")
        if not (jobs.get("image") or os.environ.get("RUNBOOK_IMAGE")):
            raise ConfigError(f"{where}: executor kubernetes needs jobs.image (or RUNBOOK_IMAGE); there is "
                              "no default")
    return executor, dict(jobs)
