"""The only module that constructs SDK clients (boto3, kubernetes, psycopg).

Why one module: timeouts, retries, endpoints and credentials are set here once, so no runbook can
hang on a dead endpoint because someone forgot a timeout, and switching a run from the sandbox to
a real account is a matter of environment, never of code. An import-linter contract in
pyproject.toml keeps every other kit module from importing an SDK.

Clients are built lazily on first use and cached per (service, region, context); `reset()` forgets
them, after settings change. Helpers take an optional client argument and fall back to these, so a
test or a caller with its own session can pass one in.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from runbook_kit import settings
from runbook_kit.errors import backend_call

if TYPE_CHECKING:  # pragma: no cover
    import psycopg

__all__ = [
    "apps_v1",
    "authentication_v1",
    "authorization_v1",
    "aws",
    "aws_region",
    "core_v1",
    "custom_objects",
    "k8s_api",
    "kube_context",
    "pg_connect",
    "policy_v1",
    "reset",
]


# --- AWS ---------------------------------------------------------------------------------------

@functools.cache
def _boto3_session(profile: str | None, region: str | None) -> Any:
    import boto3

    with backend_call("aws", "load credentials"):
        return boto3.session.Session(profile_name=profile, region_name=region)


@functools.cache
def aws(service: str, *, region: str | None = None) -> Any:
    """A boto3 client with connect/read timeouts and adaptive retries (honours AWS_ENDPOINT_URL)."""
    from botocore.config import Config

    s = settings.get()
    session = _boto3_session(s.aws_profile, region or s.aws_region)
    config = Config(
        connect_timeout=s.connect_timeout,
        read_timeout=s.read_timeout,
        retries={"max_attempts": s.retries, "mode": "adaptive"},
        user_agent_extra="runbook_kit",
    )
    kwargs: dict[str, Any] = {"config": config}
    if s.aws_endpoint_url:
        kwargs["endpoint_url"] = s.aws_endpoint_url
    if not session.region_name:
        kwargs["region_name"] = "us-east-1"
    with backend_call("aws", f"create {service} client"):
        return session.client(service, **kwargs)


# --- Kubernetes --------------------------------------------------------------------------------

@functools.cache
def k8s_api(*, context: str | None = None) -> Any:
    """A kubernetes ApiClient for a kubeconfig context (in-cluster config when there is none)."""
    import os

    import kubernetes

    s = settings.get()
    context = context or s.kube_context
    timeout = (s.connect_timeout, s.read_timeout)

    class _ApiClient(kubernetes.client.ApiClient):
        """Every request gets the configured (connect, read) timeout unless the caller sets one."""

        def request(self, *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("_request_timeout") is None:
                kwargs["_request_timeout"] = timeout
            return super().request(*args, **kwargs)  # type: ignore[misc]

    configuration = kubernetes.client.Configuration()
    with backend_call("k8s", "load kubeconfig"):
        if s.kubeconfig or os.path.exists(os.path.expanduser("~/.kube/config")) or context:
            kubernetes.config.load_kube_config(
                config_file=s.kubeconfig, context=context, client_configuration=configuration
            )
        else:
            kubernetes.config.load_incluster_config(client_configuration=configuration)
    configuration.retries = s.retries
    return _ApiClient(configuration)


def core_v1(*, context: str | None = None) -> Any:
    import kubernetes

    return kubernetes.client.CoreV1Api(k8s_api(context=context))


def apps_v1(*, context: str | None = None) -> Any:
    import kubernetes

    return kubernetes.client.AppsV1Api(k8s_api(context=context))


def policy_v1(*, context: str | None = None) -> Any:
    import kubernetes

    return kubernetes.client.PolicyV1Api(k8s_api(context=context))


def custom_objects(*, context: str | None = None) -> Any:
    import kubernetes

    return kubernetes.client.CustomObjectsApi(k8s_api(context=context))


# --- PostgreSQL --------------------------------------------------------------------------------

def pg_connect(
    dsn: str | None = None, *, autocommit: bool = True, statement_timeout_s: float | None = None
) -> psycopg.Connection[Any]:
    """A new psycopg connection with a bounded connect timeout and statement timeout.

    `dsn` is a DSN, a database name from runbook.yaml, or None for the default (RUNBOOK_DSN /
    DATABASE_URL, else libpq's PG* variables). application_name is `runbook_kit`, so the kit can
    recognise (and never terminate) its own sessions.
    """
    import psycopg

    s = settings.get()
    conninfo = s.database(dsn) or ""
    statement_ms = int((statement_timeout_s or s.read_timeout) * 1000)
    with backend_call("postgres", "connect"):
        return psycopg.connect(
            conninfo,
            autocommit=autocommit,
            connect_timeout=max(1, int(s.connect_timeout)),
            application_name="runbook_kit",
            options=f"-c statement_timeout={statement_ms}",
        )


def reset() -> None:
    """Forget cached settings and clients (after the environment changed)."""
    settings.get.cache_clear()
    _boto3_session.cache_clear()
    aws.cache_clear()
    k8s_api.cache_clear()


# --- access checks (runbook doctor) ------------------------------------------------------------

def authorization_v1(*, context: str | None = None) -> Any:
    """AuthorizationV1Api: SelfSubjectAccessReview, what `kubectl auth can-i` asks."""
    import kubernetes

    return kubernetes.client.AuthorizationV1Api(k8s_api(context=context))


def authentication_v1(*, context: str | None = None) -> Any:
    """AuthenticationV1Api: SelfSubjectReview, what `kubectl auth whoami` asks."""
    import kubernetes

    return kubernetes.client.AuthenticationV1Api(k8s_api(context=context))


def kube_context(*, context: str | None = None) -> dict[str, str]:
    """The kubeconfig context the kit would use: name, cluster, user, namespace and server URL."""
    import kubernetes

    s = settings.get()
    context = context or s.kube_context
    server = str(k8s_api(context=context).configuration.host)
    with backend_call("k8s", "read kubeconfig"):
        try:
            contexts, current = kubernetes.config.list_kube_config_contexts(config_file=s.kubeconfig)
        except kubernetes.config.ConfigException:
            return {"name": "(in-cluster)", "cluster": "", "user": "", "namespace": "", "server": server}
    chosen = next((c for c in contexts if c["name"] == context), None) if context else current
    details = (chosen or {}).get("context") or {}
    return {
        "name": str((chosen or {}).get("name", context or "")),
        "cluster": str(details.get("cluster", "")),
        "user": str(details.get("user", "")),
        "namespace": str(details.get("namespace") or "default"),
        "server": server,
    }


def aws_region() -> str | None:
    """The region configured for AWS calls (settings, AWS_REGION, the profile), None when none is.

    `aws()` falls back to us-east-1 so that a client can be built; this tells whether that happened.
    """
    s = settings.get()
    region: str | None = _boto3_session(s.aws_profile, s.aws_region).region_name
    return region or None
