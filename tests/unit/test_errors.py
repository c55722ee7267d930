from __future__ import annotations

import botocore.exceptions
import kubernetes.client.exceptions
import psycopg
import pytest

from runbook_kit import errors


def test_kit_errors_never_subclass_sdk_errors():
    for cls in (
        errors.RunbookError,
        errors.BackendError,
        errors.NotFound,
        errors.Forbidden,
        errors.Throttled,
        errors.Unavailable,
        errors.Conflict,
        errors.UnsafeActionRefused,
    ):
        assert not issubclass(
            cls, botocore.exceptions.ClientError | kubernetes.client.exceptions.ApiException
        )


@pytest.mark.parametrize(
    ("code", "status", "cls"),
    [
        ("AccessDeniedException", 400, errors.Forbidden),
        ("DBInstanceNotFound", 404, errors.NotFound),
        ("ThrottlingException", 400, errors.Throttled),
        ("InvalidDBInstanceState", 400, errors.Conflict),
        ("ServiceUnavailable", 503, errors.Unavailable),
    ],
)
def test_aws_client_errors(code, status, cls):
    exc = botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": "msg"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )
    err = errors.translate(exc, backend="aws", op="describe db")
    assert type(err) is cls and str(err).startswith("aws describe db: ")


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (404, errors.NotFound),
        (403, errors.Forbidden),
        (409, errors.Conflict),
        (429, errors.Throttled),
        (503, errors.Unavailable),
    ],
)
def test_kubernetes_api_exceptions(status, cls):
    exc = kubernetes.client.exceptions.ApiException(status=status, reason="R")
    exc.body = '{"kind":"Status","message":"deployments.apps \\"api\\" not found"}'
    err = errors.translate(exc, backend="k8s", op="read deployment")
    assert type(err) is cls and 'deployments.apps "api" not found' in str(err)


def test_postgres_errors_and_network_errors():
    assert (
        type(errors.translate(psycopg.errors.InsufficientPrivilege("no"), backend="postgres", op="q"))
        is errors.Forbidden
    )
    assert (
        type(errors.translate(psycopg.errors.TooManyConnections("x"), backend="postgres", op="q"))
        is errors.Throttled
    )
    assert (
        type(errors.translate(ConnectionRefusedError(), backend="postgres", op="connect"))
        is errors.Unavailable
    )


def test_messages_are_one_short_redacted_line():
    err = errors.Unavailable("postgres", "connect", "postgresql://u:hunter2pw@h/db\n" + "x" * 1000)
    assert "\n" not in str(err) and "hunter2pw" not in str(err) and len(str(err)) < 400


def test_backend_call_wraps_and_chains():
    with pytest.raises(errors.Unavailable) as info, errors.backend_call("k8s", "list pods"):
        raise TimeoutError("read timed out")
    assert isinstance(info.value.__cause__, TimeoutError)


def test_network_errors_name_the_endpoint_and_the_cause():
    import socket

    import urllib3

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(urllib3.exceptions.MaxRetryError) as info:
        urllib3.PoolManager(retries=0).request("GET", f"http://127.0.0.1:{port}/api")
    err = errors.translate(info.value, backend="k8s", op="list pods")
    assert type(err) is errors.Unavailable
    assert str(err) == f"k8s list pods: unreachable: cannot connect to 127.0.0.1:{port} (Connection refused)"
