"""The only module that constructs SDK clients (boto3, kubernetes, psycopg).

Why one module: timeouts, retries, endpoints and credentials are set here once, so no runbook can
hang on a dead endpoint because someone forgot a timeout, and switching a run from the sandbox to
a real account is a matter of environment, never of code. An import-linter contract in
pyproject.toml keeps every other kit module from importing an SDK.

Clients are built lazily on first use and cached per (service, region, context); `reset()` forgets
them, after settings change. Helpers take an optional client argument and fall back to these, so a
test or a caller with its own session can pass one in.

Read-only machines (`RUNBOOK_READ_ONLY`, read once by `runbook_kit.machine`): the guard refuses real
writes, but a notebook can also reach `rk.clients` directly. So every client built here refuses,
before anything is sent, what is not a read:

* boto3: a `before-parameter-build` hook allows only read operations (Describe*, Get*, List*,
  Lookup*, Filter*, Search*, BatchGet*, Head*, Query/Scan, Logs Insights Start/Stop query,
  `DryRun=True` calls) and S3 writes to the incident store's own bucket (`store: s3://...`: the
  record must be written);
* kubernetes: the ApiClient refuses every method but GET/HEAD/OPTIONS, except server-side dry runs
  (`dryRun=All`) and access reviews (SelfSubjectAccessReview, SelfSubjectRulesReview);
* psycopg: sessions start with `default_transaction_read_only=on` (the server refuses writes), and
  the cursor refuses what a read-only transaction still allows — `pg_terminate_backend`,
  `pg_cancel_backend`, `pg_reload_conf`, advisory locks, `set_config`, and turning read-only off.

A refusal is `UnsafeActionRefused`, naming the operation and the setting.
"""

from __future__ import annotations

import functools
import os
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from runbook_kit import settings
from runbook_kit.errors import NotConfigured, UnsafeActionRefused, backend_call
from runbook_kit.machine import read_only, read_only_reason

if TYPE_CHECKING:  # pragma: no cover
    import psycopg

__all__ = [
    "apps_v1",
    "authentication_v1",
    "authorization_v1",
    "aws",
    "aws_region",
    "batch_v1_for_runs",
    "core_v1",
    "custom_objects",
    "k8s_api",
    "k8s_json",
    "k8s_watch",
    "kube_context",
    "pg_connect",
    "pods_for_runs",
    "policy_v1",
    "reset",
]


# --- AWS ---------------------------------------------------------------------------------------

_AWS_READS = re.compile(
    r"^(Describe|Get|List|Lookup|Filter|Search|BatchGet|Head|Query$|Scan$|Select|"
    r"StartQuery$|StopQuery$|TestMetricFilter$|Simulate)"
)


def _refuse(what: str) -> UnsafeActionRefused:
    return UnsafeActionRefused(f"{what}: refused, {read_only_reason()}")


def _store_bucket() -> str | None:
    store = settings.get().store
    return store[len("s3://"):].split("/", 1)[0] if store.startswith("s3://") else None


def _aws_read_only(model: Any, params: dict[str, Any], **_: Any) -> None:
    """botocore `before-parameter-build` hook (API parameters, before anything is sent): a read, a
    DryRun, or the incident store's own bucket; else refuse."""
    name = model.name
    if _AWS_READS.match(name) or params.get("DryRun") is True:
        return
    service = model.service_model.service_name
    if service == "s3" and name in ("PutObject", "CreateMultipartUpload", "UploadPart",
                                    "CompleteMultipartUpload") and params.get("Bucket") == _store_bucket():
        return
    raise _refuse(f"aws {service} {name}")


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
    if not s.aws_endpoint_url:
        with backend_call("aws", "load credentials"):
            credentials = session.get_credentials()
        if credentials is None:
            raise NotConfigured("aws", f"create {service} client",
                                "no AWS credentials found; set AWS_PROFILE (or SSO / an instance role / "
                                "AWS_ACCESS_KEY_ID) and AWS_REGION")
    with backend_call("aws", f"create {service} client"):
        client = session.client(service, **kwargs)
    if read_only():
        client.meta.events.register("before-parameter-build", _aws_read_only)
    return client


# --- Kubernetes --------------------------------------------------------------------------------

@functools.cache
def k8s_api(*, context: str | None = None) -> Any:
    """A kubernetes ApiClient for a kubeconfig context (in-cluster config when there is none)."""
    import kubernetes

    timeout = _k8s_timeout()

    class _ApiClient(kubernetes.client.ApiClient):
        """Every request gets the configured (connect, read) timeout unless the caller sets one;
        on a read-only machine, writes are refused before they are sent."""

        def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("_request_timeout") is None:
                kwargs["_request_timeout"] = timeout
            if read_only() and not _k8s_read(method, url):
                raise _refuse(f"k8s {method} {urlsplit(url).path}")
            return super().call_api(method, url, *args, **kwargs)

    return _ApiClient(_k8s_configuration(context))


def _k8s_timeout() -> tuple[float, float]:
    s = settings.get()
    return (s.connect_timeout, s.read_timeout)


def _k8s_configuration(context: str | None) -> Any:
    import os

    import kubernetes

    s = settings.get()
    context = context or s.kube_context
    configuration = kubernetes.client.Configuration()
    kubeconfig_file = os.path.expanduser(s.kubeconfig.split(os.pathsep)[0]) if s.kubeconfig else ""
    in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    if not (kubeconfig_file or os.path.exists(os.path.expanduser("~/.kube/config")) or in_cluster):
        raise NotConfigured("k8s", "load kubeconfig", "no kubeconfig and not in a cluster; set KUBECONFIG "
                            "(and RUNBOOK_KUBE_CONTEXT or the runbook's context parameter)")
    with backend_call("k8s", "load kubeconfig"):
        if s.kubeconfig or os.path.exists(os.path.expanduser("~/.kube/config")) or context:
            kubernetes.config.load_kube_config(
                config_file=s.kubeconfig, context=context, client_configuration=configuration
            )
        else:
            kubernetes.config.load_incluster_config(client_configuration=configuration)
    configuration.retries = s.retries
    return configuration


_K8S_REVIEWS = re.compile(
    r"/apis/authorization\.k8s\.io/v1/(selfsubjectaccessreviews|selfsubjectrulesreviews)$")


def _k8s_read(method: str, url: str) -> bool:
    """A request a read-only machine may send: a read, a server-side dry run, or an access review."""
    if method.upper() in ("GET", "HEAD", "OPTIONS"):
        return True
    parts = urlsplit(url)
    if "All" in parse_qs(parts.query).get("dryRun", []):
        return True
    return method.upper() == "POST" and bool(_K8S_REVIEWS.search(parts.path))


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


# --- the Job executor's own client (runbook_kit.jobs) -------------------------------------------
# Submitting a run as a Job is the executor's infrastructure write, not a change to the system under
# incident: this client may create, read, watch and delete Jobs and read their pods and logs, nothing
# else. On a read-only machine it may still create Jobs, but only Jobs that are read-only themselves
# (RUNBOOK_READ_ONLY in the container's environment).

_RUNS_PATHS = (
    (re.compile(r"^/apis/batch/v1/namespaces/[a-z0-9-]+/jobs(/[^/]+)?$"), {"GET", "POST", "DELETE"}),
    (re.compile(r"^/api/v1/namespaces/[a-z0-9-]+/pods(/[^/]+(/log)?)?$"), {"GET"}),
    (re.compile(r"^/api/v1/namespaces/[a-z0-9-]+/events$"), {"GET"}),  # why a Job makes no pod
)


def _runs_request_allowed(method: str, url: str, body: Any) -> str | None:
    """None when the Job executor's client may send this request, else why not."""
    path = urlsplit(url).path
    if not any(rx.match(path) and method.upper() in verbs for rx, verbs in _RUNS_PATHS):
        return f"k8s {method} {path}: refused, the runs client only creates, reads and deletes Jobs"
    if read_only() and method.upper() == "POST":
        template = ((body or {}).get("spec") or {}).get("template") or {}
        containers = (template.get("spec") or {}).get("containers") or []
        flagged = containers and all(any(e.get("name") == "RUNBOOK_READ_ONLY" and e.get("value") == "1"
                                         for e in c.get("env") or []) for c in containers)
        if not flagged:
            return f"k8s POST {path}: refused, a read-only machine submits only read-only Jobs"
    return None


@functools.cache
def _runs_api(context: str | None) -> Any:
    import kubernetes

    timeout = _k8s_timeout()

    class _RunsApiClient(kubernetes.client.ApiClient):
        def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("_request_timeout") is None:
                kwargs["_request_timeout"] = timeout
            why = _runs_request_allowed(method, url, kwargs.get("body"))
            if why:
                raise UnsafeActionRefused(why)
            return super().call_api(method, url, *args, **kwargs)

    return _RunsApiClient(_k8s_configuration(context))


def batch_v1_for_runs(*, context: str | None = None) -> Any:
    """BatchV1Api for the Job executor: create/get/watch/delete Jobs only."""
    import kubernetes

    return kubernetes.client.BatchV1Api(_runs_api(context))


def pods_for_runs(*, context: str | None = None) -> Any:
    """CoreV1Api for the Job executor: read the pods of its Jobs, their logs and events, nothing else."""
    import kubernetes

    return kubernetes.client.CoreV1Api(_runs_api(context))


@functools.cache
def _serializer() -> Any:
    import kubernetes

    return kubernetes.client.ApiClient(kubernetes.client.Configuration())


def k8s_json(obj: Any) -> Any:
    """An API object (or a list of them) as the API's JSON (camelCase keys): pure code reads that."""
    return _serializer().sanitize_for_serialization(obj)


def k8s_watch(list_call: Any, *args: Any, **kwargs: Any) -> Any:
    """Events of a list call as a watch (kubernetes.watch), each `(type, object as JSON)`.

    A watch whose resourceVersion is too old ends with NotFound (410 Gone): list again and resume.
    """
    import kubernetes

    watcher = kubernetes.watch.Watch()
    with backend_call("k8s", "watch"):
        for event in watcher.stream(list_call, *args, **kwargs):
            yield event["type"], k8s_json(event["object"])


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
    options = f"-c statement_timeout={statement_ms}"
    kwargs: dict[str, Any] = {}
    connection_class: Any = psycopg.Connection
    if read_only():
        options += " -c default_transaction_read_only=on"
        kwargs["cursor_factory"] = _read_only_cursor_class()
        connection_class = _read_only_connection_class()
    configured = bool(conninfo) or any(os.environ.get(k) for k in _PG_LOCATION)
    try:
        with backend_call("postgres", "connect"):
            conn = connection_class.connect(
                conninfo,
                autocommit=autocommit,
                connect_timeout=max(1, int(s.connect_timeout)),
                application_name="runbook_kit",
                options=options,
                **kwargs,
            )
    except Exception as err:
        if not configured and type(err).__name__ == "Unavailable":
            raise NotConfigured("postgres", "connect", "no database configured; set RUNBOOK_DSN (or "
                                "DATABASE_URL, PG* variables, or the runbook's dsn parameter)") from err
        raise
    return conn


_PG_LOCATION = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE", "PGSERVICEFILE")


# What a read-only transaction still lets through: signals to other sessions, configuration reloads,
# advisory locks, session settings — and the switch that turns read-only off.
_PG_NOT_READS = re.compile(
    r"\b(pg_terminate_backend|pg_cancel_backend|pg_reload_conf|pg_rotate_logfile|pg_promote|"
    r"pg_switch_wal|pg_create_restore_point|pg_advisory\w*|pg_try_advisory\w*|set_config|"
    r"pg_stat_reset\w*|pg_stat_statements_reset|pg_notify|dblink\w*|lo_\w+|"
    r"transaction_read_only|default_transaction_read_only|session\s+characteristics|read\s+write|"
    r"reset\s+all|listen|notify|discard)\b",
    re.IGNORECASE,
)


@functools.cache
def _read_only_cursor_class() -> type:
    import psycopg

    class ReadOnlyCursor(psycopg.Cursor[Any]):
        """Refuses statements that a read-only transaction does not stop."""

        def _check(self, query: Any) -> None:
            text = query if isinstance(query, str | bytes) else query.as_string(self.connection)
            text = text.decode(errors="replace") if isinstance(text, bytes) else text
            hit = _PG_NOT_READS.search(text)
            if hit:
                raise _refuse(f"postgres statement using {hit.group(0)}")

        def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
            self._check(query)
            return super().execute(query, *args, **kwargs)

        def executemany(self, query: Any, *args: Any, **kwargs: Any) -> Any:
            self._check(query)
            return super().executemany(query, *args, **kwargs)

        def stream(self, query: Any, *args: Any, **kwargs: Any) -> Any:
            self._check(query)
            return super().stream(query, *args, **kwargs)

        def copy(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
            raise _refuse("postgres COPY")

    return ReadOnlyCursor


@functools.cache
def _read_only_connection_class() -> type:
    import psycopg

    class ReadOnlyConnection(psycopg.Connection[Any]):
        """`conn.read_only = False` would open READ WRITE transactions: refused."""

        def _set_read_only_gen(self, value: bool | None) -> Any:
            if value is False:
                raise _refuse("postgres read-write transactions")
            return super()._set_read_only_gen(value)

    return ReadOnlyConnection


def reset() -> None:
    """Forget cached settings and clients (after the environment changed)."""
    settings.get.cache_clear()
    _boto3_session.cache_clear()
    aws.cache_clear()
    k8s_api.cache_clear()
    _runs_api.cache_clear()


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
